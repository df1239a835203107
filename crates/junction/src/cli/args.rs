//! Command-line options of the client subcommands and how typed arguments are read.

use std::time::Duration;

use clap::{Args, ValueEnum};
use wamp_client::{Dict, Value};

use crate::bench::SerializerArg;

/// How to reach the router: shared by `call`, `publish`, `subscribe` and `register`.
///
/// Every option can also come from the environment (`JUNCTION_URL`, `JUNCTION_REALM`,
/// `JUNCTION_SERIALIZER`, `JUNCTION_AUTHID`, `JUNCTION_AUTHMETHOD`, `JUNCTION_TICKET`,
/// `JUNCTION_SECRET`, `JUNCTION_PRIVATE_KEY`, `JUNCTION_CHANNEL_BINDING`,
/// `JUNCTION_TLS_CA`, `JUNCTION_TLS_CERT`, `JUNCTION_TLS_KEY`), so a profile can be
/// set once per shell.
#[derive(Args, Clone)]
pub struct ConnectArgs {
    /// Router URL: ws://host:port/path, rs://host:port, unix:///path/to/socket, or
    /// over TLS wss://host:port/path and rss://host:port.
    #[arg(long, env = "JUNCTION_URL", default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,
    /// Realm to join.
    #[arg(long, env = "JUNCTION_REALM", default_value = "realm1")]
    pub realm: String,
    /// Serializer.
    #[arg(long, value_enum, env = "JUNCTION_SERIALIZER", default_value_t = SerializerArg::Json)]
    pub serializer: SerializerArg,
    /// HELLO authid.
    #[arg(long, env = "JUNCTION_AUTHID")]
    pub authid: Option<String>,
    /// HELLO authmethods, in order of preference (repeat or comma-separate): anonymous,
    /// ticket, wampcra, wamp-scram (or scram), cryptosign, tls. Default: what the given
    /// credentials allow (--ticket: ticket; --secret: wampcra; --private-key:
    /// cryptosign; --tls-cert: tls), else anonymous.
    #[arg(long, env = "JUNCTION_AUTHMETHOD", value_delimiter = ',')]
    pub authmethod: Vec<String>,
    /// Ticket for ticket authentication (needs --authid).
    #[arg(long, env = "JUNCTION_TICKET", hide_env_values = true)]
    pub ticket: Option<String>,
    /// Secret for WAMP-CRA, or password for WAMP-SCRAM with --authmethod wamp-scram
    /// (needs --authid).
    #[arg(long, env = "JUNCTION_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Ed25519 private key for cryptosign: 64 hex characters, or a key file written
    /// by `junction keygen --out` (--authid optional: the router can find the user
    /// by public key).
    #[arg(long, env = "JUNCTION_PRIVATE_KEY", hide_env_values = true)]
    pub private_key: Option<String>,
    /// Cryptosign: bind the signature to this TLS connection (channel binding
    /// `tls-exporter`, RFC 9266). Needs wss:// or rss:// with TLS 1.3. In the
    /// environment: 1/true/yes/on or 0/false/no/off.
    #[arg(
        long,
        env = "JUNCTION_CHANNEL_BINDING",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub channel_binding: bool,
    /// TLS: a PEM file of CA certificates to trust for the router's certificate
    /// (besides the built-in public roots).
    #[arg(long, env = "JUNCTION_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// TLS: a client certificate (PEM chain) to present; with --tls-key. Without
    /// --authmethod (and other credentials) it authenticates with method `tls`.
    #[arg(long, env = "JUNCTION_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// TLS: the client certificate's private key (PEM).
    #[arg(long, env = "JUNCTION_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// Leaves the credentials out (only whether each was given).
impl std::fmt::Debug for ConnectArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let given = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ConnectArgs")
            .field("url", &self.url)
            .field("realm", &self.realm)
            .field("serializer", &self.serializer)
            .field("authid", &self.authid)
            .field("authmethod", &self.authmethod)
            .field("ticket", &given(&self.ticket))
            .field("secret", &given(&self.secret))
            .field("private_key", &given(&self.private_key))
            .field("channel_binding", &self.channel_binding)
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .finish()
    }
}

/// Arguments and keyword arguments as a person types them.
#[derive(Args, Debug, Clone)]
pub struct PayloadArgs {
    /// Positional arguments: numbers, true/false/null, JSON arrays and objects are
    /// typed; anything else is a string.
    #[arg(value_name = "ARGS", allow_negative_numbers = true)]
    pub args: Vec<String>,
    /// A keyword argument, typed like the positional ones (repeat for several).
    #[arg(long = "kwarg", short = 'k', value_name = "KEY=VALUE")]
    pub kwargs: Vec<String>,
    /// Take every argument and keyword argument value as a string, untyped.
    #[arg(long = "string", short = 's')]
    pub string: bool,
}

impl PayloadArgs {
    /// The typed positional and keyword arguments.
    pub fn parse(&self) -> Result<(Vec<Value>, Dict), String> {
        let args = self
            .args
            .iter()
            .map(|a| parse_value(a, self.string))
            .collect();
        let mut kwargs = Dict::new();
        for kv in &self.kwargs {
            let (key, value) = kv
                .split_once('=')
                .ok_or_else(|| format!("--kwarg {kv:?}: expected KEY=VALUE"))?;
            if key.is_empty() {
                return Err(format!("--kwarg {kv:?}: empty key"));
            }
            kwargs.insert(key.to_owned(), parse_value(value, self.string));
        }
        Ok((args, kwargs))
    }
}

/// `junction call`.
#[derive(Args, Debug, Clone)]
pub struct CallArgs {
    /// The procedure URI.
    pub procedure: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub payload: PayloadArgs,
    /// Ask for progressive results and print each as it arrives.
    #[arg(long)]
    pub progress: bool,
    /// Give up after this many seconds (CALL.Options.timeout, enforced by the
    /// router): the call fails with wamp.error.timeout.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connect: ConnectArgs,
}

/// `junction publish`.
#[derive(Args, Debug, Clone)]
pub struct PublishArgs {
    /// The topic URI.
    pub topic: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub payload: PayloadArgs,
    /// Wait for the router's acknowledgement and print the publication ID.
    #[arg(long)]
    pub acknowledge: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connect: ConnectArgs,
}

/// `junction subscribe`.
#[derive(Args, Debug, Clone)]
pub struct SubscribeArgs {
    /// The topic URI (or pattern, with --match).
    pub topic: String,
    /// How the topic matches.
    #[arg(long = "match", value_enum, default_value_t = Match::Exact)]
    pub match_policy: Match,
    /// Exit after this many events (default: run until Ctrl-C).
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connect: ConnectArgs,
}

/// `junction register`.
#[derive(Args, Debug, Clone)]
pub struct RegisterArgs {
    /// The procedure URI (or pattern, with --match).
    pub procedure: String,
    /// How the procedure matches.
    #[arg(long = "match", value_enum, default_value_t = Match::Exact)]
    pub match_policy: Match,
    /// Exit after answering this many invocations (default: run until Ctrl-C).
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connect: ConnectArgs,
    /// The command to run for each invocation, after `--`. It gets the positional
    /// arguments appended to its argv (strings as they are, other values as JSON) and
    /// {"args": [...], "kwargs": {...}} on stdin. Its stdout is the result (JSON if it
    /// parses, else a string); a non-zero exit is the error
    /// junction.error.command_failed with its stderr as the message.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `--match`: a URI pattern's match policy.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Match {
    /// The URI itself.
    Exact,
    /// Every URI starting with the given one.
    Prefix,
    /// Empty components match any one component (com.example..get).
    Wildcard,
}

impl Match {
    /// The client's match policy.
    pub fn policy(self) -> wamp_client::MatchPolicy {
        match self {
            Match::Exact => wamp_client::MatchPolicy::Exact,
            Match::Prefix => wamp_client::MatchPolicy::Prefix,
            Match::Wildcard => wamp_client::MatchPolicy::Wildcard,
        }
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
        return Err(format!("{s:?}: expected a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Reads one argument the way a person types it: integers and floats, `true`,
/// `false`, `null`, JSON arrays, objects and quoted strings are typed; anything else
/// (or everything, with `force_string`) is the text itself. Integers too large for 64
/// bits stay text rather than losing precision.
pub fn parse_value(text: &str, force_string: bool) -> Value {
    if force_string {
        return Value::Str(text.to_owned());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Number(n)) if n.is_f64() && !text.contains(['.', 'e', 'E']) => {
            Value::Str(text.to_owned())
        }
        Ok(json) => Value::from(json),
        Err(_) => Value::Str(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wamp_client::dict;

    #[test]
    fn debug_form_leaves_credentials_out() {
        let args = ConnectArgs {
            url: "ws://127.0.0.1:8080/ws".into(),
            realm: "realm1".into(),
            serializer: SerializerArg::Json,
            authid: Some("joe".into()),
            authmethod: vec!["ticket".into()],
            ticket: Some("t1cket-value".into()),
            secret: Some("s3cret-value".into()),
            private_key: Some(
                "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510".into(),
            ),
            channel_binding: false,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        };
        let text = format!("{args:?}");
        assert!(
            text.contains("joe") && text.contains("<redacted>"),
            "{text}"
        );
        for secret in ["t1cket-value", "s3cret-value", "4d57d97a"] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[test]
    fn typed_like_a_person_types() {
        assert_eq!(parse_value("42", false), Value::Int(42));
        assert_eq!(parse_value("-7", false), Value::Int(-7));
        assert_eq!(parse_value("2.5", false), Value::Float(2.5));
        assert_eq!(parse_value("true", false), Value::Bool(true));
        assert_eq!(parse_value("false", false), Value::Bool(false));
        assert_eq!(parse_value("null", false), Value::Null);
        assert_eq!(parse_value("hello", false), Value::Str("hello".into()));
        assert_eq!(parse_value("\"42\"", false), Value::Str("42".into()));
        assert_eq!(parse_value("", false), Value::Str(String::new()));
        assert_eq!(parse_value("True", false), Value::Str("True".into()));
        assert_eq!(parse_value("1,2", false), Value::Str("1,2".into()));
        assert_eq!(
            parse_value("[1, \"a\"]", false),
            Value::List(vec![Value::Int(1), Value::Str("a".into())])
        );
        assert_eq!(
            parse_value(r#"{"a": [true]}"#, false),
            Value::Dict(dict! {"a" => Value::List(vec![Value::Bool(true)])})
        );
        assert_eq!(
            parse_value("123456789012345678901234567890", false),
            Value::Str("123456789012345678901234567890".into())
        );
        assert_eq!(parse_value("1e3", false), Value::Float(1000.0));
        assert_eq!(parse_value("42", true), Value::Str("42".into()));
        assert_eq!(parse_value("{", false), Value::Str("{".into()));
    }

    #[test]
    fn kwargs() {
        let p = PayloadArgs {
            args: vec!["1".into(), "x".into()],
            kwargs: vec!["a=1".into(), "b=x=y".into(), "c=".into()],
            string: false,
        };
        let (args, kwargs) = p.parse().expect("parses");
        assert_eq!(args, vec![Value::Int(1), Value::Str("x".into())]);
        assert_eq!(kwargs.get("a"), Some(&Value::Int(1)));
        assert_eq!(kwargs.get("b"), Some(&Value::Str("x=y".into())));
        assert_eq!(kwargs.get("c"), Some(&Value::Str(String::new())));
        let bad = PayloadArgs {
            args: vec![],
            kwargs: vec!["novalue".into()],
            string: false,
        };
        assert!(bad.parse().is_err());
    }
}
