//! The broker against a naive model of the spec: random sessions (authid,
//! authrole, serializer), random exact/prefix/wildcard subscriptions, random
//! publications with random black/whitelists and `exclude_me`. Every session must
//! receive exactly one EVENT per matching subscription it holds that the
//! publication's options allow, with `Details.topic` on pattern subscriptions only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use proptest::prelude::*;
use wamp_proto::uri::MatchPolicy;
use wamp_proto::{decode, Message, Payload, Serializer, Value};
use wamp_router::broker::{Broker, Filter, PublishOptions};
use wamp_router::session::SessionHandle;
use wamp_router::{Drained, Outbox, OutboxLimits};

const AUTHIDS: [&str; 3] = ["alice", "bob", "carol"];
const AUTHROLES: [&str; 2] = ["user", "admin"];

fn drain(outbox: &Outbox, serializer: Serializer) -> Vec<Message> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        let mut batch = Vec::new();
        match outbox.poll_drain(&mut cx, &mut batch) {
            Poll::Ready(Drained::Frames) => {
                for frame in batch {
                    out.push(decode(serializer, &frame).expect("router frames decode"));
                }
            }
            _ => return out,
        }
    }
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=3)
        .prop_map(|c| c.join("."))
}

fn pattern() -> impl Strategy<Value = (String, MatchPolicy)> {
    prop_oneof![
        topic().prop_map(|t| (t, MatchPolicy::Exact)),
        // any string prefix of a topic, e.g. "a.", "a.b", "a"
        (topic(), any::<prop::sample::Index>()).prop_map(|(t, i)| {
            let end = 1 + i.index(t.len());
            (t[..end].to_owned(), MatchPolicy::Prefix)
        }),
        prop::collection::vec(prop::sample::select(vec!["a", "b", ""]), 1..=3)
            .prop_map(|c| (c.join("."), MatchPolicy::Wildcard)),
    ]
}

#[derive(Clone, Debug)]
struct Publication {
    publisher: usize,
    topic: String,
    exclude_me: bool,
    exclude: Option<Vec<usize>>,
    eligible: Option<Vec<usize>>,
    exclude_authid: Option<Vec<usize>>,
    eligible_authid: Option<Vec<usize>>,
    exclude_authrole: Option<Vec<usize>>,
    eligible_authrole: Option<Vec<usize>>,
}

fn maybe_indices(n: usize) -> impl Strategy<Value = Option<Vec<usize>>> {
    prop::option::weighted(0.3, prop::collection::vec(0..n, 0..3))
}

fn publication(sessions: usize) -> impl Strategy<Value = Publication> {
    (
        0..sessions,
        topic(),
        any::<bool>(),
        (maybe_indices(sessions), maybe_indices(sessions)),
        (maybe_indices(AUTHIDS.len()), maybe_indices(AUTHIDS.len())),
        (
            maybe_indices(AUTHROLES.len()),
            maybe_indices(AUTHROLES.len()),
        ),
    )
        .prop_map(|(publisher, topic, exclude_me, s, a, r)| Publication {
            publisher,
            topic,
            exclude_me,
            exclude: s.0,
            eligible: s.1,
            exclude_authid: a.0,
            eligible_authid: a.1,
            exclude_authrole: r.0,
            eligible_authrole: r.1,
        })
}

fn matches(policy: MatchPolicy, pattern: &str, topic: &str) -> bool {
    match policy {
        MatchPolicy::Exact => pattern == topic,
        MatchPolicy::Prefix => topic.starts_with(pattern),
        MatchPolicy::Wildcard => {
            let p: Vec<&str> = pattern.split('.').collect();
            let t: Vec<&str> = topic.split('.').collect();
            p.len() == t.len() && p.iter().zip(&t).all(|(p, t)| p.is_empty() || p == t)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn fan_out_matches_the_model(
        identities in prop::collection::vec((0..AUTHIDS.len(), 0..AUTHROLES.len(), 0..3usize), 1..6),
        subscriptions in prop::collection::vec((any::<prop::sample::Index>(), pattern()), 0..12),
        publications in prop::collection::vec(publication(6), 1..8),
    ) {
        let n = identities.len();
        let sessions: Vec<(Arc<SessionHandle>, Arc<Outbox>)> = identities
            .iter()
            .enumerate()
            .map(|(i, &(a, r, s))| {
                let outbox = Arc::new(Outbox::new(OutboxLimits::default()));
                let handle = SessionHandle::new(
                    100 + i as u64,
                    Serializer::ALL[s],
                    1 << 20,
                    (AUTHIDS[a].to_owned(), AUTHROLES[r].to_owned(), "anonymous".to_owned()),
                    outbox.clone(),
                );
                (Arc::new(handle), outbox)
            })
            .collect();
        let mut broker = Broker::default();
        // model: per session, the set of (pattern, policy) it holds -> subscription id
        let mut held: Vec<BTreeMap<(String, u8), u64>> = vec![BTreeMap::new(); n];
        let mut ids: BTreeMap<(String, u8), u64> = BTreeMap::new();
        for (who, (pat, policy)) in &subscriptions {
            let i = who.index(n);
            let id = broker.subscribe(pat, *policy, &sessions[i].0);
            let key = (pat.clone(), *policy as u8);
            // one subscription id per (pattern, policy)
            prop_assert_eq!(*ids.entry(key.clone()).or_insert(id), id);
            held[i].insert(key, id);
        }
        for (k, p) in publications.iter().enumerate() {
            let publisher = p.publisher % n;
            let to_ids = |l: &Option<Vec<usize>>| l.as_ref().map(|l| l.iter().map(|&i| 100 + (i % n) as u64).collect::<Vec<_>>());
            let to_names = |l: &Option<Vec<usize>>, names: &[&str]| l.as_ref().map(|l| l.iter().map(|&i| names[i].to_owned()).collect::<Vec<_>>());
            let filter = Filter {
                exclude: to_ids(&p.exclude).unwrap_or_default(),
                exclude_authid: to_names(&p.exclude_authid, &AUTHIDS).unwrap_or_default(),
                exclude_authrole: to_names(&p.exclude_authrole, &AUTHROLES).unwrap_or_default(),
                eligible: to_ids(&p.eligible),
                eligible_authid: to_names(&p.eligible_authid, &AUTHIDS),
                eligible_authrole: to_names(&p.eligible_authrole, &AUTHROLES),
            };
            let options = PublishOptions {
                exclude_me: p.exclude_me,
                filter: (filter != Filter::default()).then(|| Box::new(filter.clone())),
                ..PublishOptions::default()
            };
            let publication = 1000 + k as u64;
            broker.publish(
                &p.topic,
                publication,
                &Payload::from_args(vec![Value::from(k as u64)]),
                &sessions[publisher].0,
                &options,
                false,
            );
            for (i, (handle, outbox)) in sessions.iter().enumerate() {
                // naive model of the spec
                let allowed = !(i == publisher && p.exclude_me)
                    && filter.eligible.as_ref().is_none_or(|l| l.contains(&handle.id))
                    && filter.eligible_authid.as_ref().is_none_or(|l| l.contains(&handle.authid))
                    && filter.eligible_authrole.as_ref().is_none_or(|l| l.contains(&handle.authrole))
                    && !filter.exclude.contains(&handle.id)
                    && !filter.exclude_authid.contains(&handle.authid)
                    && !filter.exclude_authrole.contains(&handle.authrole);
                let expected: BTreeSet<(u64, bool)> = if allowed {
                    held[i]
                        .iter()
                        .filter(|((pat, policy), _)| {
                            let policy = [MatchPolicy::Exact, MatchPolicy::Prefix, MatchPolicy::Wildcard][*policy as usize];
                            matches(policy, pat, &p.topic)
                        })
                        .map(|((_, policy), id)| (*id, *policy != MatchPolicy::Exact as u8))
                        .collect()
                } else {
                    BTreeSet::new()
                };
                let got = drain(outbox, handle.serializer);
                let mut seen = BTreeSet::new();
                for m in &got {
                    let Message::Event { subscription, publication: pid, details, .. } = m else {
                        panic!("unexpected {m:?}");
                    };
                    prop_assert_eq!(*pid, publication);
                    let topic = details.get("topic").and_then(Value::as_str);
                    prop_assert!(topic.is_none() || topic == Some(p.topic.as_str()));
                    prop_assert!(seen.insert((*subscription, topic.is_some())), "duplicate EVENT");
                    prop_assert!(!details.contains_key("publisher"));
                }
                prop_assert_eq!(seen, expected, "session {} publication {:?}", i, p);
            }
        }
    }
}
