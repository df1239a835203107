//! Advanced Profile RPC end to end: the Rust client (`wamp-client`, public API only)
//! against the real router. Every test runs twice, caller and callee on different
//! transports and serializers (WebSocket/JSON with RawSocket/MessagePack, then
//! RawSocket/CBOR with WebSocket/JSON), and ends by checking that the router holds
//! no calls or registrations once everyone left.

mod common;

use std::time::Duration;

use common::{within, TestRouter, Via};
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use wamp_client::{
    dict, CallEvent, CallOptions, CallResult, CallStream, CancelMode, Dict, Error, InterruptMode,
    Invocation, InvokePolicy, MatchPolicy, Payload, RegisterOptions, Registration, Serializer,
    Session, Value,
};

const DIFFERENT_POLICY: &str = "wamp.error.procedure_exists_with_different_invocation_policy";
const MAX_CONCURRENCY: &str = "crossbar.error.max_concurrency_reached";

/// One run of a test: how the caller and the callee(s) reach the router.
#[derive(Clone, Copy, Debug)]
struct Case {
    caller: (Via, Serializer),
    callee: (Via, Serializer),
}

const CASES: [Case; 2] = [
    Case {
        caller: (Via::WebSocket, Serializer::Json),
        callee: (Via::RawSocket, Serializer::MsgPack),
    },
    Case {
        caller: (Via::RawSocket, Serializer::Cbor),
        callee: (Via::WebSocket, Serializer::Json),
    },
];

impl Case {
    async fn caller(&self, router: &TestRouter) -> Session {
        router.join_via(self.caller.0, self.caller.1).await
    }

    async fn callee(&self, router: &TestRouter) -> Session {
        router.join_via(self.callee.0, self.callee.1).await
    }
}

/// Everyone leaves; then the router must hold no calls, registrations or sessions.
async fn all_leave(router: &TestRouter, case: Case, sessions: &[&Session]) {
    for session in sessions {
        if !session.is_closed() {
            within("leave", session.leave())
                .await
                .unwrap_or_else(|e| panic!("{case:?}: leave: {e}"));
        }
    }
    let stats = router
        .wait_for_stats(|s| s.pending_calls == 0 && s.registrations == 0 && s.sessions == 0)
        .await;
    assert!(
        stats.pending_calls == 0 && stats.registrations == 0 && stats.sessions == 0,
        "{case:?}: state left behind: {stats:?}"
    );
}

fn ints(values: &[i64]) -> Vec<Value> {
    values.iter().map(|&v| Value::from(v)).collect()
}

fn as_ints(values: &[Value]) -> Vec<i64> {
    values
        .iter()
        .map(|v| v.as_i64().expect("an integer"))
        .collect()
}

/// The first positional result as a string.
fn first_str(result: &CallResult) -> String {
    result
        .args
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string result: {result:?}"))
        .to_owned()
}

fn error_uri(e: &Error) -> &str {
    e.uri().unwrap_or_else(|| panic!("not a WAMP error: {e}"))
}

async fn register(session: &Session, procedure: &str, options: RegisterOptions) -> Registration {
    within("register", session.register_with(procedure, options))
        .await
        .unwrap_or_else(|e| panic!("register {procedure}: {e}"))
}

async fn next_invocation(registration: &mut Registration, what: &str) -> Invocation {
    within(what, registration.next())
        .await
        .unwrap_or_else(|| panic!("{what}: the registration ended"))
}

async fn next_event(call: &mut CallStream, what: &str) -> Result<CallEvent, Error> {
    within(what, call.next())
        .await
        .unwrap_or_else(|| panic!("{what}: the call stream ended early"))
}

async fn call(
    caller: &Session,
    procedure: &str,
    options: CallOptions,
) -> Result<CallResult, Error> {
    within(
        procedure,
        caller.call_with(procedure, Payload::empty(), options),
    )
    .await
}

async fn start_call(caller: &Session, procedure: &str) -> CallStream {
    within(
        "start call",
        caller.start_call(procedure, Payload::empty(), CallOptions::new()),
    )
    .await
    .unwrap_or_else(|e| panic!("start call {procedure}: {e}"))
}

/// Answers every invocation of `registration` with `[label, Details.procedure]`.
fn serve_label(mut registration: Registration, label: &'static str) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(invocation) = registration.next().await {
            let procedure = invocation.procedure().map_or(Value::Null, Value::from);
            let _ = invocation
                .yield_result(vec![Value::from(label), procedure], Dict::new())
                .await;
        }
    })
}

/// Sends a message when dropped: shows that a handler's future was dropped (aborted).
struct OnDrop(mpsc::UnboundedSender<&'static str>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.send("dropped");
    }
}

#[tokio::test]
async fn progressive_results_arrive_in_order_before_the_final_one() {
    let router = TestRouter::start().await;
    for case in CASES {
        let callee = case.callee(&router).await;
        let caller = case.caller(&router).await;
        let mut reg = register(&callee, "com.e2e.count", RegisterOptions::new()).await;
        let serve = tokio::spawn(async move {
            // A counter with progress, then one that fails after progress, then a
            // plain call, where progress is refused locally.
            let inv = next_invocation(&mut reg, "count").await;
            assert!(inv.receive_progress());
            for i in 0..3 {
                inv.progress(ints(&[i]), dict! {"step" => i})
                    .await
                    .expect("progress");
            }
            inv.yield_result(vec![Value::from("done")], Dict::new())
                .await
                .expect("yield");

            let inv = next_invocation(&mut reg, "failing").await;
            inv.progress(ints(&[7]), Dict::new())
                .await
                .expect("progress");
            inv.error(
                "com.e2e.error.broken",
                vec![Value::from("after progress")],
                Dict::new(),
            )
            .await
            .expect("error");

            let inv = next_invocation(&mut reg, "plain").await;
            assert!(!inv.receive_progress());
            let refused = inv.progress(ints(&[1]), Dict::new()).await;
            assert!(matches!(refused, Err(Error::Unsupported(_))), "{refused:?}");
            inv.yield_result(vec![Value::from("plain")], Dict::new())
                .await
                .expect("yield");
            reg
        });

        let mut stream = within(
            "call_progressive",
            caller.call_progressive("com.e2e.count", Payload::empty(), CallOptions::new()),
        )
        .await
        .expect("call_progressive");
        for i in 0..3 {
            match next_event(&mut stream, "progress").await {
                Ok(CallEvent::Progress(r)) => {
                    assert_eq!(as_ints(&r.args), vec![i], "{case:?}");
                    assert_eq!(r.kwargs.get("step").and_then(Value::as_i64), Some(i));
                }
                other => panic!("{case:?}: expected progress {i}, got {other:?}"),
            }
        }
        match next_event(&mut stream, "final").await {
            Ok(CallEvent::Final(r)) => assert_eq!(first_str(&r), "done", "{case:?}"),
            other => panic!("{case:?}: expected the final result, got {other:?}"),
        }
        assert!(within("end", stream.next()).await.is_none());
        assert!(stream.is_done());

        let mut stream = within(
            "call_progressive",
            caller.call_progressive("com.e2e.count", Payload::empty(), CallOptions::new()),
        )
        .await
        .expect("call_progressive");
        match next_event(&mut stream, "progress").await {
            Ok(CallEvent::Progress(r)) => assert_eq!(as_ints(&r.args), vec![7]),
            other => panic!("{case:?}: expected progress, got {other:?}"),
        }
        match next_event(&mut stream, "error").await {
            Err(Error::Wamp { uri, args, .. }) => {
                assert_eq!(uri, "com.e2e.error.broken", "{case:?}");
                assert_eq!(args, vec![Value::from("after progress")]);
            }
            other => panic!("{case:?}: expected the callee's error, got {other:?}"),
        }
        assert!(within("end", stream.next()).await.is_none());

        let plain = call(&caller, "com.e2e.count", CallOptions::new())
            .await
            .expect("plain call");
        assert_eq!(first_str(&plain), "plain");
        let reg = within("callee", serve).await.expect("callee task");
        drop(reg);
        all_leave(&router, case, &[&caller, &callee]).await;
    }
}

#[tokio::test]
async fn progressive_invocations_stream_chunks_while_results_come_back() {
    let router = TestRouter::start().await;
    for case in CASES {
        let callee = case.callee(&router).await;
        let caller = case.caller(&router).await;
        let mut reg = register(&callee, "com.e2e.upload", RegisterOptions::new()).await;
        let serve = tokio::spawn(async move {
            let mut inv = next_invocation(&mut reg, "upload").await;
            assert!(inv.is_progressive());
            assert!(inv.receive_progress());
            let mut received = as_ints(&inv.args);
            // Acknowledge every chunk with a progressive result.
            inv.progress(ints(&[received.len() as i64]), Dict::new())
                .await
                .expect("progress");
            loop {
                let chunk = within("chunk", inv.next_chunk())
                    .await
                    .expect("a further chunk");
                received.extend(as_ints(&chunk.args));
                if chunk.last {
                    break;
                }
                inv.progress(ints(&[received.len() as i64]), Dict::new())
                    .await
                    .expect("progress");
            }
            assert!(within("no more chunks", inv.next_chunk()).await.is_none());
            let sum: i64 = received.iter().sum();
            inv.yield_result(
                ints(&[sum]),
                dict! {"chunks" => Value::List(ints(&received))},
            )
            .await
            .expect("yield");
            reg
        });

        let mut upload = within(
            "start_progressive_call",
            caller.start_progressive_call(
                "com.e2e.upload",
                Payload::from_args(ints(&[1])),
                CallOptions::new().receive_progress(true),
            ),
        )
        .await
        .expect("start_progressive_call");
        for (sent, next) in [(1, 2), (2, 3), (3, 4)] {
            // The callee's acknowledgement arrives while the input is still open.
            match within("ack", upload.next()).await {
                Some(Ok(CallEvent::Progress(r))) => {
                    assert_eq!(as_ints(&r.args), vec![sent], "{case:?}")
                }
                other => panic!("{case:?}: expected an acknowledgement, got {other:?}"),
            }
            if next < 4 {
                within("send", upload.send(ints(&[next]), Dict::new()))
                    .await
                    .expect("send");
            }
        }
        let mut results = within("finish", upload.finish(ints(&[4]), Dict::new()))
            .await
            .expect("finish");
        match next_event(&mut results, "final").await {
            Ok(CallEvent::Final(r)) => {
                assert_eq!(as_ints(&r.args), vec![10], "{case:?}");
                let chunks = r
                    .kwargs
                    .get("chunks")
                    .and_then(Value::as_list)
                    .map(<[Value]>::to_vec);
                assert_eq!(
                    chunks,
                    Some(ints(&[1, 2, 3, 4])),
                    "{case:?}: chunks in order"
                );
            }
            other => panic!("{case:?}: expected the final result, got {other:?}"),
        }
        assert!(within("end", results.next()).await.is_none());
        let mut reg = within("callee", serve).await.expect("callee task");

        // Dropping an unfinished upload cancels it: the callee is interrupted and
        // gets no more chunks.
        let mut upload = within(
            "start_progressive_call",
            caller.start_progressive_call(
                "com.e2e.upload",
                Payload::from_args(ints(&[1])),
                CallOptions::new(),
            ),
        )
        .await
        .expect("start_progressive_call");
        let mut inv = next_invocation(&mut reg, "dropped upload").await;
        within("send", upload.send(ints(&[2]), Dict::new()))
            .await
            .expect("send");
        let chunk = within("chunk", inv.next_chunk()).await.expect("chunk");
        assert_eq!((as_ints(&chunk.args), chunk.last), (vec![2], false));
        drop(upload);
        assert_eq!(
            within("interrupted", inv.interrupted()).await,
            InterruptMode::KillNoWait,
            "{case:?}"
        );
        assert!(within("no more chunks", inv.next_chunk()).await.is_none());
        drop(inv);

        // A timeout while the input is still open ends the call; further chunks
        // go nowhere.
        let mut upload = within(
            "start_progressive_call",
            caller.start_progressive_call(
                "com.e2e.upload",
                Payload::from_args(ints(&[1])),
                CallOptions::new().timeout(Duration::from_millis(200)),
            ),
        )
        .await
        .expect("start_progressive_call");
        let mut inv = next_invocation(&mut reg, "timed upload").await;
        let e = within("timeout", upload.next())
            .await
            .expect("an outcome")
            .expect_err("timed out");
        assert!(e.is_timeout(), "{case:?}: {e}");
        assert_eq!(
            within("interrupted", inv.interrupted()).await,
            InterruptMode::KillNoWait,
            "{case:?}"
        );
        assert!(within("no more chunks", inv.next_chunk()).await.is_none());
        within("send after the end", upload.send(ints(&[2]), Dict::new()))
            .await
            .expect("send after the end");
        let mut results = within("finish", upload.finish(ints(&[3]), Dict::new()))
            .await
            .expect("finish after the end");
        assert!(within("ended", results.next()).await.is_none());
        assert!(
            nothing_queued(&mut reg),
            "{case:?}: chunks became a new call"
        );

        drop((inv, reg));
        all_leave(&router, case, &[&caller, &callee]).await;
    }
}

#[tokio::test]
async fn call_timeouts_end_calls_and_interrupt_or_inform_the_callee() {
    let router = TestRouter::start().await;
    for case in CASES {
        let callee = case.callee(&router).await;
        let caller = case.caller(&router).await;

        // The router runs the timeout: a silent callee is interrupted.
        let mut silent = register(&callee, "com.e2e.silent", RegisterOptions::new()).await;
        let timeout = CallOptions::new().timeout(Duration::from_millis(200));
        let (outcome, inv) = tokio::join!(
            call(&caller, "com.e2e.silent", timeout.clone()),
            next_invocation(&mut silent, "silent")
        );
        let e = outcome.expect_err("the call times out");
        assert!(e.is_timeout(), "{case:?}: {e}");
        assert_eq!(inv.timeout(), None, "the router keeps the timeout");
        let mode = within("interrupted", inv.interrupted()).await;
        assert_eq!(mode, InterruptMode::KillNoWait, "{case:?}");
        // Answering after the interrupt sends nothing and is no error.
        inv.yield_result(Vec::new(), Dict::new())
            .await
            .expect("late answer");

        // forward_timeout: the callee sees the timeout and answers itself.
        let mut forwarded = register(
            &callee,
            "com.e2e.forwarded",
            RegisterOptions::new().forward_timeout(true),
        )
        .await;
        let (outcome, ()) =
            tokio::join!(call(&caller, "com.e2e.forwarded", timeout.clone()), async {
                let inv = next_invocation(&mut forwarded, "forwarded").await;
                assert_eq!(inv.timeout(), Some(Duration::from_millis(200)), "{case:?}");
                inv.yield_result(vec![Value::from("in time")], Dict::new())
                    .await
                    .expect("yield");
            });
        assert_eq!(first_str(&outcome.expect("answered")), "in time");

        // A register_fn handler that never finishes answers wamp.error.timeout
        // itself when the forwarded timeout runs out.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = within(
            "register_fn_with",
            callee.register_fn_with(
                "com.e2e.forwarded_fn",
                RegisterOptions::new().forward_timeout(true),
                move |_args, _kwargs| {
                    let tx = tx.clone();
                    async move {
                        let _guard = OnDrop(tx);
                        std::future::pending::<()>().await;
                        Ok((Vec::new(), Dict::new()))
                    }
                },
            ),
        )
        .await
        .expect("register_fn_with");
        let e = call(&caller, "com.e2e.forwarded_fn", timeout.clone())
            .await
            .expect_err("the callee times out");
        assert!(e.is_timeout(), "{case:?}: {e}");
        assert_eq!(within("handler dropped", rx.recv()).await, Some("dropped"));

        within("unregister", handle.unregister())
            .await
            .expect("unregister");
        drop((silent, forwarded));
        all_leave(&router, case, &[&caller, &callee]).await;
    }
}

#[tokio::test]
async fn cancel_modes_end_the_call_once_and_interrupt_as_asked() {
    let router = TestRouter::start().await;
    for case in CASES {
        let callee = case.callee(&router).await;
        let caller = case.caller(&router).await;
        let mut reg = register(&callee, "com.e2e.slow", RegisterOptions::new()).await;

        // skip: the caller is answered at once; the callee is not told.
        let mut call1 = start_call(&caller, "com.e2e.slow").await;
        let skipped = next_invocation(&mut reg, "skip").await;
        within("cancel", call1.cancel(CancelMode::Skip))
            .await
            .expect("cancel");
        let e = next_event(&mut call1, "skip").await.expect_err("canceled");
        assert!(e.is_canceled(), "{case:?}: {e}");
        assert!(within("end", call1.next()).await.is_none());
        // A later invocation from the same caller arrives after any INTERRUPT for
        // the skipped one would have.
        let call2 = start_call(&caller, "com.e2e.slow").await;
        let second = next_invocation(&mut reg, "after skip").await;
        assert_eq!(
            skipped.interrupt(),
            None,
            "{case:?}: skip interrupted the callee"
        );
        // Its late answer goes nowhere.
        skipped
            .yield_result(vec![Value::from("late")], Dict::new())
            .await
            .expect("late answer");
        second
            .yield_result(vec![Value::from("second")], Dict::new())
            .await
            .expect("answer");
        let r = within("second", call2.result()).await.expect("second call");
        assert_eq!(first_str(&r), "second");

        // kill: the callee is interrupted and its answer ends the call.
        let mut call3 = start_call(&caller, "com.e2e.slow").await;
        let killed = next_invocation(&mut reg, "kill").await;
        within("cancel", call3.cancel(CancelMode::Kill))
            .await
            .expect("cancel");
        assert_eq!(
            within("interrupted", killed.interrupted()).await,
            InterruptMode::Kill,
            "{case:?}"
        );
        assert!(
            call3.next().now_or_never().is_none(),
            "{case:?}: kill did not wait for the callee"
        );
        killed
            .error(
                "wamp.error.canceled",
                vec![Value::from("stopped by the callee")],
                Dict::new(),
            )
            .await
            .expect("error");
        match next_event(&mut call3, "kill").await {
            Err(e @ Error::Wamp { .. }) => {
                assert!(e.is_canceled(), "{case:?}: {e}");
                let Error::Wamp { args, .. } = e else {
                    unreachable!()
                };
                assert_eq!(args, vec![Value::from("stopped by the callee")], "{case:?}");
            }
            other => panic!("{case:?}: expected canceled, got {other:?}"),
        }
        assert!(within("end", call3.next()).await.is_none());

        // killnowait: the caller is answered at once, the callee interrupted.
        let mut call4 = start_call(&caller, "com.e2e.slow").await;
        let abandoned = next_invocation(&mut reg, "killnowait").await;
        within("cancel", call4.cancel(CancelMode::KillNoWait))
            .await
            .expect("cancel");
        let e = next_event(&mut call4, "killnowait")
            .await
            .expect_err("canceled");
        assert!(e.is_canceled(), "{case:?}: {e}");
        assert!(within("end", call4.next()).await.is_none());
        assert_eq!(
            within("interrupted", abandoned.interrupted()).await,
            InterruptMode::KillNoWait,
            "{case:?}"
        );
        drop(abandoned);
        // Canceling an ended call does nothing.
        within("cancel again", call4.cancel(CancelMode::Kill))
            .await
            .expect("cancel again");
        assert!(within("still ended", call4.next()).await.is_none());

        // Dropping a call future cancels the call.
        let dropped = {
            let pending = caller.call("com.e2e.slow", Vec::new(), Dict::new());
            tokio::pin!(pending);
            tokio::select! {
                outcome = &mut pending => panic!("{case:?}: the call ended: {outcome:?}"),
                inv = next_invocation(&mut reg, "dropped") => inv,
            }
        };
        assert_eq!(
            within("interrupted", dropped.interrupted()).await,
            InterruptMode::KillNoWait,
            "{case:?}"
        );
        drop(dropped);

        // The session goes on.
        let call5 = start_call(&caller, "com.e2e.slow").await;
        next_invocation(&mut reg, "after cancels")
            .await
            .yield_result(vec![Value::from("fine")], Dict::new())
            .await
            .expect("answer");
        let r = within("after cancels", call5.result()).await.expect("call");
        assert_eq!(first_str(&r), "fine");
        assert!(nothing_queued(&mut reg), "{case:?}: a stray invocation");

        // A caller that leaves with a call in flight: the callee is interrupted.
        let _orphan = start_call(&caller, "com.e2e.slow").await;
        let orphaned = next_invocation(&mut reg, "orphaned").await;
        within("caller leaves", caller.leave())
            .await
            .expect("caller leaves");
        assert_eq!(
            within("interrupted", orphaned.interrupted()).await,
            InterruptMode::KillNoWait,
            "{case:?}"
        );

        drop((orphaned, reg));
        all_leave(&router, case, &[&caller, &callee]).await;
    }
}

/// No invocation is waiting on the registration.
fn nothing_queued(reg: &mut Registration) -> bool {
    reg.next().now_or_never().is_none()
}

#[tokio::test]
async fn canceling_aborts_register_fn_handlers() {
    let router = TestRouter::start().await;
    for case in CASES {
        let callee = case.callee(&router).await;
        let caller = case.caller(&router).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = within(
            "register_fn",
            callee.register_fn("com.e2e.forever", move |_args, _kwargs| {
                let tx = tx.clone();
                async move {
                    let _guard = OnDrop(tx.clone());
                    let _ = tx.send("started");
                    std::future::pending::<()>().await;
                    Ok((Vec::new(), Dict::new()))
                }
            }),
        )
        .await
        .expect("register_fn");

        for mode in [CancelMode::Kill, CancelMode::KillNoWait] {
            let mut call = start_call(&caller, "com.e2e.forever").await;
            assert_eq!(within("started", rx.recv()).await, Some("started"));
            within("cancel", call.cancel(mode)).await.expect("cancel");
            let e = next_event(&mut call, "canceled")
                .await
                .expect_err("canceled");
            assert!(e.is_canceled(), "{case:?}/{mode:?}: {e}");
            assert!(within("end", call.next()).await.is_none());
            assert_eq!(
                within("aborted", rx.recv()).await,
                Some("dropped"),
                "{case:?}/{mode:?}"
            );
        }

        within("unregister", handle.unregister())
            .await
            .expect("unregister");
        all_leave(&router, case, &[&caller, &callee]).await;
    }
}

#[tokio::test]
async fn caller_identity_is_disclosed_when_asked() {
    let router = TestRouter::start().await;
    for case in CASES {
        let callee = case.callee(&router).await;
        let caller = case.caller(&router).await;
        let authid = caller
            .welcome_details()
            .get("authid")
            .and_then(Value::as_str)
            .expect("authid")
            .to_owned();
        let authrole = caller
            .welcome_details()
            .get("authrole")
            .and_then(Value::as_str)
            .expect("authrole")
            .to_owned();
        let mut plain = register(&callee, "com.e2e.who", RegisterOptions::new()).await;
        let mut disclosing = register(
            &callee,
            "com.e2e.who_always",
            RegisterOptions::new().disclose_caller(true),
        )
        .await;

        for (procedure, disclose_me, disclosed) in [
            ("com.e2e.who", false, false),
            ("com.e2e.who", true, true),
            ("com.e2e.who_always", false, true),
        ] {
            let reg = if procedure == "com.e2e.who" {
                &mut plain
            } else {
                &mut disclosing
            };
            let options = CallOptions::new().disclose_me(disclose_me);
            let (outcome, ()) = tokio::join!(call(&caller, procedure, options), async {
                let inv = next_invocation(reg, procedure).await;
                let what = format!("{case:?}: {procedure}, disclose_me {disclose_me}");
                if disclosed {
                    assert_eq!(inv.caller(), Some(caller.id()), "{what}");
                    assert_eq!(inv.caller_authid(), Some(authid.as_str()), "{what}");
                    assert_eq!(inv.caller_authrole(), Some(authrole.as_str()), "{what}");
                } else {
                    assert_eq!(inv.caller(), None, "{what}");
                    assert_eq!(inv.caller_authid(), None, "{what}");
                    assert_eq!(inv.caller_authrole(), None, "{what}");
                }
                inv.yield_result(Vec::new(), Dict::new())
                    .await
                    .expect("yield");
            });
            outcome.expect("call");
        }

        drop((plain, disclosing));
        all_leave(&router, case, &[&caller, &callee]).await;
    }
}

#[tokio::test]
async fn pattern_registrations_follow_exact_then_longest_prefix_then_wildcard() {
    let router = TestRouter::start().await;
    for case in CASES {
        let callee = case.callee(&router).await;
        let caller = case.caller(&router).await;
        let prefix = RegisterOptions::new().match_policy(MatchPolicy::Prefix);
        let wildcard = RegisterOptions::new().match_policy(MatchPolicy::Wildcard);
        let servers = vec![
            serve_label(
                register(&callee, "com.p.a.b.c", RegisterOptions::new()).await,
                "exact",
            ),
            serve_label(register(&callee, "com.p.a", prefix.clone()).await, "short"),
            serve_label(register(&callee, "com.p.a.b", prefix.clone()).await, "long"),
            serve_label(
                register(&callee, "com.p..b.c", wildcard.clone()).await,
                "wild",
            ),
            serve_label(
                register(&callee, "com.p.a..d", wildcard.clone()).await,
                "wild2",
            ),
            serve_label(
                register(&callee, "com.w..c", wildcard.clone()).await,
                "w_late",
            ),
            serve_label(
                register(&callee, "com.w.b.", wildcard.clone()).await,
                "w_early",
            ),
        ];

        for (procedure, label, pattern) in [
            // Exact beats every pattern that also matches.
            ("com.p.a.b.c", "exact", false),
            // The longest prefix wins.
            ("com.p.a.b.x", "long", true),
            ("com.p.a.bx", "long", true),
            ("com.p.a.z", "short", true),
            // A prefix beats a wildcard.
            ("com.p.a.q.d", "short", true),
            // Only a wildcard matches.
            ("com.p.q.b.c", "wild", true),
            // Between wildcards, the earliest literal component wins.
            ("com.w.b.c", "w_early", true),
            ("com.w.x.c", "w_late", true),
        ] {
            let r = call(&caller, procedure, CallOptions::new())
                .await
                .unwrap_or_else(|e| panic!("{case:?}: {procedure}: {e}"));
            assert_eq!(first_str(&r), label, "{case:?}: {procedure}");
            let seen = r.args.get(1).and_then(Value::as_str);
            let want = pattern.then_some(procedure);
            assert_eq!(seen, want, "{case:?}: Details.procedure of {procedure}");
        }
        let e = call(&caller, "com.q.nothing", CallOptions::new())
            .await
            .expect_err("nothing matches");
        assert_eq!(error_uri(&e), "wamp.error.no_such_procedure");

        all_leave(&router, case, &[&caller, &callee]).await;
        for server in servers {
            within("server ends", server).await.expect("server task");
        }
    }
}

#[tokio::test]
async fn shared_registrations_pick_callees_by_policy() {
    let router = TestRouter::start().await;
    for case in CASES {
        let a = case.callee(&router).await;
        let b = case.callee(&router).await;
        let caller = case.caller(&router).await;
        let shared = |policy| RegisterOptions::new().invoke(policy);

        let mut servers = Vec::new();
        for (procedure, policy) in [
            ("com.s.rr", InvokePolicy::RoundRobin),
            ("com.s.first", InvokePolicy::First),
            ("com.s.last", InvokePolicy::Last),
            ("com.s.random", InvokePolicy::Random),
        ] {
            servers.push(serve_label(
                register(&a, procedure, shared(policy)).await,
                "a",
            ));
            servers.push(serve_label(
                register(&b, procedure, shared(policy)).await,
                "b",
            ));
        }
        let labels = |procedure: &'static str, n: usize| {
            let caller = caller.clone();
            async move {
                let mut out = Vec::new();
                for _ in 0..n {
                    let r = call(&caller, procedure, CallOptions::new())
                        .await
                        .unwrap_or_else(|e| panic!("{procedure}: {e}"));
                    out.push(first_str(&r));
                }
                out
            }
        };
        assert_eq!(
            labels("com.s.rr", 4).await,
            ["a", "b", "a", "b"],
            "{case:?}: roundrobin"
        );
        assert_eq!(labels("com.s.first", 3).await, ["a", "a", "a"], "{case:?}");
        assert_eq!(labels("com.s.last", 3).await, ["b", "b", "b"], "{case:?}");
        for label in labels("com.s.random", 8).await {
            assert!(
                label == "a" || label == "b",
                "{case:?}: random picked {label}"
            );
        }

        // Another policy, `single` included, is a conflict.
        for policy in [InvokePolicy::First, InvokePolicy::Single] {
            let e = within("conflict", caller.register_with("com.s.rr", shared(policy)))
                .await
                .expect_err("policy conflict");
            assert_eq!(error_uri(&e), DIFFERENT_POLICY, "{case:?}: {policy:?}");
        }
        // A single registration stays single.
        let solo = register(&a, "com.s.solo", RegisterOptions::new()).await;
        let e = within("single", b.register("com.s.solo"))
            .await
            .expect_err("already registered");
        assert_eq!(error_uri(&e), "wamp.error.procedure_already_exists");
        drop(solo);

        // A callee leaving mid-call ends its own calls only.
        let mut ra = register(&a, "com.s.leave", shared(InvokePolicy::RoundRobin)).await;
        let mut rb = register(&b, "com.s.leave", shared(InvokePolicy::RoundRobin)).await;
        let mut to_a = start_call(&caller, "com.s.leave").await;
        let inv_a = next_invocation(&mut ra, "a's invocation").await;
        let mut to_b = start_call(&caller, "com.s.leave").await;
        let inv_b = next_invocation(&mut rb, "b's invocation").await;
        within("a leaves", a.leave()).await.expect("a leaves");
        let e = next_event(&mut to_a, "a's call")
            .await
            .expect_err("a's call ends");
        assert!(e.is_canceled(), "{case:?}: {e}");
        drop(inv_a);
        inv_b
            .yield_result(vec![Value::from("b")], Dict::new())
            .await
            .expect("b answers");
        match next_event(&mut to_b, "b's call").await {
            Ok(CallEvent::Final(r)) => assert_eq!(first_str(&r), "b"),
            other => panic!("{case:?}: b's call: {other:?}"),
        }
        // The procedure is b's alone now.
        let to_b = start_call(&caller, "com.s.leave").await;
        next_invocation(&mut rb, "b again")
            .await
            .yield_result(vec![Value::from("b")], Dict::new())
            .await
            .expect("b answers");
        assert_eq!(
            first_str(&within("b", to_b.result()).await.expect("call")),
            "b"
        );
        assert!(within("a's registration ends", ra.next()).await.is_none());

        drop(rb);
        all_leave(&router, case, &[&caller, &a, &b]).await;
        for server in servers {
            within("server ends", server).await.expect("server task");
        }
    }
}

#[tokio::test]
async fn force_reregister_revokes_the_earlier_registration() {
    let router = TestRouter::start().await;
    for case in CASES {
        let old = case.callee(&router).await;
        let new = case.callee(&router).await;
        let caller = case.caller(&router).await;
        let mut first = register(&old, "com.e2e.takeover", RegisterOptions::new()).await;
        let handle = within(
            "register_fn",
            old.register_fn("com.e2e.takeover_fn", |_args, _kwargs| async {
                Ok((vec![Value::from("old")], Dict::new()))
            }),
        )
        .await
        .expect("register_fn");
        assert_eq!(
            first_str(
                &call(&caller, "com.e2e.takeover_fn", CallOptions::new())
                    .await
                    .expect("call")
            ),
            "old"
        );

        let takeover = RegisterOptions::new().force_reregister(true);
        let second = register(&new, "com.e2e.takeover", takeover.clone()).await;
        let second_fn = register(&new, "com.e2e.takeover_fn", takeover).await;
        assert!(within("revoked", first.next()).await.is_none(), "{case:?}");
        assert!(first.is_revoked(), "{case:?}");
        assert_eq!(first.revocation_reason(), Some("wamp.error.unregistered"));
        // Unregistering what the router revoked sends nothing and succeeds.
        within("unregister", first.unregister())
            .await
            .expect("unregister revoked");
        within("unregister fn", handle.unregister())
            .await
            .expect("unregister revoked handler");

        let servers = [serve_label(second, "new"), serve_label(second_fn, "new fn")];
        let r = call(&caller, "com.e2e.takeover", CallOptions::new())
            .await
            .expect("call");
        assert_eq!(first_str(&r), "new", "{case:?}");
        let r = call(&caller, "com.e2e.takeover_fn", CallOptions::new())
            .await
            .expect("call");
        assert_eq!(first_str(&r), "new fn", "{case:?}");

        // Taking over a shared registration revokes every callee of it.
        let shared = RegisterOptions::new().invoke(InvokePolicy::RoundRobin);
        let mut from_old = register(&old, "com.e2e.shared", shared.clone()).await;
        let mut from_new = register(&new, "com.e2e.shared", shared).await;
        let third = case.caller(&router).await;
        let taken = register(
            &third,
            "com.e2e.shared",
            RegisterOptions::new().force_reregister(true),
        )
        .await;
        for reg in [&mut from_old, &mut from_new] {
            assert!(within("revoked", reg.next()).await.is_none(), "{case:?}");
            assert_eq!(reg.revocation_reason(), Some("wamp.error.unregistered"));
        }
        let server = serve_label(taken, "third");
        let r = call(&caller, "com.e2e.shared", CallOptions::new())
            .await
            .expect("call");
        assert_eq!(first_str(&r), "third", "{case:?}");
        drop((from_old, from_new));

        all_leave(&router, case, &[&caller, &old, &new, &third]).await;
        within("server ends", server).await.expect("server task");
        for server in servers {
            within("server ends", server).await.expect("server task");
        }
    }
}

#[tokio::test]
async fn register_concurrency_bounds_invocations_in_flight() {
    let router = TestRouter::start().await;
    for case in CASES {
        let callee = case.callee(&router).await;
        let caller = case.caller(&router).await;
        let mut reg = register(
            &callee,
            "com.e2e.one_at_a_time",
            RegisterOptions::new().concurrency(1),
        )
        .await;

        let first = start_call(&caller, "com.e2e.one_at_a_time").await;
        let inv = next_invocation(&mut reg, "first").await;
        let e = call(&caller, "com.e2e.one_at_a_time", CallOptions::new())
            .await
            .expect_err("over the limit");
        assert_eq!(error_uri(&e), MAX_CONCURRENCY, "{case:?}");
        inv.yield_result(vec![Value::from("first")], Dict::new())
            .await
            .expect("yield");
        let r = within("first", first.result()).await.expect("first");
        assert_eq!(first_str(&r), "first");

        // Room again once the first call ended.
        let (outcome, ()) = tokio::join!(
            call(&caller, "com.e2e.one_at_a_time", CallOptions::new()),
            async {
                next_invocation(&mut reg, "second")
                    .await
                    .yield_result(vec![Value::from("second")], Dict::new())
                    .await
                    .expect("yield");
            }
        );
        assert_eq!(first_str(&outcome.expect("second")), "second", "{case:?}");

        drop(reg);
        all_leave(&router, case, &[&caller, &callee]).await;
    }
}
