//! The `junction` client subcommands (`call`, `publish`, `subscribe`, `register`)
//! and `serve`'s log format, run as the built binary against a router started by
//! the test. Output is piped, so every result is one JSON object per line.

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::{TestRouter, Via};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use wamp_client::{CallOptions, Dict, Payload, Session, Value};

const BIN: &str = env!("CARGO_BIN_EXE_junction");

/// A hang guard only: generous, never a measure of speed.
async fn guard<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// `junction ARGS` with a clean environment (no JUNCTION_* or RUST_LOG from outside).
fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("JUNCTION_URL")
        .env_remove("JUNCTION_REALM")
        .env_remove("JUNCTION_SERIALIZER")
        .env_remove("JUNCTION_AUTHID")
        .env_remove("JUNCTION_AUTHMETHOD")
        .env_remove("JUNCTION_TICKET")
        .env_remove("JUNCTION_SECRET")
        .env_remove("JUNCTION_PRIVATE_KEY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

async fn run(args: &[&str]) -> Output {
    guard(&format!("junction {args:?}"), command(args).output())
        .await
        .expect("junction runs")
}

/// `junction SUB --url URL ARGS…` against the router.
async fn client(router: &TestRouter, sub: &str, args: &[&str]) -> Output {
    let url = router.ws_url();
    let mut all = vec![sub, "--url", &url];
    all.extend_from_slice(args);
    run(&all).await
}

fn stdout_lines(out: &Output) -> Vec<Json> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: &Output) -> Vec<Json> {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        stderr(out)
    );
    stdout_lines(out)
}

/// A failure: non-zero exit, nothing on stdout, one line on stderr; returns it.
fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, stdout: {:?}",
        out.stdout
    );
    assert!(
        out.stdout.is_empty(),
        "stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = stderr(out);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("junction: error: "), "{err:?}");
    err
}

/// Starts a long-running subcommand and waits for its "ready" line on stderr.
async fn start_ready(router: &TestRouter, args: &[&str], ready: &str) -> Child {
    let url = router.ws_url();
    let mut all = vec!["--url", url.as_str()];
    all.splice(0..0, args[..1].iter().copied());
    all.extend_from_slice(&args[1..]);
    let mut child = command(&all).spawn().expect("spawn");
    let err = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(err).lines();
    let line = guard("ready line", lines.next_line())
        .await
        .expect("read stderr")
        .unwrap_or_default();
    assert!(line.contains(ready), "{line:?}");
    // Keep draining stderr so the child never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

async fn echo_callee(router: &TestRouter) -> (Session, wamp_client::RegistrationHandle) {
    let session = router.join().await;
    let handle = session
        .register_fn("test.echo", |args: Vec<Value>, kwargs: Dict| async move {
            Ok((args, kwargs))
        })
        .await
        .expect("register");
    (session, handle)
}

#[tokio::test]
async fn call_types_arguments_like_a_person() {
    let router = TestRouter::start().await;
    let (_callee, _reg) = echo_callee(&router).await;
    let out = client(
        &router,
        "call",
        &[
            "test.echo",
            "42",
            "-7",
            "2.5",
            "true",
            "false",
            "null",
            "hello",
            r#"{"a":[1]}"#,
            "[1,\"x\"]",
            "\"17\"",
            "--kwarg",
            "n=3",
            "-k",
            "s=text",
        ],
    )
    .await;
    assert_eq!(
        ok(&out),
        vec![json!({
            "args": [42, -7, 2.5, true, false, null, "hello", {"a": [1]}, [1, "x"], "17"],
            "kwargs": {"n": 3, "s": "text"}
        })]
    );
    let out = client(
        &router,
        "call",
        &["test.echo", "-s", "42", "true", "-k", "n=3"],
    )
    .await;
    assert_eq!(
        ok(&out),
        vec![json!({"args": ["42", "true"], "kwargs": {"n": "3"}})]
    );
    let out = client(&router, "call", &["test.echo", "-k", "novalue"]).await;
    assert!(failed(&out).contains("KEY=VALUE"));
}

#[tokio::test]
async fn call_errors_are_one_line_and_non_zero() {
    let router = TestRouter::start().await;
    let out = client(&router, "call", &["test.nobody"]).await;
    let err = failed(&out);
    assert!(err.contains("wamp.error.no_such_procedure"), "{err}");
    assert!(err.contains("test.nobody"), "{err}");

    // A callee's application error, with its message.
    let session = router.join().await;
    let _reg = session
        .register_fn("test.fail", |_a: Vec<Value>, _k: Dict| async move {
            Err((
                "test.error.bad".to_owned(),
                vec![Value::from("it went wrong")],
                Dict::new(),
            ))
        })
        .await
        .expect("register");
    let err = failed(&client(&router, "call", &["test.fail"]).await);
    assert!(err.contains("test.error.bad: it went wrong"), "{err}");

    // A realm the router does not have: ABORT.
    let err = failed(&client(&router, "call", &["test.x", "--realm", "nosuch"]).await);
    assert!(err.contains("wamp.error.no_such_realm"), "{err}");

    // Nobody listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("ws://127.0.0.1:{port}/ws");
    let err = failed(&run(&["call", "--url", &url, "test.x"]).await);
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains(&url), "{err}");

    // Over TLS too.
    let url = format!("wss://127.0.0.1:{port}/ws");
    let err = failed(&run(&["call", "--url", &url, "test.x"]).await);
    assert!(err.contains("connection refused"), "{err}");
}

#[tokio::test]
async fn call_timeout_is_reported() {
    let router = TestRouter::start().await;
    let session = router.join().await;
    // A callee that never answers.
    let _reg = session
        .register_fn("test.never", |_a: Vec<Value>, _k: Dict| async move {
            std::future::pending::<()>().await;
            Ok((vec![], Dict::new()))
        })
        .await
        .expect("register");
    let err = failed(&client(&router, "call", &["test.never", "--timeout", "0.2"]).await);
    assert!(err.contains("wamp.error.timeout"), "{err}");
}

#[tokio::test]
async fn progressive_results_come_as_they_arrive() {
    let router = TestRouter::start().await;
    let session = router.join().await;
    let mut reg = session.register("test.count").await.expect("register");
    tokio::spawn(async move {
        while let Some(inv) = reg.next().await {
            for i in 0..2 {
                let _ = inv.progress(vec![Value::from(i)], Dict::new()).await;
            }
            let _ = inv
                .yield_result(vec![Value::from("done")], Dict::new())
                .await;
        }
    });
    let out = client(&router, "call", &["test.count", "--progress"]).await;
    assert_eq!(
        ok(&out),
        vec![
            json!({"args": [0], "kwargs": {}, "progress": true}),
            json!({"args": [1], "kwargs": {}, "progress": true}),
            json!({"args": ["done"], "kwargs": {}}),
        ]
    );
}

#[cfg(unix)]
#[tokio::test]
async fn ctrl_c_cancels_the_call() {
    let router = TestRouter::start().await;
    let session = router.join().await;
    let mut reg = session.register("test.slow").await.expect("register");
    let url = router.ws_url();
    let child = command(&["call", "--url", &url, "test.slow"])
        .spawn()
        .expect("spawn");
    let inv = guard("invocation", reg.next()).await.expect("invocation");
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    // The router interrupts the callee: the CLI sent CANCEL.
    guard("interrupt", inv.interrupted()).await;
    let out = guard("exit", child.wait_with_output()).await.expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("canceled"), "{}", stderr(&out));
}

#[tokio::test]
async fn publish_and_subscribe() {
    let router = TestRouter::start().await;
    let sub = start_ready(
        &router,
        &["subscribe", "test.topic", "--count", "2"],
        "subscribed",
    )
    .await;
    ok(&client(
        &router,
        "publish",
        &["test.topic", "1", "two", "-k", "k=[true]"],
    )
    .await);
    let acked = ok(&client(&router, "publish", &["test.topic", "--acknowledge", "3"]).await);
    assert_eq!(acked.len(), 1);
    assert!(acked[0]["publication"].is_u64(), "{acked:?}");
    let out = guard("subscriber exits", sub.wait_with_output())
        .await
        .expect("wait");
    assert_eq!(
        ok(&out),
        vec![
            json!({"args": [1, "two"], "kwargs": {"k": [true]}, "topic": "test.topic"}),
            json!({"args": [3], "kwargs": {}, "topic": "test.topic"}),
        ]
    );
}

#[tokio::test]
async fn subscribe_with_a_pattern() {
    let router = TestRouter::start().await;
    let sub = start_ready(
        &router,
        &["subscribe", "test.p", "--match", "prefix", "-n", "1"],
        "subscribed",
    )
    .await;
    ok(&client(&router, "publish", &["test.p.deeper", "x"]).await);
    let out = guard("subscriber exits", sub.wait_with_output())
        .await
        .expect("wait");
    assert_eq!(
        ok(&out),
        vec![json!({"args": ["x"], "kwargs": {}, "topic": "test.p.deeper"})]
    );
}

#[tokio::test]
async fn register_runs_a_command() {
    let router = TestRouter::start().await;
    // stdout JSON is the result.
    let mut reg = start_ready(
        &router,
        &[
            "register",
            "test.cmd",
            "-n",
            "1",
            "--",
            "sh",
            "-c",
            "echo '[1,2]'",
        ],
        "registered",
    )
    .await;
    let out = client(&router, "call", &["test.cmd"]).await;
    assert_eq!(ok(&out), vec![json!({"args": [[1, 2]], "kwargs": {}})]);
    assert!(guard("register exits", reg.wait())
        .await
        .expect("wait")
        .success());

    // Arguments in argv (strings as they are, others as JSON) and on stdin.
    let mut reg = start_ready(
        &router,
        &[
            "register",
            "test.args",
            "-n",
            "2",
            "--",
            "sh",
            "-c",
            r#"if [ "$#" -gt 0 ]; then printf '%s|' "$@"; else cat; fi"#,
            "sh",
        ],
        "registered",
    )
    .await;
    let out = client(&router, "call", &["test.args", "a b", "5", "[1]"]).await;
    assert_eq!(
        ok(&out),
        vec![json!({"args": ["a b|5|[1]|"], "kwargs": {}})]
    );
    let out = client(&router, "call", &["test.args", "-k", "x=1"]).await;
    assert_eq!(
        ok(&out),
        vec![json!({"args": [{"args": [], "kwargs": {"x": 1}}], "kwargs": {}})]
    );
    assert!(guard("register exits", reg.wait())
        .await
        .expect("wait")
        .success());

    // A failing command: junction.error.command_failed with its stderr.
    let mut reg = start_ready(
        &router,
        &[
            "register",
            "test.bad",
            "-n",
            "1",
            "--",
            "sh",
            "-c",
            "echo broken >&2; exit 3",
        ],
        "registered",
    )
    .await;
    let err = failed(&client(&router, "call", &["test.bad"]).await);
    assert!(
        err.contains("junction.error.command_failed: broken"),
        "{err}"
    );
    assert!(err.contains("\"exit_code\":3"), "{err}");
    assert!(guard("register exits", reg.wait())
        .await
        .expect("wait")
        .success());
}

#[tokio::test]
async fn register_answers_a_library_caller() {
    let router = TestRouter::start().await;
    let mut reg = start_ready(
        &router,
        &[
            "register",
            "test.lib",
            "-n",
            "1",
            "--",
            "echo",
            "plain text",
        ],
        "registered",
    )
    .await;
    let session = router.join().await;
    let result = session
        .call_with("test.lib", Payload::empty(), CallOptions::new())
        .await
        .expect("call");
    assert_eq!(result.args, vec![Value::from("plain text")]);
    assert!(guard("register exits", reg.wait())
        .await
        .expect("wait")
        .success());
}

#[tokio::test]
async fn environment_sets_the_profile() {
    let router = TestRouter::start().await;
    let (_callee, _reg) = echo_callee(&router).await;
    for (via, serializer) in [
        (Via::RawSocket, "msgpack"),
        (Via::Unix, "cbor"),
        (Via::WebSocket, "json"),
    ] {
        let out = guard(
            "call",
            command(&["call", "test.echo", "1"])
                .env("JUNCTION_URL", router.url(via))
                .env("JUNCTION_REALM", "realm1")
                .env("JUNCTION_SERIALIZER", serializer)
                .output(),
        )
        .await
        .expect("runs");
        assert_eq!(
            ok(&out),
            vec![json!({"args": [1], "kwargs": {}})],
            "{via:?}"
        );
    }
    // The environment's realm is used (and a flag overrides it).
    let out = guard(
        "call",
        command(&["call", "test.echo"])
            .env("JUNCTION_URL", router.ws_url())
            .env("JUNCTION_REALM", "nosuch")
            .output(),
    )
    .await
    .expect("runs");
    assert!(failed(&out).contains("no_such_realm"));
}

/// The banner lines of `serve`, up to "Stop with Ctrl-C."; the child is killed.
async fn banner_of(mut child: Child) -> Vec<String> {
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut lines = Vec::new();
    while let Some(line) = guard("banner", out.next_line()).await.expect("read") {
        let last = line.starts_with("Stop with");
        lines.push(line);
        if last {
            break;
        }
    }
    child.kill().await.expect("kill");
    lines
}

#[tokio::test]
async fn serve_banner_says_what_each_realm_offers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = wamp_router::auth::hash_ticket("t1cket", 1000);
    let path = dir.path().join("junction.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[realm]]
name = "secure"
[[realm.role]]
name = "backend"
[[realm.auth.ticket]]
authid = "joe"
role = "backend"
ticket_hash = "{hash}"

[[realm]]
name = "dyn"
[realm.auth.dynamic]
procedure = "com.example.authenticate"
realm = "open"
methods = ["ticket", "tls"]

[[realm]]
name = "open"
"#
        ),
    )
    .expect("write");
    let config = path.to_str().expect("utf-8 path");
    let args = ["serve", "--config", config, "--listen", "127.0.0.1:0"];
    let lines = banner_of(command(&args).spawn().expect("spawn")).await;
    let text = lines.join("\n");
    assert!(
        text.contains("  Realms     secure (ticket; roles: 1)\n"),
        "{text}"
    );
    assert!(
        text.contains("\n             dyn (dynamic: ticket, tls)\n"),
        "{text}"
    );
    assert!(text.contains("\n             open (anonymous)\n"), "{text}");
    // The hint names the realm a client can join without credentials.
    let hint = lines
        .iter()
        .find(|l| l.starts_with("Connect with Autobahn"))
        .expect("a hint");
    assert!(hint.ends_with("realm: 'open'})"), "{hint}");

    // Only realms that need credentials: the hint says which methods.
    let args = [
        "serve",
        "--config",
        config,
        "--listen",
        "127.0.0.1:0",
        "--realm",
        "x",
    ];
    let lines = banner_of(command(&args).spawn().expect("spawn")).await;
    assert!(
        lines.iter().any(|l| l == "  Realms     x (anonymous)"),
        "{lines:?}"
    );
    std::fs::write(
        &path,
        format!(
            "[[realm]]\nname = \"secure\"\n[[realm.auth.ticket]]\nauthid = \"joe\"\nrole = \"backend\"\nticket_hash = \"{hash}\"\n"
        ),
    )
    .expect("write");
    let args = ["serve", "--config", config, "--listen", "127.0.0.1:0"];
    let lines = banner_of(command(&args).spawn().expect("spawn")).await;
    let hint = lines
        .iter()
        .find(|l| l.starts_with("Connect with Autobahn"))
        .expect("a hint");
    assert!(
        hint.contains(
            "realm: 'secure', authmethods: ['ticket'], ...}) (the realm needs credentials)"
        ),
        "{hint}"
    );
}

#[tokio::test]
async fn serve_logs_json_to_stderr() {
    let mut child = command(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--log-level",
        "debug",
    ])
    .spawn()
    .expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let first = guard("banner", out.next_line())
        .await
        .expect("read")
        .unwrap_or_default();
    assert!(first.starts_with("Junction "), "{first:?}");
    let log = guard("log line", err.next_line())
        .await
        .expect("read")
        .unwrap_or_default();
    let parsed: Json = serde_json::from_str(&log).unwrap_or_else(|e| panic!("{log:?}: {e}"));
    assert!(parsed["level"].is_string(), "{parsed}");
    child.kill().await.expect("kill");
}

/// A realm `secure` without anonymous access: ticket, WAMP-CRA, WAMP-SCRAM and
/// cryptosign users; `test.echo` registered there by a ticket user.
async fn secure_router(cryptosign_pubkey: &str) -> (TestRouter, Session) {
    let hash = wamp_router::auth::hash_ticket("t1cket", 1000);
    let scram = junction::auth_config::scram_form(
        "scram pass",
        junction::auth_config::KdfArg::Pbkdf2,
        Some(64),
        0,
    )
    .expect("scram");
    let toml = format!(
        r#"
[[realm]]
name = "secure"
[[realm.auth.ticket]]
authid = "joe"
role = "user"
ticket_hash = "{hash}"
[[realm.auth.wampcra]]
authid = "peter"
role = "user"
secret = "cra secret"
[[realm.auth.scram]]
authid = "mary"
role = "user"
{scram}
[[realm.auth.cryptosign]]
authid = "device"
role = "user"
pubkeys = ["{cryptosign_pubkey}"]
"#
    );
    let parsed = junction::Config::from_toml(&toml).expect("config");
    let router = TestRouter::start_with(move |c| c.realms = parsed.realms).await;
    let callee = Session::connect_with(
        &router.ws_url(),
        "secure",
        wamp_client::ConnectOptions::default().with_ticket("joe", "t1cket"),
    )
    .await
    .expect("callee joins");
    callee
        .register_fn("test.echo", |args: Vec<Value>, kwargs: Dict| async move {
            Ok((args, kwargs))
        })
        .await
        .expect("register");
    (router, callee)
}

#[tokio::test]
async fn keygen_and_every_authmethod() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("device.key");
    let key_path = key_file.to_str().expect("utf-8");
    // keygen: a pair on stdout, or the private key into a 0600 file.
    let out = run(&["keygen"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let private_hex = text
        .lines()
        .find_map(|l| l.strip_prefix("private key: "))
        .expect("private key line")
        .trim()
        .to_owned();
    assert_eq!(private_hex.len(), 64);
    let out = run(&["keygen", "--out", key_path]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let public = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(public.len(), 64, "{public}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = run(&["keygen", "--out", key_path]).await;
    assert!(!again.status.success(), "does not overwrite a key file");

    let (router, _callee) = secure_router(&public).await;
    let echo = |extra: &[&str]| {
        let mut args = vec!["test.echo", "1", "--realm", "secure"];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let expected = vec![json!({"args": [1], "kwargs": {}})];
    for extra in [
        vec!["--authid", "joe", "--ticket", "t1cket"],
        vec!["--authid", "peter", "--secret", "cra secret"],
        vec![
            "--authid",
            "mary",
            "--secret",
            "scram pass",
            "--authmethod",
            "wamp-scram",
        ],
        vec!["--private-key", key_path],
        vec!["--authid", "device", "--private-key", key_path],
    ] {
        let args = echo(&extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(
            ok(&client(&router, "call", &args).await),
            expected,
            "{extra:?}"
        );
    }
    // The private key as hex, and credentials from the environment.
    let key_text = std::fs::read_to_string(&key_file).expect("key file");
    let seed = key_text
        .lines()
        .find(|l| !l.starts_with('#'))
        .expect("seed line")
        .trim()
        .to_owned();
    let out = guard(
        "call",
        command(&["call", "test.echo", "1", "--realm", "secure"])
            .env("JUNCTION_URL", router.ws_url())
            .env("JUNCTION_PRIVATE_KEY", &seed)
            .output(),
    )
    .await
    .expect("runs");
    assert_eq!(ok(&out), expected);
    let out = guard(
        "call",
        command(&[
            "call",
            "test.echo",
            "1",
            "--realm",
            "secure",
            "--authid",
            "joe",
        ])
        .env("JUNCTION_URL", router.ws_url())
        .env("JUNCTION_TICKET", "t1cket")
        .output(),
    )
    .await
    .expect("runs");
    assert_eq!(ok(&out), expected);
}

#[tokio::test]
async fn authentication_failures_are_one_line() {
    let (router, _callee) =
        secure_router("1adfc8bfe1d35616e64dffbd900096f23b066f914c8c2ffbb66f6075b96e116d").await;
    let cases: [(&[&str], &str); 5] = [
        (
            &["--authid", "joe", "--ticket", "wrong"],
            "authentication failed",
        ),
        (
            &["--authid", "peter", "--secret", "wrong"],
            "authentication failed",
        ),
        (
            &["--private-key", &"cd".repeat(32)],
            "authentication failed",
        ),
        (&["--ticket", "t1cket"], "--authid"),
        (&[], "no_matching_auth_method"),
    ];
    for (extra, expect) in cases {
        let mut args = vec!["test.echo", "--realm", "secure"];
        args.extend_from_slice(extra);
        let out = client(&router, "call", &args).await;
        let err = failed(&out);
        assert!(err.contains(expect), "{extra:?}: {err}");
        assert!(!err.contains("wrong") && !err.contains("t1cket"), "{err}");
    }
    let out = client(
        &router,
        "call",
        &[
            "test.echo",
            "--realm",
            "secure",
            "--private-key",
            "/no/such/key",
        ],
    )
    .await;
    assert!(failed(&out).contains("--private-key"));
}
