//! Dynamic authorization: a role whose decisions a procedure makes, as with
//! Crossbar.io's dynamic authorizers, and a cache of those decisions.
//!
//! For each CALL, REGISTER, PUBLISH and SUBSCRIBE of a session in such a role the
//! router calls `authorize(session, uri, action, options)` ([`authorizer_args`])
//! and accepts `true`/`false` or `{allow, disclose?, cache?}`. Anything else, or an
//! error, fails the request with [`AUTHORIZATION_FAILED`].
//!
//! Answers are cached per (realm, role, action, URI): the cache belongs to the
//! role, and one lookup by URI finds the slots of all four actions, so a hit costs
//! one hash lookup under a short lock and no allocation. Entries live for the
//! configured time and the cache holds a bounded number of them; beyond it the
//! oldest go first. Roles with static permissions never reach this module.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use wamp_proto::{dict, Dict, Value};

use crate::auth::Action;
use crate::internal_call::Answer;
use crate::session::SessionHandle;

/// ERROR when the authorizer could not decide (it failed, was absent or too slow,
/// or gave a malformed answer).
pub const AUTHORIZATION_FAILED: &str = "wamp.error.authorization_failed";

/// Default time an authorizer answer is cached.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// Default bound on cached answers per role.
pub const DEFAULT_CACHE_MAX: usize = 10_000;

/// What the authorizer decided for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The request may go ahead.
    pub allow: bool,
    /// The caller or publisher is disclosed.
    pub disclose: bool,
}

/// The authorizer could not decide (error, absent, too slow, malformed answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Undecided;

/// The verdict on a request: a grant, or [`Undecided`].
pub type Verdict = Result<Grant, Undecided>;

/// The wire name of an action (Crossbar's).
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Call => "call",
        Action::Register => "register",
        Action::Publish => "publish",
        Action::Subscribe => "subscribe",
    }
}

fn slot(action: Action) -> usize {
    match action {
        Action::Call => 0,
        Action::Register => 1,
        Action::Publish => 2,
        Action::Subscribe => 3,
    }
}

/// A role's authorizer procedure and its decision cache.
pub struct DynamicAuthorizer {
    /// The authorizer procedure.
    pub procedure: String,
    /// The realm it is registered on; `None`: the session's realm.
    pub realm: Option<String>,
    /// How long it may take to answer.
    pub timeout: Duration,
    /// Only a callee in this role is asked (`None`: whoever registered it).
    pub callee_role: Option<String>,
    /// How long an answer is cached (zero: not cached).
    ttl: Duration,
    max: usize,
    cache: Mutex<Cache>,
}

/// Longest URI (with its match policy) whose answer is cached, in bytes.
pub const MAX_CACHED_URI: usize = 512;

#[derive(Default)]
struct Cache {
    entries: HashMap<String, [Option<(Grant, Instant)>; 4]>,
    /// Insertion order, oldest first: (when, uri, action).
    order: VecDeque<(Instant, String, Action)>,
}

impl DynamicAuthorizer {
    /// An authorizer whose answers are cached for `ttl` (zero: not at all), at
    /// most `max` of them.
    pub fn new(
        procedure: impl Into<String>,
        realm: Option<String>,
        timeout: Duration,
        ttl: Duration,
        max: usize,
    ) -> Self {
        DynamicAuthorizer {
            procedure: procedure.into(),
            realm,
            timeout,
            callee_role: None,
            ttl,
            max,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The same authorizer, asking only a callee in role `role`.
    pub fn with_callee_role(mut self, role: Option<String>) -> Self {
        self.callee_role = role;
        self
    }

    /// A cached, still valid answer for `action` on `uri`.
    pub fn cached(&self, action: Action, uri: &str) -> Option<Grant> {
        if self.ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock();
        let (grant, at) = cache.entries.get(uri)?[slot(action)]?;
        (at.elapsed() < self.ttl).then_some(grant)
    }

    /// Number of answers cached (expired ones included until they are evicted).
    pub fn cache_len(&self) -> usize {
        self.cache
            .lock()
            .entries
            .values()
            .map(|slots| slots.iter().flatten().count())
            .sum()
    }

    fn remember(&self, action: Action, uri: &str, grant: Grant) {
        // Long URIs are asked about each time: with them cached, the bound on
        // entries would not bound memory.
        if self.ttl.is_zero() || self.max == 0 || uri.len() > MAX_CACHED_URI {
            return;
        }
        let now = Instant::now();
        let mut cache = self.cache.lock();
        cache.entries.entry(uri.to_owned()).or_default()[slot(action)] = Some((grant, now));
        cache.order.push_back((now, uri.to_owned(), action));
        // Drop what expired, then the oldest beyond the bound. (An overwritten
        // entry leaves a stale position behind, which counts towards the bound
        // until it is reached: memory stays bounded either way.)
        while let Some((at, ..)) = cache.order.front() {
            let expired = now.duration_since(*at) >= self.ttl;
            if !expired && cache.order.len() <= self.max {
                break;
            }
            let Some((at, uri, action)) = cache.order.pop_front() else {
                break;
            };
            if let Some(slots) = cache.entries.get_mut(&uri) {
                if slots[slot(action)].is_some_and(|(_, t)| t == at) {
                    slots[slot(action)] = None;
                }
                if slots.iter().all(Option::is_none) {
                    cache.entries.remove(&uri);
                }
            }
        }
    }

    /// The verdict in an authorizer's answer, cached unless it says `cache: false`.
    pub fn verdict(&self, answer: Answer, action: Action, uri: &str) -> Verdict {
        let Answer::Result(payload) = answer else {
            tracing::info!(
                procedure = %self.procedure,
                uri,
                outcome = %answer.describe(),
                "authorizer did not decide"
            );
            return Err(Undecided);
        };
        let first = payload.args().ok().and_then(|a| a.into_iter().next());
        let parsed = match first {
            Some(Value::Bool(allow)) => Some((
                Grant {
                    allow,
                    disclose: false,
                },
                true,
            )),
            Some(Value::Dict(d)) => parse_dict(&d),
            _ => None,
        };
        let Some((grant, cache)) = parsed else {
            tracing::info!(procedure = %self.procedure, uri, "authorizer answer is malformed");
            return Err(Undecided);
        };
        if cache {
            self.remember(action, uri, grant);
        }
        Ok(grant)
    }
}

/// `{allow, disclose?, cache?}` (and `validate`, which is accepted and unused);
/// other keys make it malformed, as with Crossbar.io.
fn parse_dict(d: &Dict) -> Option<(Grant, bool)> {
    if d.keys()
        .any(|k| !matches!(k.as_str(), "allow" | "disclose" | "cache" | "validate"))
    {
        return None;
    }
    let flag = |key: &str, default: bool| match d.get(key) {
        None | Some(Value::Null) => Some(default),
        Some(v) => v.as_bool(),
    };
    let allow = d.get("allow")?.as_bool()?;
    Some((
        Grant {
            allow,
            disclose: flag("disclose", false)?,
        },
        flag("cache", true)?,
    ))
}

impl std::fmt::Debug for DynamicAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicAuthorizer")
            .field("procedure", &self.procedure)
            .field("realm", &self.realm)
            .field("ttl", &self.ttl)
            .field("max", &self.max)
            .finish()
    }
}

/// The arguments of the authorizer call: `(session, uri, action, options)`, where
/// `session` holds `session`, `realm`, `authid`, `authrole`, `authmethod`,
/// `authprovider`, `authextra` and `transport` (see
/// [`TransportInfo::details`](crate::TransportInfo::details)).
pub fn authorizer_args(
    realm: &str,
    session: &SessionHandle,
    uri: &str,
    action: Action,
    options: Dict,
    transport: Dict,
) -> Vec<Value> {
    let details = dict! {
        "session" => session.id,
        "realm" => realm,
        "authid" => session.authid.as_str(),
        "authrole" => session.authrole.as_str(),
        "authmethod" => session.authmethod.as_str(),
        "authprovider" => session.authprovider,
        "authextra" => session.authextra.clone(),
        "transport" => transport,
    };
    vec![
        Value::Dict(details),
        Value::from(uri),
        Value::from(action_name(action)),
        Value::Dict(options),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use wamp_proto::Payload;

    fn answer(v: Value) -> Answer {
        Answer::Result(Payload::from_args(vec![v]))
    }

    #[test]
    fn answers_and_cache() {
        let a = DynamicAuthorizer::new("p", None, Duration::from_secs(1), DEFAULT_CACHE_TTL, 3);
        let allow = Grant {
            allow: true,
            disclose: false,
        };
        assert_eq!(
            a.verdict(answer(Value::Bool(true)), Action::Call, "a"),
            Ok(allow)
        );
        assert_eq!(a.cached(Action::Call, "a"), Some(allow));
        assert_eq!(a.cached(Action::Register, "a"), None, "per action");
        let d = dict! {"allow" => false, "cache" => false};
        let denied = a.verdict(answer(Value::Dict(d)), Action::Call, "b");
        assert_eq!(denied.map(|g| g.allow), Ok(false));
        assert_eq!(a.cached(Action::Call, "b"), None, "cache: false");
        let d = dict! {"allow" => true, "disclose" => true};
        assert_eq!(
            a.verdict(answer(Value::Dict(d)), Action::Publish, "c"),
            Ok(Grant {
                allow: true,
                disclose: true
            })
        );
        for bad in [
            Value::from("yes"),
            Value::Dict(dict! {"disclose" => true}),
            Value::Dict(dict! {"allow" => 1u64}),
            Value::Dict(dict! {"allow" => true, "alow" => true}),
        ] {
            assert_eq!(a.verdict(answer(bad), Action::Call, "x"), Err(Undecided));
        }
        assert_eq!(
            a.verdict(Answer::Timeout, Action::Call, "x"),
            Err(Undecided)
        );
        // Bounded: the oldest go first.
        for uri in ["d", "e", "f"] {
            let _ = a.verdict(answer(Value::Bool(true)), Action::Subscribe, uri);
        }
        assert_eq!(a.cache_len(), 3);
        assert_eq!(a.cached(Action::Call, "a"), None);
        assert_eq!(a.cached(Action::Subscribe, "f"), Some(allow));
    }

    #[test]
    fn long_uris_are_not_cached() {
        let a = DynamicAuthorizer::new("p", None, Duration::from_secs(1), DEFAULT_CACHE_TTL, 10);
        let long = "a.".repeat(MAX_CACHED_URI / 2) + "b";
        let grant = a.verdict(answer(Value::Bool(true)), Action::Call, &long);
        assert_eq!(grant.map(|g| g.allow), Ok(true));
        assert_eq!(a.cached(Action::Call, &long), None);
        assert_eq!(a.cache_len(), 0);
    }

    #[test]
    fn zero_ttl_caches_nothing() {
        let a = DynamicAuthorizer::new("p", None, Duration::from_secs(1), Duration::ZERO, 10);
        let _ = a.verdict(answer(Value::Bool(true)), Action::Call, "a");
        assert_eq!(a.cached(Action::Call, "a"), None);
        assert_eq!(a.cache_len(), 0);
    }
}
