//! Every pending call ends, whatever happens around it.
//!
//! Two callers and two callees (one that can cancel and stream results, one that
//! announces nothing) share a round-robin registration. Random sequences of calls
//! (with and without timeout and progress), cancels of every mode, progressive and
//! final answers, late and bogus answers, departures, timer expiry and router
//! shutdown are fed straight into the sans-IO connections. Afterwards:
//!
//! * every call got at most one final answer (RESULT or ERROR), and exactly one if
//!   its caller stayed; no progressive RESULT follows a final one;
//! * nothing reached a session after it left;
//! * a callee without `call_canceling` never got INTERRUPT;
//! * once everyone left, the realm holds no registration and no call state.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use wamp_proto::message::MessageType;
use wamp_proto::{decode, dict, Dict, Message, Payload, Serializer, Value};
use wamp_router::{Connection, Drained, Outbox, Router, RouterConfig};

const CALLERS: [usize; 2] = [0, 1];
/// Session 2 announces canceling and progressive results; session 3 nothing.
const CALLEES: [usize; 2] = [2, 3];
const PROCEDURE: &str = "com.example.proc";

#[derive(Clone, Debug)]
enum Op {
    Call {
        caller: usize,
        timeout: bool,
        progress: bool,
    },
    /// The first chunk of a streaming call (progressive call invocations).
    Stream {
        caller: usize,
    },
    /// A further chunk of an earlier streaming call (perhaps ended already).
    Chunk {
        caller: usize,
        pick: usize,
        last: bool,
    },
    Cancel {
        caller: usize,
        pick: usize,
        mode: Option<&'static str>,
    },
    Progress {
        callee: usize,
        pick: usize,
    },
    Yield {
        callee: usize,
        pick: usize,
    },
    Error {
        callee: usize,
        pick: usize,
    },
    /// An answer to an invocation that was never sent.
    Bogus {
        callee: usize,
    },
    /// A progressive YIELD regardless of what the invocation asked for.
    RogueProgress {
        callee: usize,
        pick: usize,
    },
    Leave {
        session: usize,
    },
    Expire,
    Shutdown,
}

fn op() -> impl Strategy<Value = Op> {
    let caller = prop::sample::select(CALLERS.to_vec());
    let callee = prop::sample::select(CALLEES.to_vec());
    let mode = prop::sample::select(vec![None, Some("skip"), Some("kill"), Some("killnowait")]);
    prop_oneof![
        6 => (caller.clone(), any::<bool>(), any::<bool>())
            .prop_map(|(caller, timeout, progress)| Op::Call { caller, timeout, progress }),
        1 => caller.clone().prop_map(|caller| Op::Stream { caller }),
        2 => (caller.clone(), any::<usize>(), any::<bool>())
            .prop_map(|(caller, pick, last)| Op::Chunk { caller, pick, last }),
        2 => (caller, any::<usize>(), mode)
            .prop_map(|(caller, pick, mode)| Op::Cancel { caller, pick, mode }),
        2 => (callee.clone(), any::<usize>()).prop_map(|(callee, pick)| Op::Progress { callee, pick }),
        4 => (callee.clone(), any::<usize>()).prop_map(|(callee, pick)| Op::Yield { callee, pick }),
        2 => (callee.clone(), any::<usize>()).prop_map(|(callee, pick)| Op::Error { callee, pick }),
        1 => callee.clone().prop_map(|callee| Op::Bogus { callee }),
        1 => (callee, any::<usize>()).prop_map(|(callee, pick)| Op::RogueProgress { callee, pick }),
        1 => (0usize..4).prop_map(|session| Op::Leave { session }),
        1 => Just(Op::Expire),
        1 => Just(Op::Shutdown),
    ]
}

struct Peer {
    conn: Connection,
    outbox: Arc<Outbox>,
    gone: bool,
    /// Call request ids sent (callers).
    calls: Vec<u64>,
    /// The streaming ones among them.
    streams: Vec<u64>,
    /// Final answers per call request id; progressive RESULTs after a final one.
    finals: HashMap<u64, usize>,
    late_progress: usize,
    /// INVOCATIONs received: (request id, asked for progress), still unanswered by
    /// this callee (it may be interrupted meanwhile: it answers anyway, late).
    invocations: Vec<(u64, bool)>,
    interrupts: usize,
    chunks: usize,
}

fn drain(outbox: &Outbox) -> Vec<Message> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        let mut batch = Vec::new();
        match outbox.poll_drain(&mut cx, &mut batch) {
            Poll::Ready(Drained::Frames) => {
                for frame in batch {
                    out.push(decode(Serializer::Json, &frame).expect("router frames decode"));
                }
            }
            _ => return out,
        }
    }
}

fn hello(features: Dict) -> Message {
    Message::Hello {
        realm: "realm1".into(),
        details: dict! {
            "roles" => dict! {
                "caller" => dict! { "features" => dict! {
                    "call_canceling" => true,
                    "progressive_call_invocations" => true,
                } },
                "callee" => dict! { "features" => features },
            },
        },
    }
}

struct World {
    router: Arc<Router>,
    peers: Vec<Peer>,
    next_request: u64,
}

impl World {
    fn new() -> World {
        let router = Router::new(RouterConfig::default());
        let mut peers = Vec::new();
        for i in 0..4 {
            let outbox = router.new_outbox();
            let mut conn = router.connect(
                Serializer::Json,
                1 << 20,
                outbox.clone(),
                Default::default(),
            );
            let features = if i == 2 {
                dict! {
                    "call_canceling" => true,
                    "progressive_call_results" => true,
                    "progressive_call_invocations" => true,
                }
            } else {
                Dict::new()
            };
            conn.handle(hello(features));
            peers.push(Peer {
                conn,
                outbox,
                gone: false,
                calls: Vec::new(),
                streams: Vec::new(),
                finals: HashMap::new(),
                late_progress: 0,
                invocations: Vec::new(),
                interrupts: 0,
                chunks: 0,
            });
        }
        let mut world = World {
            router,
            peers,
            next_request: 1,
        };
        for callee in CALLEES {
            let request = world.request();
            world.peers[callee].conn.handle(Message::Register {
                request,
                options: dict! { "invoke" => "roundrobin" },
                procedure: PROCEDURE.into(),
            });
        }
        world.settle();
        for peer in &world.peers {
            assert!(peer.conn.session_id().is_some());
        }
        world
    }

    fn request(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    /// Reads every outbox, checks what arrived, and notes departures.
    fn settle(&mut self) {
        for (i, peer) in self.peers.iter_mut().enumerate() {
            let messages = drain(&peer.outbox);
            if peer.gone {
                assert!(
                    messages.is_empty(),
                    "session {i} got messages after it left: {messages:?}"
                );
                continue;
            }
            for m in messages {
                match m {
                    Message::Result {
                        request, details, ..
                    } => {
                        let done = peer.finals.get(&request).copied().unwrap_or(0);
                        if details.get("progress").and_then(Value::as_bool) == Some(true) {
                            if done > 0 {
                                peer.late_progress += 1;
                            }
                        } else {
                            peer.finals.insert(request, done + 1);
                        }
                    }
                    Message::Error {
                        request_type: MessageType::Call,
                        request,
                        ..
                    } => *peer.finals.entry(request).or_insert(0) += 1,
                    Message::Invocation {
                        request, details, ..
                    } => {
                        let chunk = details.get("progress").and_then(Value::as_bool) == Some(true);
                        assert!(
                            !chunk || i == 2,
                            "streamed INVOCATION to a callee without the feature"
                        );
                        peer.chunks += usize::from(chunk);
                        // Chunks of one streaming call share the request id.
                        if !peer.invocations.iter().any(|(r, _)| *r == request) {
                            peer.invocations.push((
                                request,
                                details.get("receive_progress").and_then(Value::as_bool)
                                    == Some(true),
                            ));
                        }
                    }
                    Message::Interrupt { .. } => peer.interrupts += 1,
                    Message::Abort { .. } | Message::Goodbye { .. } => {
                        peer.conn.transport_closed();
                        peer.gone = true;
                    }
                    Message::Welcome { .. } | Message::Registered { .. } => {}
                    other => panic!("session {i} got unexpected {other:?}"),
                }
            }
        }
    }

    fn answer(&mut self, callee: usize, pick: usize, message: impl FnOnce(u64) -> Message) {
        let peer = &mut self.peers[callee];
        if peer.gone || peer.invocations.is_empty() {
            return;
        }
        let index = pick % peer.invocations.len();
        let (request, _) = peer.invocations.remove(index);
        peer.conn.handle(message(request));
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Call {
                caller,
                timeout,
                progress,
            } => {
                if self.peers[caller].gone {
                    return;
                }
                let request = self.request();
                let mut options = Dict::new();
                if timeout {
                    options.insert("timeout".into(), Value::from(1000u64));
                }
                if progress {
                    options.insert("receive_progress".into(), Value::Bool(true));
                }
                let peer = &mut self.peers[caller];
                peer.calls.push(request);
                peer.conn.handle(Message::Call {
                    request,
                    options,
                    procedure: PROCEDURE.into(),
                    payload: Payload::empty(),
                });
            }
            Op::Stream { caller } => {
                if self.peers[caller].gone {
                    return;
                }
                let request = self.request();
                let peer = &mut self.peers[caller];
                peer.calls.push(request);
                peer.streams.push(request);
                peer.conn.handle(Message::Call {
                    request,
                    options: dict! { "progress" => true, "receive_progress" => true },
                    procedure: PROCEDURE.into(),
                    payload: Payload::empty(),
                });
            }
            Op::Chunk { caller, pick, last } => {
                let peer = &mut self.peers[caller];
                // Chunks reuse the id of a streaming call (reusing a plain call's id
                // would be the caller's protocol error, which the router does not
                // look for).
                if peer.gone || peer.streams.is_empty() {
                    return;
                }
                let request = peer.streams[pick % peer.streams.len()];
                let options = if last {
                    Dict::new()
                } else {
                    dict! { "progress" => true }
                };
                peer.conn.handle(Message::Call {
                    request,
                    options,
                    procedure: PROCEDURE.into(),
                    payload: Payload::empty(),
                });
            }
            Op::Cancel { caller, pick, mode } => {
                let peer = &mut self.peers[caller];
                if peer.gone || peer.calls.is_empty() {
                    return;
                }
                let request = peer.calls[pick % peer.calls.len()];
                let options = mode.map(|m| dict! { "mode" => m }).unwrap_or_default();
                peer.conn.handle(Message::Cancel { request, options });
            }
            Op::Progress { callee, pick } => {
                let peer = &mut self.peers[callee];
                if peer.gone {
                    return;
                }
                // A well-behaved callee streams only where it was asked to.
                let asked: Vec<u64> = peer
                    .invocations
                    .iter()
                    .filter(|(_, p)| *p)
                    .map(|(r, _)| *r)
                    .collect();
                if let Some(&request) = asked.get(pick % asked.len().max(1)) {
                    peer.conn.handle(Message::Yield {
                        request,
                        options: dict! { "progress" => true },
                        payload: Payload::empty(),
                    });
                }
            }
            Op::RogueProgress { callee, pick } => {
                let peer = &mut self.peers[callee];
                if peer.gone || peer.invocations.is_empty() {
                    return;
                }
                let (request, _) = peer.invocations[pick % peer.invocations.len()];
                peer.conn.handle(Message::Yield {
                    request,
                    options: dict! { "progress" => true },
                    payload: Payload::empty(),
                });
            }
            Op::Yield { callee, pick } => self.answer(callee, pick, |request| Message::Yield {
                request,
                options: Dict::new(),
                payload: Payload::from_args(vec![Value::from("done")]),
            }),
            Op::Error { callee, pick } => self.answer(callee, pick, |request| {
                Message::error(
                    MessageType::Invocation,
                    request,
                    "com.example.error.failed",
                    Payload::empty(),
                )
            }),
            Op::Bogus { callee } => {
                let peer = &mut self.peers[callee];
                if !peer.gone {
                    peer.conn.handle(Message::Yield {
                        request: 9_000_000_000,
                        options: Dict::new(),
                        payload: Payload::empty(),
                    });
                }
            }
            Op::Leave { session } => {
                let peer = &mut self.peers[session];
                if !peer.gone {
                    peer.conn.transport_closed();
                    peer.gone = true;
                    // What was queued before the departure was written (or lost):
                    // only later messages would be wrong.
                    drain(&peer.outbox);
                }
            }
            Op::Expire => {
                self.router
                    .expire(Instant::now() + Duration::from_secs(3600));
            }
            Op::Shutdown => {
                self.router.shutdown();
                for peer in &mut self.peers {
                    if !peer.gone {
                        peer.conn.shutdown();
                        peer.gone = true;
                        drain(&peer.outbox);
                    }
                }
            }
        }
        self.settle();
    }

    fn finish(mut self) {
        // Callees leave first: every call of a caller still there must end.
        for callee in CALLEES {
            self.apply(&Op::Leave { session: callee });
        }
        for (i, peer) in self.peers.iter().enumerate() {
            assert_eq!(peer.late_progress, 0, "session {i}: progress after the end");
            for (request, n) in &peer.finals {
                assert!(*n <= 1, "session {i}: call {request} got {n} final answers");
            }
            if !peer.gone {
                let unanswered: HashSet<u64> = peer
                    .calls
                    .iter()
                    .filter(|r| !peer.finals.contains_key(r))
                    .copied()
                    .collect();
                assert!(
                    unanswered.is_empty(),
                    "session {i}: calls never answered: {unanswered:?}"
                );
            }
        }
        assert_eq!(
            self.peers[3].interrupts, 0,
            "INTERRUPT to a callee that cannot cancel"
        );
        for caller in CALLERS {
            self.apply(&Op::Leave { session: caller });
        }
        let realm = self.router.realm("realm1").expect("realm1");
        let stats = realm.stats();
        assert_eq!(
            (stats.sessions, stats.registrations, stats.pending_calls),
            (0, 0, 0),
            "{stats:?}"
        );
        assert_eq!(realm.call_state_len(), 0, "call state left behind");
        assert_eq!(self.router.next_deadline(), None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_call_ends_exactly_once(ops in prop::collection::vec(op(), 1..80)) {
        let mut world = World::new();
        for op in &ops {
            world.apply(op);
        }
        world.finish();
    }
}

/// A hand-written run through each way a call can end, as a table.
#[test]
fn each_ending_in_turn() {
    use Op::*;
    let table: Vec<Vec<Op>> = vec![
        vec![
            Call {
                caller: 0,
                timeout: false,
                progress: true,
            },
            Progress { callee: 2, pick: 0 },
            Yield { callee: 2, pick: 0 },
        ],
        vec![
            Call {
                caller: 0,
                timeout: true,
                progress: false,
            },
            Expire,
            Yield { callee: 2, pick: 0 },
        ],
        vec![
            Call {
                caller: 0,
                timeout: false,
                progress: false,
            },
            Cancel {
                caller: 0,
                pick: 0,
                mode: Some("kill"),
            },
            Yield { callee: 2, pick: 0 },
        ],
        vec![
            Call {
                caller: 0,
                timeout: false,
                progress: false,
            },
            Cancel {
                caller: 0,
                pick: 0,
                mode: None,
            },
            Cancel {
                caller: 0,
                pick: 0,
                mode: None,
            },
        ],
        vec![
            Call {
                caller: 0,
                timeout: false,
                progress: false,
            },
            Call {
                caller: 0,
                timeout: false,
                progress: false,
            },
            Cancel {
                caller: 0,
                pick: 1,
                mode: Some("skip"),
            },
            Yield { callee: 3, pick: 0 },
        ],
        vec![
            Call {
                caller: 0,
                timeout: false,
                progress: false,
            },
            Call {
                caller: 1,
                timeout: false,
                progress: false,
            },
            Leave { session: 0 },
            Leave { session: 3 },
        ],
        vec![
            Call {
                caller: 1,
                timeout: false,
                progress: false,
            },
            Call {
                caller: 1,
                timeout: false,
                progress: false,
            },
            RogueProgress { callee: 3, pick: 0 },
        ],
        vec![
            Call {
                caller: 0,
                timeout: true,
                progress: true,
            },
            Shutdown,
        ],
        vec![
            Bogus { callee: 2 },
            Cancel {
                caller: 0,
                pick: 0,
                mode: None,
            },
        ],
    ];
    for ops in table {
        let mut world = World::new();
        for op in &ops {
            world.apply(op);
        }
        world.finish();
    }
}
