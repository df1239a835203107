//! The WAMP meta API: the session, registration and subscription procedures
//! (`wamp.session.*`, `wamp.registration.*`, `wamp.subscription.*`) and their
//! events.
//!
//! Meta events are ordinary publications in the realm they describe, made by the
//! realm's router session (id 0) through the broker. The broker counts the
//! subscriptions that could receive one (exact `wamp.*` topics, prefixes and
//! wildcards that can match `wamp.*`); while that count is zero nothing is recorded
//! or published, so sessions, subscriptions and registrations cost nothing extra.
//! The broker and dealer record [`MetaNote`]s while they change their tables and
//! the change's caller publishes them still holding the table lock, so every
//! subscriber sees `on_create` before `on_register`/`on_subscribe` and `on_delete`
//! after the last `on_unregister`/`on_unsubscribe`.

use std::sync::Arc;

use wamp_proto::error_uri as uri_err;
use wamp_proto::message::Id;
use wamp_proto::uri::{is_valid_uri, MatchPolicy, UriRule};
use wamp_proto::{dict, Dict, Message, Payload, Value, MAX_ID};

use crate::broker::{rfc3339, Subscription};
use crate::dealer::{Registration, UNREGISTERED};
use crate::procedures::{Call, ProcedureError};
use crate::realm::Realm;
use crate::session::SessionHandle;

/// A change of the registration or subscription tables: (session, id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetaNote {
    /// The session's request created the registration/subscription.
    Create(Id, Id),
    /// The session was added to it.
    Add(Id, Id),
    /// The session was removed from it.
    Remove(Id, Id),
    /// It was deleted; the session is the one whose removal emptied it.
    Delete(Id, Id),
}

impl MetaNote {
    /// The event topic under `base` (`wamp.registration` or `wamp.subscription`),
    /// the session and the registration/subscription id.
    pub(crate) fn parts(self, base: &str) -> (String, Id, Id) {
        let sub = base.ends_with("subscription");
        let (name, session, id) = match self {
            MetaNote::Create(s, i) => ("on_create", s, i),
            MetaNote::Add(s, i) => (if sub { "on_subscribe" } else { "on_register" }, s, i),
            MetaNote::Remove(s, i) => (
                if sub {
                    "on_unsubscribe"
                } else {
                    "on_unregister"
                },
                s,
                i,
            ),
            MetaNote::Delete(s, i) => ("on_delete", s, i),
        };
        (format!("{base}.{name}"), session, id)
    }
}

/// Whether a subscription on `topic` with `policy` could receive a meta event
/// (whose topics all start with `wamp.`).
pub(crate) fn watches(topic: &str, policy: MatchPolicy) -> bool {
    match policy {
        MatchPolicy::Exact => topic.starts_with("wamp."),
        MatchPolicy::Prefix => topic.starts_with("wamp.") || "wamp.".starts_with(topic),
        MatchPolicy::Wildcard => matches!(topic.split('.').next(), Some("" | "wamp")),
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `SubscriptionDetails`.
pub(crate) fn subscription_details(id: Id, sub: &Subscription) -> Value {
    Value::Dict(dict! {
        "id" => id,
        "created" => rfc3339(sub.created_ms),
        "uri" => sub.topic.as_str(),
        "match" => sub.policy.as_str(),
    })
}

/// `RegistrationDetails`.
pub(crate) fn registration_details(id: Id, reg: &Registration) -> Value {
    Value::Dict(dict! {
        "id" => id,
        "created" => rfc3339(reg.created_ms),
        "uri" => reg.procedure.as_str(),
        "match" => reg.policy.as_str(),
        "invoke" => reg.invoke.as_str(),
    })
}

/// `SessionDetails` as in `wamp.session.on_join` and `wamp.session.get`: the
/// spec's keys plus Crossbar.io's harmless extras.
pub(crate) fn session_details(realm: &Realm, s: &SessionHandle) -> Value {
    Value::Dict(dict! {
        "session" => s.id,
        "realm" => realm.name(),
        "authid" => s.authid.as_str(),
        "authrole" => s.authrole.as_str(),
        "authmethod" => s.authmethod.as_str(),
        "authprovider" => s.authprovider,
        "authextra" => s.authextra.clone(),
        "serializer" => s.serializer.name(),
        "transport" => s.transport.details(s.serializer),
        "resumed" => false,
        "resumable" => false,
    })
}

// ---------------------------------------------------------------------------
// Argument helpers

fn invalid(text: impl Into<String>) -> ProcedureError {
    ProcedureError::new(uri_err::INVALID_ARGUMENT, text)
}

fn arity(call: &Call<'_>, min: usize, max: usize) -> Result<(), ProcedureError> {
    let n = call.args.len();
    if n < min || n > max {
        return Err(invalid(if min == max {
            format!("expected {min} positional argument(s), got {n}")
        } else {
            format!("expected {min} to {max} positional arguments, got {n}")
        }));
    }
    Ok(())
}

fn id_arg(call: &Call<'_>, index: usize, what: &str) -> Result<Id, ProcedureError> {
    call.args
        .get(index)
        .and_then(Value::as_u64)
        .filter(|&id| id <= MAX_ID)
        .ok_or_else(|| invalid(format!("argument {} must be a {what} id", index + 1)))
}

fn str_arg<'c>(call: &'c Call<'_>, index: usize, what: &str) -> Result<&'c str, ProcedureError> {
    call.args
        .get(index)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("argument {} must be a {what} string", index + 1)))
}

/// The optional `filter_authroles` list.
fn roles_filter(call: &Call<'_>) -> Result<Option<Vec<String>>, ProcedureError> {
    arity(call, 0, 1)?;
    match call.args.first() {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_list()
            .and_then(|l| {
                l.iter()
                    .map(|r| r.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            })
            .map(Some)
            .ok_or_else(|| invalid("filter_authroles must be a list of strings")),
    }
}

/// The `reason` keyword argument (a URI), or `default`.
fn reason(call: &Call<'_>, default: &str) -> Result<String, ProcedureError> {
    match call.kwargs.get("reason") {
        None | Some(Value::Null) => Ok(default.to_owned()),
        Some(Value::Str(r)) if is_valid_uri(r, UriRule::Strict) => Ok(r.clone()),
        Some(Value::Str(r)) => Err(ProcedureError::new(
            uri_err::INVALID_URI,
            format!("invalid reason URI '{r}'"),
        )),
        Some(_) => Err(invalid("reason must be a URI string")),
    }
}

/// The `message` keyword argument.
fn message(call: &Call<'_>) -> Result<Option<String>, ProcedureError> {
    match call.kwargs.get("message") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Str(m)) => Ok(Some(m.clone())),
        Some(_) => Err(invalid("message must be a string")),
    }
}

fn one(value: impl Into<Value>) -> Payload {
    Payload::from_args(vec![value.into()])
}

fn ids(ids: impl IntoIterator<Item = Id>) -> Value {
    Value::List(ids.into_iter().map(Value::from).collect())
}

// ---------------------------------------------------------------------------
// Sessions

fn sessions_with_roles(call: &Call<'_>) -> Result<Vec<Id>, ProcedureError> {
    let filter = roles_filter(call)?;
    Ok(call
        .realm
        .sessions
        .read()
        .values()
        .filter(|s| filter.as_ref().is_none_or(|f| f.contains(&s.authrole)))
        .map(|s| s.id)
        .collect())
}

/// `wamp.session.count(filter_authroles?)`.
pub(crate) fn session_count(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    Ok(one(sessions_with_roles(call)?.len() as u64))
}

/// `wamp.session.list(filter_authroles?)`.
pub(crate) fn session_list(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    Ok(one(ids(sessions_with_roles(call)?)))
}

fn no_such_session(id: Id) -> ProcedureError {
    ProcedureError::new(uri_err::NO_SUCH_SESSION, format!("no session {id}"))
}

/// `wamp.session.get(session)`.
pub(crate) fn session_get(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    arity(call, 1, 1)?;
    let id = id_arg(call, 0, "session")?;
    let s = call.realm.session(id).ok_or_else(|| no_such_session(id))?;
    Ok(one(session_details(call.realm, &s)))
}

/// Kills sessions of the realm picked by `pick`, never the caller: GOODBYE with
/// the `reason` and `message` keyword arguments, and out of the session table at
/// once (the rest of their state goes when their connections close). Returns the
/// killed ids.
fn kill_where(
    call: &Call<'_>,
    pick: impl Fn(&SessionHandle) -> bool,
) -> Result<Vec<Id>, ProcedureError> {
    let reason = reason(call, uri_err::CLOSE_KILLED)?;
    let message = message(call)?;
    let victims: Vec<Arc<SessionHandle>> = call
        .realm
        .sessions
        .read()
        .values()
        .filter(|s| s.id != call.caller.id && pick(s))
        .cloned()
        .collect();
    let mut details = Dict::new();
    if let Some(m) = message {
        details.insert("message".into(), Value::from(m));
    }
    let goodbye = Message::Goodbye { details, reason };
    let mut killed = Vec::with_capacity(victims.len());
    for victim in victims {
        victim.send_last(&goodbye);
        if call.realm.sessions.write().remove(&victim.id).is_some() {
            killed.push(victim.id);
        }
    }
    Ok(killed)
}

/// `wamp.session.kill(session, reason=, message=)`.
pub(crate) fn session_kill(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    arity(call, 1, 1)?;
    let id = id_arg(call, 0, "session")?;
    if id == call.caller.id || call.realm.session(id).is_none() {
        return Err(no_such_session(id));
    }
    if kill_where(call, |s| s.id == id)?.is_empty() {
        return Err(no_such_session(id));
    }
    Ok(Payload::empty())
}

/// `wamp.session.kill_by_authid(authid, reason=, message=)` → killed ids.
pub(crate) fn session_kill_by_authid(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    arity(call, 1, 1)?;
    let authid = str_arg(call, 0, "authid")?.to_owned();
    Ok(one(ids(kill_where(call, |s| s.authid == authid)?)))
}

/// `wamp.session.kill_by_authrole(authrole, reason=, message=)` → count.
pub(crate) fn session_kill_by_authrole(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    arity(call, 1, 1)?;
    let authrole = str_arg(call, 0, "authrole")?.to_owned();
    Ok(one(
        kill_where(call, |s| s.authrole == authrole)?.len() as u64
    ))
}

/// `wamp.session.kill_all(reason=, message=)` → count.
pub(crate) fn session_kill_all(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    arity(call, 0, 0)?;
    Ok(one(kill_where(call, |_| true)?.len() as u64))
}

// ---------------------------------------------------------------------------
// Registrations and subscriptions

/// The optional session argument of `list` (Crossbar.io's extension).
fn list_session(call: &Call<'_>) -> Result<Option<Id>, ProcedureError> {
    arity(call, 0, 1)?;
    match call.args.first() {
        None | Some(Value::Null) => Ok(None),
        Some(_) => {
            let id = id_arg(call, 0, "session")?;
            call.realm.session(id).ok_or_else(|| no_such_session(id))?;
            Ok(Some(id))
        }
    }
}

/// `(uri, options?)` of `lookup`: the URI and the `match` policy.
fn lookup_args<'c>(call: &'c Call<'_>) -> Result<(&'c str, MatchPolicy), ProcedureError> {
    arity(call, 1, 2)?;
    let uri = str_arg(call, 0, "URI")?;
    let policy = match call.args.get(1) {
        None | Some(Value::Null) => MatchPolicy::Exact,
        Some(Value::Dict(options)) => match options.get("match") {
            None | Some(Value::Null) => MatchPolicy::Exact,
            Some(v) => v
                .as_str()
                .and_then(MatchPolicy::parse)
                .ok_or_else(|| invalid("match must be exact, prefix or wildcard"))?,
        },
        Some(_) => return Err(invalid("options must be a dict")),
    };
    Ok((uri, policy))
}

fn by_policy(list: impl Fn(MatchPolicy) -> Vec<Id>) -> Payload {
    one(Value::Dict(dict! {
        "exact" => ids(list(MatchPolicy::Exact)),
        "prefix" => ids(list(MatchPolicy::Prefix)),
        "wildcard" => ids(list(MatchPolicy::Wildcard)),
    }))
}

fn no_such_registration(id: Id) -> ProcedureError {
    ProcedureError::new(
        uri_err::NO_SUCH_REGISTRATION,
        format!("no registration {id}"),
    )
}

fn no_such_subscription(id: Id) -> ProcedureError {
    ProcedureError::new(
        uri_err::NO_SUCH_SUBSCRIPTION,
        format!("no subscription {id}"),
    )
}

/// `wamp.registration.list(session?)`.
pub(crate) fn registration_list(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    let session = list_session(call)?;
    let dealer = call.realm.dealer.lock();
    Ok(by_policy(|policy| {
        dealer
            .ids(policy)
            .into_iter()
            .filter(|id| {
                session.is_none_or(|s| {
                    dealer
                        .registration(*id)
                        .is_some_and(|r| r.callees.iter().any(|c| c.session.id == s))
                })
            })
            .collect()
    }))
}

/// `wamp.registration.lookup(procedure, options?)`.
pub(crate) fn registration_lookup(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    let (uri, policy) = lookup_args(call)?;
    let found = call.realm.dealer.lock().find(uri, policy);
    Ok(one(found.map_or(Value::Null, Value::from)))
}

/// `wamp.registration.match(procedure)`: the registration a CALL would use.
pub(crate) fn registration_match(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    arity(call, 1, 1)?;
    let uri = str_arg(call, 0, "procedure")?;
    let found = call.realm.dealer.lock().lookup(uri).map(|(id, _)| id);
    Ok(one(found.map_or(Value::Null, Value::from)))
}

fn with_registration<T>(
    call: &Call<'_>,
    f: impl FnOnce(Id, &Registration) -> T,
) -> Result<T, ProcedureError> {
    arity(call, 1, 1)?;
    let id = id_arg(call, 0, "registration")?;
    let dealer = call.realm.dealer.lock();
    let reg = dealer
        .registration(id)
        .ok_or_else(|| no_such_registration(id))?;
    Ok(f(id, reg))
}

/// `wamp.registration.get(registration)`.
pub(crate) fn registration_get(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    with_registration(call, |id, reg| one(registration_details(id, reg)))
}

/// `wamp.registration.list_callees(registration)`.
pub(crate) fn registration_list_callees(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    with_registration(call, |_, reg| {
        one(ids(reg.callees.iter().map(|c| c.session.id)))
    })
}

/// `wamp.registration.count_callees(registration)`.
pub(crate) fn registration_count_callees(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    with_registration(call, |_, reg| one(reg.callees.len() as u64))
}

/// `wamp.registration.remove_callee(registration, callee, reason=)`.
pub(crate) fn registration_remove_callee(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    arity(call, 2, 2)?;
    let id = id_arg(call, 0, "registration")?;
    let callee = id_arg(call, 1, "session")?;
    let reason = reason(call, UNREGISTERED)?;
    let has = call
        .realm
        .dealer
        .lock()
        .registration(id)
        .map(|r| r.callees.iter().any(|c| c.session.id == callee));
    match has {
        None => Err(no_such_registration(id)),
        Some(false) if call.realm.session(callee).is_none() => Err(no_such_session(callee)),
        Some(false) => Err(no_such_registration(id)),
        Some(true) => {
            call.realm.revoke_registration(id, Some(callee), &reason);
            Ok(Payload::empty())
        }
    }
}

/// `wamp.subscription.list(session?)`.
pub(crate) fn subscription_list(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    let session = list_session(call)?;
    let broker = call.realm.broker.read();
    Ok(by_policy(|policy| {
        broker
            .ids(policy)
            .into_iter()
            .filter(|id| {
                session.is_none_or(|s| {
                    broker
                        .subscription(*id)
                        .is_some_and(|sub| sub.subscribers.iter().any(|x| x.id == s))
                })
            })
            .collect()
    }))
}

/// `wamp.subscription.lookup(topic, options?)`.
pub(crate) fn subscription_lookup(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    let (uri, policy) = lookup_args(call)?;
    let found = call.realm.broker.read().find(uri, policy);
    Ok(one(found.map_or(Value::Null, Value::from)))
}

/// `wamp.subscription.match(topic)`: every subscription a publication would reach
/// (null when none).
pub(crate) fn subscription_match(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    arity(call, 1, 1)?;
    let uri = str_arg(call, 0, "topic")?;
    let found = call.realm.broker.read().matching(uri);
    Ok(one(if found.is_empty() {
        Value::Null
    } else {
        ids(found)
    }))
}

fn with_subscription<T>(
    call: &Call<'_>,
    f: impl FnOnce(Id, &Subscription) -> T,
) -> Result<T, ProcedureError> {
    arity(call, 1, 1)?;
    let id = id_arg(call, 0, "subscription")?;
    let broker = call.realm.broker.read();
    let sub = broker
        .subscription(id)
        .ok_or_else(|| no_such_subscription(id))?;
    Ok(f(id, sub))
}

/// `wamp.subscription.get(subscription)`.
pub(crate) fn subscription_get(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    with_subscription(call, |id, sub| one(subscription_details(id, sub)))
}

/// `wamp.subscription.list_subscribers(subscription)`.
pub(crate) fn subscription_list_subscribers(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    with_subscription(call, |_, sub| {
        one(ids(sub.subscribers.iter().map(|s| s.id)))
    })
}

/// `wamp.subscription.count_subscribers(subscription)`.
pub(crate) fn subscription_count_subscribers(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    with_subscription(call, |_, sub| one(sub.subscribers.len() as u64))
}

/// `wamp.subscription.remove_subscriber(subscription, subscriber, reason=)`.
pub(crate) fn subscription_remove_subscriber(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    arity(call, 2, 2)?;
    let id = id_arg(call, 0, "subscription")?;
    let subscriber = id_arg(call, 1, "session")?;
    let reason = reason(call, "wamp.error.unsubscribed")?;
    let has = call
        .realm
        .broker
        .read()
        .subscription(id)
        .map(|s| s.subscribers.iter().any(|x| x.id == subscriber));
    match has {
        None => Err(no_such_subscription(id)),
        Some(false) if call.realm.session(subscriber).is_none() => Err(no_such_session(subscriber)),
        Some(false) => Err(no_such_subscription(id)),
        Some(true) => {
            call.realm
                .revoke_subscription(id, Some(subscriber), &reason);
            Ok(Payload::empty())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watching_patterns() {
        assert!(watches("wamp.session.on_join", MatchPolicy::Exact));
        assert!(!watches("com.x", MatchPolicy::Exact));
        assert!(watches("wamp.", MatchPolicy::Prefix));
        assert!(watches("wa", MatchPolicy::Prefix));
        assert!(!watches("com.", MatchPolicy::Prefix));
        assert!(watches("..on_join", MatchPolicy::Wildcard));
        assert!(watches("wamp..on_join", MatchPolicy::Wildcard));
        assert!(!watches("com..x", MatchPolicy::Wildcard));
    }

    #[test]
    fn note_topics() {
        assert_eq!(
            MetaNote::Add(1, 2).parts("wamp.subscription").0,
            "wamp.subscription.on_subscribe"
        );
        assert_eq!(
            MetaNote::Remove(1, 2).parts("wamp.registration").0,
            "wamp.registration.on_unregister"
        );
    }
}
