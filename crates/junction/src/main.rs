//! The `junction` command: runs the router (`junction serve`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use junction::config::{Config, Listener, Realm};
use junction::Server;

/// Junction: a WAMP v2 router (publish & subscribe, routed RPC) over WebSocket and
/// RawSocket, with JSON, MessagePack and CBOR.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the router. With no options: WebSocket on ws://127.0.0.1:8080/ws (RawSocket
    /// on the same port), realm `realm1`, anonymous access.
    Serve(ServeArgs),
    /// Check a configuration file and report the first mistake with its line.
    Check {
        /// The TOML file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Load generator for any WAMP router: rpc, pubsub, latency, connections
    /// (see docs/bench.md).
    Bench(junction::bench::BenchArgs),
    /// Call a procedure and print its result (see docs/cli.md).
    Call(junction::cli::CallArgs),
    /// Publish an event to a topic.
    Publish(junction::cli::PublishArgs),
    /// Print each event published to a topic as it arrives.
    Subscribe(junction::cli::SubscribeArgs),
    /// Register a procedure answered by running a command per invocation.
    Register(junction::cli::RegisterArgs),
    /// Print the stored form of a secret: a ticket's `ticket_hash`, with --salt the
    /// salted WAMP-CRA `derived_key`, with --method scram WAMP-SCRAM key material
    /// (see docs/configuration.md).
    HashSecret(junction::auth_config::HashSecretArgs),
    /// Generate an Ed25519 key pair for WAMP-Cryptosign.
    Keygen(junction::keygen::KeygenArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// TOML configuration file (see docs/configuration.md). Flags below override it.
    #[arg(long, short, env = "JUNCTION_CONFIG")]
    config: Option<PathBuf>,
    /// WebSocket address (RawSocket is accepted on the same port). Replaces the
    /// configured listeners; repeat for several.
    #[arg(long, value_name = "ADDR")]
    listen: Vec<SocketAddr>,
    /// HTTP path of the WebSocket endpoint.
    #[arg(long, default_value = "/ws")]
    path: String,
    /// Add a RawSocket-only TCP listener.
    #[arg(long, value_name = "ADDR")]
    rawsocket: Vec<SocketAddr>,
    /// Add a RawSocket listener on a Unix domain socket.
    #[arg(long, value_name = "PATH")]
    unix: Vec<PathBuf>,
    /// Realm to serve (repeat for several). Replaces the configured realms.
    #[arg(long, value_name = "NAME")]
    realm: Vec<String>,
    /// Largest message accepted or sent, in bytes.
    #[arg(long, value_name = "BYTES")]
    max_message_size: Option<usize>,
    /// Runtime worker threads (0: single-threaded).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Log level (or use RUST_LOG for per-module filters).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Check { config } => {
            Config::from_file(&config)?;
            println!("{}: ok", config.display());
            Ok(())
        }
        Command::Bench(args) => junction::bench::main(args),
        Command::Call(args) => std::process::exit(junction::cli::call(args)),
        Command::Publish(args) => std::process::exit(junction::cli::publish(args)),
        Command::Subscribe(args) => std::process::exit(junction::cli::subscribe(args)),
        Command::Register(args) => std::process::exit(junction::cli::register(args)),
        Command::HashSecret(args) => junction::auth_config::hash_secret(args),
        Command::Keygen(args) => junction::keygen::keygen(args),
    }
}

fn build_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if !args.listen.is_empty() {
        config.listeners = args
            .listen
            .iter()
            .map(|address| Listener::websocket(*address, args.path.clone()))
            .collect();
    }
    config.listeners.extend(
        args.rawsocket
            .iter()
            .map(|address| Listener::rawsocket(*address)),
    );
    config
        .listeners
        .extend(args.unix.iter().map(|path| Listener::unix(path.clone())));
    if !args.realm.is_empty() {
        config.realms = args.realm.iter().map(Realm::named).collect();
    }
    if let Some(size) = args.max_message_size {
        config.limits.max_message_size = size;
    }
    if let Some(threads) = args.threads {
        config.runtime.worker_threads = threads;
    }
    config.validate()?;
    Ok(config)
}

fn init_logging(args: &ServeArgs) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = build_config(&args)?;
    init_logging(&args);
    // Each connection is a file descriptor: take all the process may have.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
    let runtime = if config.runtime.worker_threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.runtime.worker_threads)
            .enable_all()
            .build()
    }
    .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let server = Server::start(&config).await?;
        announce(&server, &config);
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown(Duration::from_secs(5)).await;
        Ok(())
    })
}

fn announce(server: &Server, config: &Config) {
    print!("{}", junction::banner::banner(server.endpoints(), config));
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
