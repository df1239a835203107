//! The client subcommands of `junction`: `call`, `publish`, `subscribe` and
//! `register`, built on `wamp-client` (see docs/cli.md).
//!
//! Each entry point returns the process exit code: 0 on success, 1 on an error
//! (printed as one line on stderr), 130 when Ctrl-C interrupted a call.

mod args;
mod call;
mod output;
mod publish;
mod register;
mod subscribe;

use std::future::Future;

pub use args::{
    parse_value, CallArgs, ConnectArgs, Match, PayloadArgs, PublishArgs, RegisterArgs,
    SubscribeArgs,
};

use wamp_client::{ConnectOptions, Error, PrivateKey, Secret, Session};

/// Exit code for a failure.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code when Ctrl-C interrupted (and canceled) a call.
pub const EXIT_INTERRUPTED: i32 = 130;

/// `junction call`: calls a procedure and prints its (progressive) results.
pub fn call(args: CallArgs) -> i32 {
    run(call::run(args))
}

/// `junction publish`: publishes one event.
pub fn publish(args: PublishArgs) -> i32 {
    run(publish::run(args))
}

/// `junction subscribe`: prints events as they arrive.
pub fn subscribe(args: SubscribeArgs) -> i32 {
    run(subscribe::run(args))
}

/// `junction register`: answers invocations by running a command.
pub fn register(args: RegisterArgs) -> i32 {
    run(register::run(args))
}

/// A failed subcommand: what to print and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    message: Option<String>,
    code: i32,
}

impl Failure {
    pub(crate) fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: Some(message.into()),
            code: EXIT_FAILURE,
        }
    }

    pub(crate) fn with_code(message: impl Into<String>, code: i32) -> Failure {
        Failure {
            message: Some(message.into()),
            code,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::new(format!("cannot write output: {e}"))
    }
}

fn run(task: impl Future<Output = Result<(), Failure>>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            output::error(&format!("cannot start the runtime: {e}"));
            return EXIT_FAILURE;
        }
    };
    match runtime.block_on(task) {
        Ok(()) => 0,
        Err(failure) => {
            if let Some(message) = failure.message {
                output::error(&message);
            }
            failure.code
        }
    }
}

/// Connects and joins as the shared options say; errors are one readable line.
pub(crate) async fn connect(args: &ConnectArgs) -> Result<Session, Failure> {
    let url = args.url.trim();
    let mut options = ConnectOptions {
        serializer: args.serializer.serializer(),
        agent: concat!("junction-cli/", env!("CARGO_PKG_VERSION")).to_owned(),
        authid: args.authid.clone(),
        ..ConnectOptions::default()
    };
    authenticate(args, &mut options).map_err(Failure::new)?;
    let options = tls_options(args, options).map_err(|e| Failure::new(e.to_string()))?;
    Session::connect_with(url, &args.realm, options)
        .await
        .map_err(|e| Failure::new(connect_error(url, &args.realm, &e)))
}

/// Puts the credentials and authmethods into `options`: the given --authmethod
/// list, or the methods the given credentials allow.
fn authenticate(args: &ConnectArgs, options: &mut ConnectOptions) -> Result<(), String> {
    let mut methods: Vec<String> = args
        .authmethod
        .iter()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    if methods.is_empty() {
        if args.ticket.is_some() {
            methods.push("ticket".into());
        }
        if args.secret.is_some() {
            methods.push("wampcra".into());
        }
        if args.private_key.is_some() {
            methods.push("cryptosign".into());
        }
        if args.tls_cert.is_some() {
            methods.push("tls".into());
        }
        if methods.is_empty() {
            methods.push("anonymous".into());
        }
    }
    let needs = |method: &str, what: &str, given: bool| {
        if methods.iter().any(|m| m == method) && !given {
            Err(format!("--authmethod {method} needs {what}"))
        } else {
            Ok(())
        }
    };
    needs("ticket", "--ticket", args.ticket.is_some())?;
    needs("wampcra", "--secret", args.secret.is_some())?;
    needs("wamp-scram", "--secret", args.secret.is_some())?;
    needs("scram", "--secret", args.secret.is_some())?;
    needs("cryptosign", "--private-key", args.private_key.is_some())?;
    if args.channel_binding && !methods.iter().any(|m| m == "cryptosign") {
        return Err("--channel-binding is for cryptosign (--private-key)".into());
    }
    let needs_authid = methods
        .iter()
        .any(|m| matches!(m.as_str(), "ticket" | "wampcra" | "wamp-scram" | "scram"));
    if needs_authid && args.authid.as_deref().is_none_or(str::is_empty) {
        return Err(format!("--authmethod {} needs --authid", methods.join(",")));
    }
    options.ticket = args.ticket.clone().map(Secret::new);
    options.wampcra_secret = args.secret.clone().map(Secret::new);
    options.scram_password = args.secret.clone().map(Secret::new);
    if let Some(key) = &args.private_key {
        options.cryptosign_key = Some(PrivateKey::new(crate::keygen::load_private_key(key)?));
    }
    options.cryptosign_channel_binding = args.channel_binding;
    options.authmethods = methods;
    Ok(())
}

/// Adds the `--tls-ca` and `--tls-cert`/`--tls-key` files to `options`.
fn tls_options(args: &ConnectArgs, options: ConnectOptions) -> Result<ConnectOptions, Error> {
    let options = match &args.tls_ca {
        Some(ca) => options.with_tls_ca_file(ca)?,
        None => options,
    };
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => options.with_tls_client_cert_files(cert, key),
        (None, None) => Ok(options),
        _ => Err(Error::Tls(
            "--tls-cert and --tls-key go together (a client certificate and its key)".into(),
        )),
    }
}

/// One line for a failure to connect or join.
fn connect_error(url: &str, realm: &str, e: &Error) -> String {
    match e {
        Error::Io(io) => {
            let what = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                std::io::ErrorKind::NotFound => "no such socket".to_owned(),
                _ => io.to_string(),
            };
            format!("cannot connect to {url}: {what}")
        }
        Error::Abort { reason, .. } if reason == "wamp.error.not_authorized" => {
            format!("authentication failed: the router refused the credentials for realm {realm:?} ({reason})")
        }
        Error::Abort { reason, message } => {
            let mut text = format!("the router refused to join realm {realm:?}: {reason}");
            if let Some(m) = message.as_deref().filter(|m| !m.is_empty()) {
                text.push_str(&format!(" ({m})"));
            }
            text
        }
        Error::Timeout => format!("cannot connect to {url}: timed out"),
        Error::InvalidUrl(why) => why.clone(),
        other => format!("cannot connect to {url}: {other}"),
    }
}

/// One line for a failed request: the WAMP error URI and its message, or what went
/// wrong with the session.
pub(crate) fn request_error(e: &Error) -> String {
    match e {
        Error::Wamp { uri, args, kwargs } => output::describe_wamp_error(uri, args, kwargs),
        Error::Abort { reason, message } => {
            let mut text = format!("the router aborted the session: {reason}");
            if let Some(m) = message.as_deref().filter(|m| !m.is_empty()) {
                text.push_str(&format!(" ({m})"));
            }
            text
        }
        Error::Closed => "the session closed before the answer came".to_owned(),
        other => other.to_string(),
    }
}

/// Waits for Ctrl-C; never returns if the handler cannot be installed.
pub(crate) async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
