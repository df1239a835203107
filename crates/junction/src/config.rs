//! The router's configuration: a TOML file, command-line flags, and the embedded
//! defaults a new user gets with neither.
//!
//! ```toml
//! [[listener]]
//! type = "websocket"          # WebSocket, plus RawSocket on the same port
//! address = "127.0.0.1:8080"
//! path = "/ws"
//!
//! [[listener]]
//! type = "rawsocket"          # RawSocket over TCP on its own port
//! address = "127.0.0.1:8081"
//!
//! [[listener]]
//! type = "unix"               # RawSocket over a Unix domain socket
//! path = "/tmp/junction.sock"
//!
//! [[listener]]
//! type = "websocket"          # wss:// (and rss:// on the same port)
//! address = "0.0.0.0:8443"
//! auth_methods = ["tls", "ticket"]  # default: every method the realm offers
//! [listener.tls]
//! cert = "server.pem"         # PEM chain; relative to this file's directory
//! key = "server.key"
//! client_ca = "clients-ca.pem"
//! client_certs = "optional"   # none (default), optional or required
//!
//! [[realm]]
//! name = "realm1"
//! uri_check = "loose"         # or "strict"
//! disclose_caller = false     # true: every INVOCATION names its caller
//! disclose_publisher = false  # true: every EVENT names its publisher
//! max_retained_topics = 10000 # topics with a retained event (PUBLISH retain)
//! authorizer_cache_ms = 60000  # dynamic authorizer answers cached (0: off)
//! authorizer_cache_max = 10000 # most cached answers per role
//! authorizer_timeout_ms = 5000 # time a dynamic authorizer has to answer
//!
//! [[realm.history]]           # keep events for wamp.subscription.get_events
//! topic = "com.example."
//! match = "prefix"            # exact (default), prefix or wildcard
//! limit = 100                 # events kept (in memory)
//!
//! [limits]
//! max_message_size = 16777216
//! outbox_max_messages = 65536
//! outbox_max_bytes = 67108864
//! slow_consumer = "disconnect"  # or "drop": what a full outbox does to EVENTs
//! calls_per_caller = 10000      # calls one session may have waiting
//! calls_per_callee = 10000      # invocations one callee may have unanswered
//! auth_timeout_ms = 10000       # time to send HELLO, and to answer a CHALLENGE
//! auth_failures_free = 3        # failed logins from one address before it is slowed down
//! auth_failure_delay_ms = 500   # then each new connection from it waits this, doubling (0: off)
//! auth_failure_max_delay_ms = 30000
//!
//! [runtime]
//! worker_threads = 1          # default: half the cores; 0: a single-threaded runtime
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use wamp_proto::uri::{MatchPolicy, UriRule};
use wamp_router::{
    CallLimits, HistoryRule, OutboxLimits, RealmConfig, RouterConfig, SlowConsumerPolicy,
};

/// The default WebSocket (and shared RawSocket) address.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8080";
/// The default WebSocket path.
pub const DEFAULT_PATH: &str = "/ws";
/// The default realm.
pub const DEFAULT_REALM: &str = "realm1";
/// The default largest message, in bytes (the largest a RawSocket peer can announce).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to listen.
    #[serde(default = "default_listeners", rename = "listener")]
    pub listeners: Vec<Listener>,
    /// The realms that exist.
    #[serde(default = "default_realms", rename = "realm")]
    pub realms: Vec<Realm>,
    /// Size limits.
    #[serde(default)]
    pub limits: Limits,
    /// Runtime settings.
    #[serde(default)]
    pub runtime: Runtime,
}

/// One listening endpoint.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Listener {
    /// WebSocket on `address` at `path`; RawSocket on the same port unless `rawsocket = false`.
    Websocket {
        /// TCP address.
        address: SocketAddr,
        /// HTTP path of the WebSocket endpoint.
        #[serde(default = "default_path")]
        path: String,
        /// Also accept RawSocket (first byte 0x7F) on this port.
        #[serde(default = "yes")]
        rawsocket: bool,
        /// TLS (wss://, and rss:// on the same port).
        #[serde(default)]
        tls: Option<TlsConfig>,
        /// Authentication methods allowed here; `None`: all the realm offers.
        #[serde(default)]
        auth_methods: Option<Vec<String>>,
    },
    /// RawSocket over TCP.
    Rawsocket {
        /// TCP address.
        address: SocketAddr,
        /// TLS (rss://).
        #[serde(default)]
        tls: Option<TlsConfig>,
        /// Authentication methods allowed here; `None`: all the realm offers.
        #[serde(default)]
        auth_methods: Option<Vec<String>>,
    },
    /// RawSocket over a Unix domain socket.
    Unix {
        /// Socket file path (replaced if it exists).
        path: PathBuf,
        /// Authentication methods allowed here; `None`: all the realm offers.
        #[serde(default)]
        auth_methods: Option<Vec<String>>,
    },
}

impl Listener {
    /// A plain WebSocket listener (RawSocket on the same port), every auth method.
    pub fn websocket(address: SocketAddr, path: impl Into<String>) -> Listener {
        Listener::Websocket {
            address,
            path: path.into(),
            rawsocket: true,
            tls: None,
            auth_methods: None,
        }
    }

    /// A plain RawSocket-over-TCP listener, every auth method.
    pub fn rawsocket(address: SocketAddr) -> Listener {
        Listener::Rawsocket {
            address,
            tls: None,
            auth_methods: None,
        }
    }

    /// A Unix socket listener, every auth method.
    pub fn unix(path: impl Into<PathBuf>) -> Listener {
        Listener::Unix {
            path: path.into(),
            auth_methods: None,
        }
    }

    /// The listener's TLS settings, if it uses TLS.
    pub fn tls(&self) -> Option<&TlsConfig> {
        match self {
            Listener::Websocket { tls, .. } | Listener::Rawsocket { tls, .. } => tls.as_ref(),
            Listener::Unix { .. } => None,
        }
    }

    fn tls_mut(&mut self) -> Option<&mut TlsConfig> {
        match self {
            Listener::Websocket { tls, .. } | Listener::Rawsocket { tls, .. } => tls.as_mut(),
            Listener::Unix { .. } => None,
        }
    }

    /// The authentication methods allowed on this listener (`None`: all).
    pub fn auth_methods(&self) -> Option<&[String]> {
        match self {
            Listener::Websocket { auth_methods, .. }
            | Listener::Rawsocket { auth_methods, .. }
            | Listener::Unix { auth_methods, .. } => auth_methods.as_deref(),
        }
    }
}

/// A listener's `tls` table.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) that client certificates are checked against.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Whether clients present certificates.
    #[serde(default)]
    pub client_certs: ClientCerts,
}

/// Whether a TLS listener asks for client certificates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientCerts {
    /// No client certificates.
    #[default]
    None,
    /// Asked for; a client without one still connects (a presented one must verify).
    Optional,
    /// A verified client certificate is required for the TLS handshake to succeed.
    Required,
}

impl<'de> Deserialize<'de> for ClientCerts {
    // By hand, so the error names the key: inside `[[listener]]` the parser can
    // only point at the table.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        match value.as_str() {
            "none" => Ok(ClientCerts::None),
            "optional" => Ok(ClientCerts::Optional),
            "required" => Ok(ClientCerts::Required),
            other => Err(serde::de::Error::custom(format!(
                "tls.client_certs: unknown value {other:?} (expected \"none\", \"optional\" or \"required\")"
            ))),
        }
    }
}

/// The authentication methods a listener's `auth_methods` may name.
pub const AUTH_METHODS: &[&str] = &[
    "anonymous",
    "ticket",
    "wampcra",
    "tls",
    "cryptosign",
    "wamp-scram",
    "scram",
];

/// A realm.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Realm {
    /// Its name.
    pub name: String,
    /// URI checking: `loose` (the spec's MUST) or `strict`.
    #[serde(default)]
    pub uri_check: UriCheck,
    /// Always disclose the caller (`caller`, `caller_authid`, `caller_authrole`) in
    /// INVOCATION details, whatever CALL and REGISTER ask for.
    #[serde(default)]
    pub disclose_caller: bool,
    /// Always disclose the publisher (`publisher`, `publisher_authid`,
    /// `publisher_authrole`) in EVENT details, whatever PUBLISH asks for.
    #[serde(default)]
    pub disclose_publisher: bool,
    /// Most topics with a retained event; further ones are not retained.
    #[serde(default = "default_max_retained_topics")]
    pub max_retained_topics: usize,
    /// Event histories to keep in memory.
    #[serde(default)]
    pub history: Vec<History>,
    /// Roles and their permissions; with none, everyone may do everything.
    #[serde(default, rename = "role")]
    pub roles: Vec<crate::auth_config::RoleConfig>,
    /// Authentication methods and users; without it, anonymous only.
    #[serde(default)]
    pub auth: Option<crate::auth_config::AuthConfig>,
    /// How long dynamic authorizer answers are cached (0: not cached).
    #[serde(default = "crate::auth_config::default_authorizer_cache_ms")]
    pub authorizer_cache_ms: u64,
    /// Most cached authorizer answers per role (0: not cached).
    #[serde(default = "crate::auth_config::default_authorizer_cache_max")]
    pub authorizer_cache_max: usize,
    /// How long a dynamic authorizer may take to answer.
    #[serde(default = "crate::auth_config::default_dynamic_timeout_ms")]
    pub authorizer_timeout_ms: toml::Spanned<u64>,
}

/// An event history: the last `limit` events on topics matching `topic`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// Topic or pattern; a subscription with exactly this topic and match policy
    /// can read the history.
    pub topic: String,
    /// `exact`, `prefix` or `wildcard`.
    #[serde(default, rename = "match")]
    pub policy: HistoryMatch,
    /// Events kept.
    pub limit: usize,
}

/// A history's match policy.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HistoryMatch {
    /// The topic itself.
    #[default]
    Exact,
    /// Topics starting with it.
    Prefix,
    /// Topics matching it component-wise (empty components match any).
    Wildcard,
}

impl HistoryMatch {
    fn policy(self) -> MatchPolicy {
        match self {
            HistoryMatch::Exact => MatchPolicy::Exact,
            HistoryMatch::Prefix => MatchPolicy::Prefix,
            HistoryMatch::Wildcard => MatchPolicy::Wildcard,
        }
    }
}

fn default_max_retained_topics() -> usize {
    wamp_router::broker::DEFAULT_MAX_RETAINED_TOPICS
}

/// How URIs are checked.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UriCheck {
    /// Components without whitespace, `.` or `#`.
    #[default]
    Loose,
    /// Components of lower-case letters, digits and `_`.
    Strict,
}

/// Size limits.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message accepted or sent, in bytes.
    pub max_message_size: usize,
    /// Most messages queued for one session (see `slow_consumer`).
    pub outbox_max_messages: usize,
    /// Most bytes queued for one session (see `slow_consumer`).
    pub outbox_max_bytes: usize,
    /// What happens when an EVENT does not fit in a session's outbox.
    pub slow_consumer: SlowConsumer,
    /// Most calls one session may have waiting for a result.
    pub calls_per_caller: usize,
    /// Most invocations one callee may have unanswered.
    pub calls_per_callee: usize,
    /// Milliseconds a client has to send its first HELLO, and to answer a CHALLENGE.
    pub auth_timeout_ms: u64,
    /// Failed authentications from one address before its connections are slowed down.
    pub auth_failures_free: u32,
    /// Wait of a connection from an address past its free failures, doubling with
    /// each further failure; 0 turns slowing down off.
    pub auth_failure_delay_ms: u64,
    /// Most a connection is made to wait.
    pub auth_failure_max_delay_ms: u64,
}

/// The slow-consumer policy.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SlowConsumer {
    /// Close the connection and free its queue.
    Disconnect,
    /// Drop the EVENTs that do not fit (counted and logged); keep the session.
    Drop,
}

impl Default for Limits {
    fn default() -> Self {
        let outbox = OutboxLimits::default();
        let calls = CallLimits::default();
        let throttle = wamp_router::throttle::ThrottleConfig::default();
        Limits {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            outbox_max_messages: outbox.max_messages,
            outbox_max_bytes: outbox.max_bytes,
            slow_consumer: SlowConsumer::Disconnect,
            calls_per_caller: calls.per_caller,
            calls_per_callee: calls.per_callee,
            auth_timeout_ms: wamp_router::DEFAULT_AUTH_TIMEOUT.as_millis() as u64,
            auth_failures_free: throttle.free_failures,
            auth_failure_delay_ms: throttle.base_delay.as_millis() as u64,
            auth_failure_max_delay_ms: throttle.max_delay.as_millis() as u64,
        }
    }
}

/// Runtime settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Runtime {
    /// Worker threads; 0 runs everything on one thread.
    pub worker_threads: usize,
}

impl Default for Runtime {
    /// Half the machine's cores, at least one. Routing is mostly system calls and
    /// wake-ups: on 2 cores shared with the clients, one worker routes more per CPU
    /// second than two, which spend it stealing work from each other (see
    /// docs/benchmarks.md). Bigger machines get more workers.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Runtime {
            worker_threads: (cores / 2).max(1),
        }
    }
}

fn default_listeners() -> Vec<Listener> {
    vec![Listener::websocket(
        DEFAULT_ADDRESS
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
        default_path(),
    )]
}

fn default_realms() -> Vec<Realm> {
    vec![Realm::named(DEFAULT_REALM)]
}

impl Realm {
    /// A realm with every setting at its default.
    pub fn named(name: impl Into<String>) -> Realm {
        Realm {
            name: name.into(),
            uri_check: UriCheck::Loose,
            disclose_caller: false,
            disclose_publisher: false,
            max_retained_topics: default_max_retained_topics(),
            history: Vec::new(),
            roles: Vec::new(),
            auth: None,
            authorizer_cache_ms: crate::auth_config::default_authorizer_cache_ms(),
            authorizer_cache_max: crate::auth_config::default_authorizer_cache_max(),
            authorizer_timeout_ms: crate::auth_config::default_dynamic_timeout_ms(),
        }
    }
}

fn default_path() -> String {
    DEFAULT_PATH.into()
}

fn yes() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: default_listeners(),
            realms: default_realms(),
            limits: Limits::default(),
            runtime: Runtime::default(),
        }
    }
}

/// A configuration mistake, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or schema error (the message names line and key).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's description, with line and column.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        Config::parse(&text, Some(dir)).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            ConfigError::Invalid(message) => {
                ConfigError::Invalid(format!("{}: {message}", path.display()))
            }
            other => other,
        })
    }

    /// Parses and validates TOML text (relative TLS paths are taken as they are).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, None)
    }

    /// Parses and validates TOML text; relative TLS file paths are resolved against
    /// `dir` (the config file's directory).
    fn parse(text: &str, dir: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: parse_error_message(text, &e),
        })?;
        if let Some(dir) = dir {
            for tls in config.listeners.iter_mut().filter_map(Listener::tls_mut) {
                for path in [&mut tls.cert, &mut tls.key]
                    .into_iter()
                    .chain(tls.client_ca.as_mut())
                {
                    if path.is_relative() {
                        *path = dir.join(&*path);
                    }
                }
            }
        }
        for realm in &config.realms {
            crate::auth_config::validate(realm, Some(text))?;
            crate::auth_config::validate_links(realm, &config.realms, Some(text))?;
        }
        config.validate_listeners(Some(text))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the listeners' `auth_methods` and `tls` tables (reading the PEM
    /// files); `text` (the file) lets errors name the line.
    fn validate_listeners(&self, text: Option<&str>) -> Result<(), ConfigError> {
        for (index, listener) in self.listeners.iter().enumerate() {
            let fail = |key: &str, field: Option<&str>, what: String| {
                let line = text
                    .and_then(|t| listener_line(t, index, key, field))
                    .map(|n| format!("line {n}: "))
                    .unwrap_or_default();
                Err(ConfigError::Invalid(format!(
                    "{line}listener {}: {what}",
                    index + 1
                )))
            };
            if let Some(methods) = listener.auth_methods() {
                if let Some(bad) = methods.iter().find(|m| !AUTH_METHODS.contains(&m.as_str())) {
                    return fail(
                        "auth_methods",
                        None,
                        format!(
                            "auth_methods: unknown method '{bad}' (known: {})",
                            AUTH_METHODS.join(", ")
                        ),
                    );
                }
                if methods.is_empty() {
                    return fail(
                        "auth_methods",
                        None,
                        "auth_methods: empty (leave it out to allow every method)".into(),
                    );
                }
            }
            if let Some(tls) = listener.tls() {
                if let Err(e) = crate::tls::server_config(tls) {
                    return fail("tls", Some(e.key), e.to_string());
                }
            }
        }
        Ok(())
    }

    /// Checks values the schema cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listeners.is_empty() {
            return Err(ConfigError::Invalid("no listener configured".into()));
        }
        if self.realms.is_empty() {
            return Err(ConfigError::Invalid("no realm configured".into()));
        }
        for realm in &self.realms {
            if !wamp_proto::uri::is_valid_uri(&realm.name, UriRule::Loose) {
                return Err(ConfigError::Invalid(format!(
                    "realm name '{}' is not a valid URI",
                    realm.name
                )));
            }
            for h in &realm.history {
                if !wamp_proto::uri::is_valid_pattern(&h.topic, h.policy.policy(), UriRule::Loose) {
                    return Err(ConfigError::Invalid(format!(
                        "realm '{}': history topic '{}' is not a valid {} pattern",
                        realm.name,
                        h.topic,
                        h.policy.policy()
                    )));
                }
            }
        }
        for realm in &self.realms {
            crate::auth_config::validate(realm, None)?;
            crate::auth_config::validate_links(realm, &self.realms, None)?;
        }
        let mut names: Vec<&str> = self.realms.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::Invalid("a realm is declared twice".into()));
        }
        if self.limits.max_message_size < 512 {
            return Err(ConfigError::Invalid(
                "limits.max_message_size must be at least 512 bytes".into(),
            ));
        }
        let l = &self.limits;
        if l.outbox_max_messages == 0
            || l.outbox_max_bytes < l.max_message_size
            || l.calls_per_caller == 0
            || l.calls_per_callee == 0
            || l.auth_timeout_ms == 0
        {
            return Err(ConfigError::Invalid(
                "limits: outbox_max_messages, calls_per_caller, calls_per_callee and auth_timeout_ms must be at least 1, and outbox_max_bytes at least max_message_size".into(),
            ));
        }
        self.validate_listeners(None)?;
        for l in &self.listeners {
            if let Listener::Websocket { path, .. } = l {
                if !path.starts_with('/') {
                    return Err(ConfigError::Invalid(format!(
                        "listener path '{path}' must start with '/'"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The router's part of the configuration.
    pub fn router_config(&self) -> RouterConfig {
        RouterConfig {
            realms: self
                .realms
                .iter()
                .map(|r| RealmConfig {
                    name: r.name.clone(),
                    uri_rule: match r.uri_check {
                        UriCheck::Loose => UriRule::Loose,
                        UriCheck::Strict => UriRule::Strict,
                    },
                    disclose_caller: r.disclose_caller,
                    disclose_publisher: r.disclose_publisher,
                    max_retained_topics: r.max_retained_topics,
                    history: r
                        .history
                        .iter()
                        .map(|h| HistoryRule {
                            topic: h.topic.clone(),
                            policy: h.policy.policy(),
                            limit: h.limit,
                        })
                        .collect(),
                    auth: crate::auth_config::realm_auth(r),
                })
                .collect(),
            outbox: OutboxLimits {
                max_messages: self.limits.outbox_max_messages,
                max_bytes: self.limits.outbox_max_bytes,
                slow_consumer: match self.limits.slow_consumer {
                    SlowConsumer::Disconnect => SlowConsumerPolicy::Disconnect,
                    SlowConsumer::Drop => SlowConsumerPolicy::DropEvents,
                },
            },
            calls: CallLimits {
                per_caller: self.limits.calls_per_caller,
                per_callee: self.limits.calls_per_callee,
            },
            auth_timeout: std::time::Duration::from_millis(self.limits.auth_timeout_ms),
            auth_throttle: wamp_router::throttle::ThrottleConfig {
                free_failures: self.limits.auth_failures_free,
                base_delay: std::time::Duration::from_millis(self.limits.auth_failure_delay_ms),
                max_delay: std::time::Duration::from_millis(
                    self.limits
                        .auth_failure_max_delay_ms
                        .max(self.limits.auth_failure_delay_ms),
                ),
                ..wamp_router::throttle::ThrottleConfig::default()
            },
        }
    }
}

/// The line of `key` (or, inside the `tls` table, of `field`) in the `index`-th
/// `[[listener]]` table of `text`; the table's own line when the key is not there.
fn listener_line(text: &str, index: usize, key: &str, field: Option<&str>) -> Option<usize> {
    let starts_with_key = |line: &str, key: &str| {
        line.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let mut seen = 0;
    let mut current = false;
    let mut header = None;
    let mut in_tls = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            if line.starts_with("[[listener]]") {
                current = seen == index;
                seen += 1;
                in_tls = false;
                if current {
                    header = Some(n + 1);
                }
            } else if current && line.starts_with("[listener.tls]") {
                in_tls = true;
                if field.is_none() && key == "tls" {
                    return Some(n + 1);
                }
            } else {
                current = false;
            }
            continue;
        }
        if !current {
            continue;
        }
        match field {
            Some(field) if in_tls && starts_with_key(line, field) => return Some(n + 1),
            // An inline table: `tls = { cert = ..., ... }`.
            Some(_) if !in_tls && starts_with_key(line, key) => return Some(n + 1),
            None if !in_tls && starts_with_key(line, key) => return Some(n + 1),
            _ => {}
        }
    }
    header
}

/// A TOML error as `line L, column C: message`. The parser's own rendering quotes
/// the offending source line, which may hold a secret (a WAMP-CRA `secret` with a
/// bad escape, say), so it is left out.
fn parse_error_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) if span.start <= text.len() => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_line_but_do_not_quote_it() {
        // A bad escape in a secret: the error points at it without showing it.
        let text = "[[realm]]\nname = \"r\"\n[[realm.auth.wampcra]]\nauthid = \"peter\"\nrole = \"r\"\nsecret = \"s3cr3t-\\q-value\"\n";
        let Err(ConfigError::Parse { message, .. }) = Config::from_toml(text) else {
            panic!("a parse error");
        };
        assert!(message.starts_with("line 6, column "), "{message}");
        assert!(!message.contains("s3cr3t"), "{message}");
        let Err(ConfigError::Parse { message, .. }) = Config::from_toml("[limits]\nbogus = 1\n")
        else {
            panic!("a parse error");
        };
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(
            message.starts_with("line 2, column 1: ") && message.contains("bogus"),
            "{message}"
        );
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(Config::from_toml("").expect("parse"), Config::default());
    }

    #[test]
    fn full_file_parses() {
        let c = Config::from_toml(
            r#"
            [[listener]]
            type = "websocket"
            address = "127.0.0.1:9000"
            path = "/wamp"
            rawsocket = false
            [[listener]]
            type = "rawsocket"
            address = "127.0.0.1:9001"
            [[listener]]
            type = "unix"
            path = "/tmp/j.sock"
            [[realm]]
            name = "a"
            [[realm]]
            name = "b"
            uri_check = "strict"
            disclose_caller = true
            disclose_publisher = true
            max_retained_topics = 5
            [[realm.history]]
            topic = "com.example."
            match = "prefix"
            limit = 100
            [[realm.history]]
            topic = "com.example.x"
            limit = 3
            [limits]
            max_message_size = 1024
            "#,
        )
        .expect("parse");
        assert_eq!(c.listeners.len(), 3);
        assert_eq!(c.realms[1].uri_check, UriCheck::Strict);
        let realms = c.router_config().realms;
        assert!(!realms[0].disclose_caller && realms[1].disclose_caller);
        assert!(!realms[0].disclose_publisher && realms[1].disclose_publisher);
        assert_eq!(realms[0].max_retained_topics, 10_000);
        assert_eq!(realms[1].max_retained_topics, 5);
        assert_eq!(
            realms[1].history,
            vec![
                HistoryRule {
                    topic: "com.example.".into(),
                    policy: MatchPolicy::Prefix,
                    limit: 100
                },
                HistoryRule {
                    topic: "com.example.x".into(),
                    policy: MatchPolicy::Exact,
                    limit: 3
                }
            ]
        );
        assert!(Config::from_toml(
            "[[realm]]\nname = \"a\"\n[[realm.history]]\ntopic = \"a..b\"\nmatch = \"prefix\"\nlimit = 1\n"
        )
        .is_err());
        assert_eq!(c.limits.max_message_size, 1024);
        assert_eq!(
            c.limits.outbox_max_bytes,
            Limits::default().outbox_max_bytes
        );
    }

    #[test]
    fn listener_tls_and_auth_methods() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        std::fs::write(dir.path().join("c.pem"), cert.pem()).expect("write");
        std::fs::write(dir.path().join("k.pem"), key.serialize_pem()).expect("write");
        let text = "[[listener]]\ntype = \"rawsocket\"\naddress = \"127.0.0.1:0\"\nauth_methods = [\"tls\", \"ticket\"]\ntls = { cert = \"c.pem\", key = \"k.pem\", client_ca = \"c.pem\", client_certs = \"required\" }\n";
        let path = dir.path().join("j.toml");
        std::fs::write(&path, text).expect("write");
        let c = Config::from_file(&path).expect("parses");
        let tls = c.listeners[0].tls().expect("tls");
        assert_eq!(tls.cert, dir.path().join("c.pem"));
        assert_eq!(tls.client_certs, ClientCerts::Required);
        assert_eq!(
            c.listeners[0].auth_methods(),
            Some(&["tls".to_owned(), "ticket".to_owned()][..])
        );
        let e = Config::from_toml(
            "[[realm]]\nname = \"a\"\n[[listener]]\ntype = \"unix\"\npath = \"/tmp/x\"\nauth_methods = []\n",
        )
        .expect_err("empty list");
        assert!(
            e.to_string().contains("line 6: listener 1: auth_methods"),
            "{e}"
        );
        let e = Config::from_toml(
            "[[listener]]\ntype = \"unix\"\npath = \"/x\"\ntls = { cert = \"a\", key = \"b\" }\n",
        )
        .expect_err("no TLS on Unix sockets");
        assert!(e.to_string().contains("tls"), "{e}");
    }

    #[test]
    fn mistakes_name_line_and_key() {
        let e =
            Config::from_toml("[[realm]]\nname = \"a\"\ncolour = 1\n").expect_err("unknown key");
        let text = e.to_string();
        assert!(text.contains("colour"), "{text}");
        assert!(text.contains("line 3"), "{text}");
        let e = Config::from_toml("[[listener]]\ntype = \"carrier-pigeon\"\n").expect_err("type");
        assert!(e.to_string().contains("carrier-pigeon"), "{e}");
        assert!(Config::from_toml("[[realm]]\nname = \"bad name\"\n").is_err());
        assert!(Config::from_toml("[[realm]]\nname = \"a\"\n[[realm]]\nname = \"a\"\n").is_err());
    }
}
