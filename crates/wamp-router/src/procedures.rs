//! Procedures the router answers itself (`wamp.*`), such as the session
//! testament and event history procedures.
//!
//! A CALL of a `wamp.*` URI is looked up in [`PROCEDURES`] before the dealer is
//! asked (clients can't register `wamp.*`). Each entry is a plain function from the
//! call's context to its result; the meta API's procedures live in
//! [`crate::meta`].

use std::sync::Arc;

use wamp_proto::error_uri as uri_err;
use wamp_proto::uri::is_valid_uri;
use wamp_proto::{Dict, Payload, Value};

use crate::broker::{HistoryError, HistoryQuery, PublishOptions};
use crate::meta;
use crate::realm::Realm;
use crate::session::{SessionHandle, Testament, TestamentScope, MAX_TESTAMENTS};

/// A bad testament request (Crossbar.io's URI).
pub const TESTAMENT_ERROR: &str = "wamp.error.testament_error";
/// No history is kept for the subscription (Crossbar.io's URI).
pub const HISTORY_UNAVAILABLE: &str = "wamp.error.history_unavailable";

/// What a router procedure gets.
pub struct Call<'a> {
    /// The caller's realm.
    pub realm: &'a Realm,
    /// The caller.
    pub caller: &'a Arc<SessionHandle>,
    /// `Arguments`.
    pub args: Vec<Value>,
    /// `ArgumentsKw`.
    pub kwargs: Dict,
}

/// An ERROR for the caller: the error URI and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcedureError {
    /// The error URI.
    pub uri: &'static str,
    /// Human-readable text (sent as the single argument).
    pub message: String,
}

impl ProcedureError {
    pub(crate) fn new(uri: &'static str, message: impl Into<String>) -> Self {
        ProcedureError {
            uri,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(uri_err::INVALID_ARGUMENT, message)
    }
}

/// A router procedure: the RESULT payload or an error.
pub type Handler = fn(&Call<'_>) -> Result<Payload, ProcedureError>;

/// Every router procedure.
pub const PROCEDURES: &[(&str, Handler)] = &[
    ("wamp.session.add_testament", add_testament),
    ("wamp.session.flush_testaments", flush_testaments),
    ("wamp.subscription.get_events", get_events),
    ("wamp.session.count", meta::session_count),
    ("wamp.session.list", meta::session_list),
    ("wamp.session.get", meta::session_get),
    ("wamp.session.kill", meta::session_kill),
    ("wamp.session.kill_by_authid", meta::session_kill_by_authid),
    (
        "wamp.session.kill_by_authrole",
        meta::session_kill_by_authrole,
    ),
    ("wamp.session.kill_all", meta::session_kill_all),
    ("wamp.registration.list", meta::registration_list),
    ("wamp.registration.lookup", meta::registration_lookup),
    ("wamp.registration.match", meta::registration_match),
    ("wamp.registration.get", meta::registration_get),
    (
        "wamp.registration.list_callees",
        meta::registration_list_callees,
    ),
    (
        "wamp.registration.count_callees",
        meta::registration_count_callees,
    ),
    (
        "wamp.registration.remove_callee",
        meta::registration_remove_callee,
    ),
    ("wamp.subscription.list", meta::subscription_list),
    ("wamp.subscription.lookup", meta::subscription_lookup),
    ("wamp.subscription.match", meta::subscription_match),
    ("wamp.subscription.get", meta::subscription_get),
    (
        "wamp.subscription.list_subscribers",
        meta::subscription_list_subscribers,
    ),
    (
        "wamp.subscription.count_subscribers",
        meta::subscription_count_subscribers,
    ),
    (
        "wamp.subscription.remove_subscriber",
        meta::subscription_remove_subscriber,
    ),
];

/// The router procedure named `procedure`, if there is one.
pub fn lookup(procedure: &str) -> Option<Handler> {
    PROCEDURES
        .iter()
        .find(|(name, _)| *name == procedure)
        .map(|(_, handler)| *handler)
}

/// Runs a router procedure with the CALL's payload.
pub fn run(
    handler: Handler,
    realm: &Realm,
    caller: &Arc<SessionHandle>,
    payload: &Payload,
) -> Result<Payload, ProcedureError> {
    let elements = payload
        .elements()
        .map_err(|e| ProcedureError::invalid(format!("cannot read the arguments: {e}")))?;
    let args = match elements.args {
        None => Vec::new(),
        Some(Value::List(args)) => args,
        Some(_) => return Err(ProcedureError::invalid("Arguments must be a list")),
    };
    handler(&Call {
        realm,
        caller,
        args,
        kwargs: elements.kwargs.unwrap_or_default(),
    })
}

fn scope(call: &Call<'_>) -> Result<TestamentScope, ProcedureError> {
    match call.kwargs.get("scope") {
        None | Some(Value::Null) => Ok(TestamentScope::Destroyed),
        Some(v) => v.as_str().and_then(TestamentScope::parse).ok_or_else(|| {
            ProcedureError::new(
                TESTAMENT_ERROR,
                "scope must be \"destroyed\" or \"detached\"",
            )
        }),
    }
}

/// `wamp.session.add_testament(topic, args, kwargs, publish_options=, scope=)`.
fn add_testament(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    let topic = call
        .args
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| ProcedureError::invalid("the first argument must be the topic"))?;
    if !is_valid_uri(topic, call.realm.config.uri_rule) || topic.starts_with("wamp.") {
        return Err(ProcedureError::new(
            uri_err::INVALID_URI,
            format!("invalid topic URI '{topic}'"),
        ));
    }
    let args = match call.args.get(1) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::List(l)) => l.clone(),
        Some(_) => return Err(ProcedureError::invalid("args must be a list")),
    };
    let kwargs = match call.args.get(2) {
        None | Some(Value::Null) => Dict::new(),
        Some(Value::Dict(d)) => d.clone(),
        Some(_) => return Err(ProcedureError::invalid("kwargs must be a dict")),
    };
    let options = match call.kwargs.get("publish_options") {
        None | Some(Value::Null) => PublishOptions::default(),
        Some(Value::Dict(d)) => PublishOptions::parse(d).map_err(ProcedureError::invalid)?,
        Some(_) => return Err(ProcedureError::invalid("publish_options must be a dict")),
    };
    let scope = scope(call)?;
    let mut testaments = call.caller.testaments.lock();
    if testaments.len() >= MAX_TESTAMENTS {
        return Err(ProcedureError::new(
            TESTAMENT_ERROR,
            format!("a session may hold at most {MAX_TESTAMENTS} testaments"),
        ));
    }
    testaments.scope_mut(scope).push(Testament {
        topic: topic.to_owned(),
        payload: Payload::new(args, kwargs),
        options,
    });
    Ok(Payload::empty())
}

/// `wamp.session.flush_testaments(scope=)`.
fn flush_testaments(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    let scope = scope(call)?;
    call.caller.testaments.lock().scope_mut(scope).clear();
    Ok(Payload::empty())
}

/// Milliseconds since the Unix epoch of an RFC 3339 time (any offset); times before
/// the epoch count as 0.
fn rfc3339_ms(text: &str) -> Option<u64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
}

/// `wamp.subscription.get_events(subscription, limit=, reverse=, topic=,
/// after_publication=, from_publication=, before_publication=, until_publication=,
/// from_time=, after_time=, before_time=, until_time=)`; times are RFC 3339 strings.
/// `limit` may also come as the second positional argument (Crossbar.io's form).
fn get_events(call: &Call<'_>) -> Result<Payload, ProcedureError> {
    let subscription =
        call.args.first().and_then(Value::as_u64).ok_or_else(|| {
            ProcedureError::invalid("the first argument must be a subscription id")
        })?;
    let int = |key: &str, positional: Option<usize>| -> Result<Option<u64>, ProcedureError> {
        let v = call
            .kwargs
            .get(key)
            .or_else(|| positional.and_then(|i| call.args.get(i)));
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                ProcedureError::invalid(format!("{key} must be a non-negative integer"))
            }),
        }
    };
    let reverse = match call.kwargs.get("reverse") {
        None | Some(Value::Null) => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| ProcedureError::invalid("reverse must be a bool"))?,
    };
    let topic = match call.kwargs.get("topic") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| ProcedureError::invalid("topic must be a string"))?
                .to_owned(),
        ),
    };
    let time =
        |key: &str| -> Result<Option<u64>, ProcedureError> {
            match call.kwargs.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_str().and_then(rfc3339_ms).map(Some).ok_or_else(|| {
                    ProcedureError::invalid(format!("{key} must be an RFC 3339 time"))
                }),
            }
        };
    let query = HistoryQuery {
        from_time_ms: time("from_time")?,
        after_time_ms: time("after_time")?,
        before_time_ms: time("before_time")?,
        until_time_ms: time("until_time")?,
        limit: int("limit", Some(1))?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        reverse,
        topic,
        after_publication: int("after_publication", None)?,
        from_publication: int("from_publication", None)?,
        before_publication: int("before_publication", None)?,
        until_publication: int("until_publication", None)?,
    };
    let events = call
        .realm
        .broker
        .read()
        .history(subscription, call.caller, &query)
        .map_err(|e| match e {
            HistoryError::NoSuchSubscription => ProcedureError::new(
                uri_err::NO_SUCH_SUBSCRIPTION,
                format!("no subscription {subscription}"),
            ),
            HistoryError::NotAuthorized => ProcedureError::new(
                uri_err::NOT_AUTHORIZED,
                "only a subscriber of the subscription may read its history",
            ),
            HistoryError::Unavailable => ProcedureError::new(
                HISTORY_UNAVAILABLE,
                "no event history is kept for this subscription",
            ),
        })?;
    // The spec's shape: `Arguments` is the list of events (so `[]` when empty).
    Ok(Payload::from_elements(wamp_proto::payload::Elements {
        args: Some(Value::List(events)),
        kwargs: None,
    }))
}
