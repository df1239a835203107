//! `junction bench`: a load generator for any WAMP v2 router (Junction, Crossbar.io, …).
//!
//! Scenarios ([`Scenario`]): `rpc` (callers × in-flight calls to echo callees),
//! `pubsub` (publishers with a flow-control window, fanned out to subscribers),
//! `latency` (one sequential caller) and `connections` (many idle sessions).
//!
//! Every scenario runs on the lean single-task connections of [`wire`] rather than
//! `wamp-client` sessions, so the generator spends as little CPU per operation as
//! possible (it usually shares the machine with the router it measures). Results
//! cover the measured window only (after `--warmup`), and include the router's CPU
//! per operation when `--router-pid` is given (see [`stats`]). See `docs/bench.md`.

pub mod connections;
pub mod pubsub;
pub mod report;
pub mod rpc;
pub mod stats;
pub mod wire;

use std::io::IsTerminal as _;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wamp_proto::Serializer;

pub use report::Report;

/// `junction bench` arguments.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// A load scenario.
#[derive(Subcommand, Debug, Clone)]
pub enum Scenario {
    /// Routed calls: callers keep `--in-flight` calls outstanding to echo callees.
    Rpc(RpcArgs),
    /// Publish & subscribe: events fanned out to every subscriber, with a window.
    Pubsub(PubsubArgs),
    /// Round-trip time of sequential calls (one caller, one callee).
    Latency(LatencyArgs),
    /// Open many sessions and keep them open; report setup rate and memory.
    Connections(ConnectionsArgs),
}

/// Options shared by every scenario.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Router URL: ws://host:port/path, rs://host:port or unix:///path.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub url: String,
    /// Realm to join.
    #[arg(long, default_value = "realm1")]
    pub realm: String,
    /// Serializer.
    #[arg(long, value_enum, default_value_t = SerializerArg::Json)]
    pub serializer: SerializerArg,
    /// Measured time in seconds (after the warmup).
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Warmup time in seconds; operations completed during it are not counted.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Process id of the router: report its CPU time per operation and its memory.
    #[arg(long, value_name = "PID")]
    pub router_pid: Option<u32>,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Worker threads of the load generator's runtime (1: single-threaded).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// A serializer name on the command line.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SerializerArg {
    /// JSON.
    Json,
    /// MessagePack.
    Msgpack,
    /// CBOR.
    Cbor,
}

impl SerializerArg {
    /// The protocol serializer.
    pub fn serializer(self) -> Serializer {
        match self {
            SerializerArg::Json => Serializer::Json,
            SerializerArg::Msgpack => Serializer::MsgPack,
            SerializerArg::Cbor => Serializer::Cbor,
        }
    }
}

/// `rpc` options.
#[derive(Args, Debug, Clone)]
pub struct RpcArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Callee sessions; more than one registers with `invoke: roundrobin`.
    #[arg(long, default_value_t = 1)]
    pub callees: usize,
    /// Caller sessions.
    #[arg(long, default_value_t = 4)]
    pub callers: usize,
    /// Calls outstanding per caller.
    #[arg(long, default_value_t = 16)]
    pub in_flight: usize,
    /// Length of the string argument, in bytes.
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Procedure URI (a random suffix is appended).
    #[arg(long, default_value = "bench.rpc.echo")]
    pub procedure: String,
}

/// `pubsub` options.
#[derive(Args, Debug, Clone)]
pub struct PubsubArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Publisher sessions.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Subscriber sessions.
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// Publications per publisher not yet received by every subscriber.
    #[arg(long, default_value_t = 16)]
    pub in_flight: usize,
    /// Approximate size of the event arguments, in bytes.
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Topic URI (a random suffix is appended).
    #[arg(long, default_value = "bench.pubsub")]
    pub topic: String,
}

/// `latency` options.
#[derive(Args, Debug, Clone)]
pub struct LatencyArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Length of the string argument, in bytes.
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Procedure URI (a random suffix is appended).
    #[arg(long, default_value = "bench.rpc.echo")]
    pub procedure: String,
}

/// `connections` options.
#[derive(Args, Debug, Clone)]
pub struct ConnectionsArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Sessions to open.
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Seconds to keep all sessions open before closing them.
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
    /// Limit for the whole run, in seconds.
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
    /// Spread TCP sessions over this many loopback source addresses (127.0.0.1,
    /// 127.0.0.2, …). 0: automatic (one per 10,000 sessions to a loopback router).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub source_addresses: usize,
}

impl Scenario {
    /// The options shared by all scenarios.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Scenario::Rpc(a) => &a.common,
            Scenario::Pubsub(a) => &a.common,
            Scenario::Latency(a) => &a.common,
            Scenario::Connections(a) => &a.common,
        }
    }
}

#[derive(Parser, Debug)]
#[command(name = "junction bench")]
struct Standalone {
    #[command(flatten)]
    args: BenchArgs,
}

/// Parses bench arguments, e.g. `["bench", "rpc", "--duration", "1"]` (the first item
/// is the program name).
pub fn parse_args<I, T>(args: I) -> Result<BenchArgs, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Standalone::try_parse_from(args).map(|s| s.args)
}

/// Runs a scenario on the current runtime and returns its report.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let common = args.scenario.common();
    anyhow::ensure!(
        common.duration.is_finite() && common.duration > 0.0,
        "--duration must be positive"
    );
    anyhow::ensure!(
        common.warmup.is_finite() && common.warmup >= 0.0,
        "--warmup must not be negative"
    );
    anyhow::ensure!(common.threads >= 1, "--threads must be at least 1");
    match &args.scenario {
        Scenario::Rpc(a) => rpc::run(a.common.clone(), rpc::Params::from(a), "rpc").await,
        Scenario::Latency(a) => {
            let params = rpc::Params {
                callers: 1,
                callees: 1,
                in_flight: 1,
                payload: a.payload,
                procedure: a.procedure.clone(),
            };
            rpc::run(a.common.clone(), params, "latency").await
        }
        Scenario::Pubsub(a) => pubsub::run(a).await,
        Scenario::Connections(a) => connections::run(a).await,
    }
}

/// `junction bench`: builds the runtime, runs, prints the table or JSON. Exits with
/// status 1 and a one-line message on failure.
pub fn main(args: BenchArgs) -> anyhow::Result<()> {
    let common = args.scenario.common().clone();
    let runtime = if common.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(common.threads)
            .enable_all()
            .build()
    };
    let result = runtime
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(&args)));
    match result {
        Ok(report) => {
            if common.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.table());
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("junction bench: {}", format!("{e:#}").replace('\n', " "));
            std::process::exit(1);
        }
    }
}

/// Whether to draw progress bars.
fn show_progress(common: &CommonArgs) -> bool {
    !common.json && std::io::stderr().is_terminal() && std::io::stdout().is_terminal()
}

/// A progress bar on stderr, or a hidden one.
fn progress_bar(common: &CommonArgs, len: u64, template: &str) -> ProgressBar {
    if !show_progress(common) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Seconds as a duration (negative or NaN: zero).
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

/// Setup (connecting, registering, subscribing) must finish within this.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);
/// After the measured window, outstanding operations get this long to complete.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// A random suffix so concurrent runs use distinct URIs.
fn unique(base: &str) -> String {
    format!("{base}.{:08x}", rand::random::<u32>())
}

/// Runs the warmup and the measured window, moving the clock through its phases;
/// returns the CPU used during the measured window.
async fn timed_window(common: &CommonArgs, clock: &stats::Clock, scenario: &str) -> stats::CpuUse {
    let warmup = secs(common.warmup);
    let duration = secs(common.duration);
    let total_ms = (warmup + duration).as_millis() as u64;
    let bar = progress_bar(
        common,
        total_ms.max(1),
        "{msg:>12} [{bar:40}] {elapsed_precise}",
    );
    bar.set_message(format!("{scenario} warmup"));
    let ticker = {
        let bar = bar.clone();
        let start = tokio::time::Instant::now();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                bar.set_position(start.elapsed().as_millis() as u64);
            }
        })
    };
    tokio::time::sleep(warmup).await;
    let start = stats::CpuSample::take(common.router_pid);
    clock.set(stats::MEASURE);
    bar.set_message(scenario.to_owned());
    tokio::time::sleep(duration).await;
    clock.set(stats::STOP);
    let end = stats::CpuSample::take(common.router_pid);
    ticker.abort();
    bar.finish_and_clear();
    stats::CpuUse::between(&start, &end)
}

/// Waits for every task, giving up on those still running at `deadline`.
async fn join_all<T>(
    tasks: Vec<tokio::task::JoinHandle<T>>,
    deadline: tokio::time::Instant,
) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for mut task in tasks {
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(_)) => {}
            Err(_) => task.abort(),
        }
    }
    out
}

/// Moves the clock to FINISH after `delay` (abort the handle to cancel).
fn finish_after(
    clock: &std::sync::Arc<stats::Clock>,
    delay: Duration,
) -> tokio::task::JoinHandle<()> {
    let clock = clock.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        clock.set(stats::FINISH);
    })
}
