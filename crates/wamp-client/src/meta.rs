//! Pub/sub services a router offers as procedures: event history
//! (`wamp.subscription.get_events`) and session testaments
//! (`wamp.session.add_testament`, `wamp.session.flush_testaments`). See
//! [`Session::subscription_events`], [`Session::add_testament`] and
//! [`Session::flush_testaments`].
//!
//! ```no_run
//! use wamp_client::{dict, EventHistoryQuery, PublishOptions, Session, TestamentOptions, TestamentScope, Value};
//!
//! # async fn demo(session: Session, subscription: u64) -> Result<(), wamp_client::Error> {
//! let recent = session
//!     .subscription_events(subscription, EventHistoryQuery::new().limit(10).reverse(true))
//!     .await?;
//! for event in &recent {
//!     println!("{:?} at {:?}: {:?}", event.publication, event.timestamp, event.args);
//! }
//! session
//!     .add_testament(
//!         "com.example.gone",
//!         vec![Value::from(session.id())],
//!         dict! {"why" => "connection lost"},
//!         TestamentOptions::new()
//!             .scope(TestamentScope::Destroyed)
//!             .publish_options(PublishOptions::new().disclose_me(true)),
//!     )
//!     .await?;
//! // Leaving on purpose: nobody needs to hear about it.
//! session.flush_testaments(TestamentScope::Destroyed).await?;
//! session.leave().await
//! # }
//! ```
//!
//! [`Session::subscription_events`]: crate::Session::subscription_events
//! [`Session::add_testament`]: crate::Session::add_testament
//! [`Session::flush_testaments`]: crate::Session::flush_testaments

use wamp_proto::{Dict, Value};

use crate::error::Error;
use crate::pubsub::PublishOptions;

/// The event history procedure.
pub(crate) const GET_EVENTS: &str = "wamp.subscription.get_events";
/// The procedure adding a testament.
pub(crate) const ADD_TESTAMENT: &str = "wamp.session.add_testament";
/// The procedure removing testaments.
pub(crate) const FLUSH_TESTAMENTS: &str = "wamp.session.flush_testaments";

/// The keyword arguments of `wamp.subscription.get_events`: which stored events to
/// return. All filters given apply together; none returns everything the router
/// keeps.
///
/// Times are RFC 3339 strings (e.g. `2024-05-01T12:00:00.000Z`). Converts from and
/// into a [`Dict`].
///
/// ```
/// use wamp_client::{EventHistoryQuery, Value};
///
/// let query = EventHistoryQuery::new().limit(5).after_publication(1234);
/// assert_eq!(query.as_dict().get("limit"), Some(&Value::from(5u64)));
/// assert_eq!(query.as_dict().get("after_publication"), Some(&Value::from(1234u64)));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventHistoryQuery {
    dict: Dict,
}

impl EventHistoryQuery {
    /// No filter.
    pub fn new() -> EventHistoryQuery {
        EventHistoryQuery::default()
    }

    /// `limit`: at most this many events.
    pub fn limit(self, limit: u64) -> EventHistoryQuery {
        self.option("limit", limit)
    }

    /// `reverse`: newest first.
    pub fn reverse(self, reverse: bool) -> EventHistoryQuery {
        self.option("reverse", reverse)
    }

    /// `from_time`: events published at or after this time.
    pub fn from_time(self, time: impl Into<String>) -> EventHistoryQuery {
        self.option("from_time", time.into())
    }

    /// `after_time`: events published strictly after this time.
    pub fn after_time(self, time: impl Into<String>) -> EventHistoryQuery {
        self.option("after_time", time.into())
    }

    /// `before_time`: events published strictly before this time.
    pub fn before_time(self, time: impl Into<String>) -> EventHistoryQuery {
        self.option("before_time", time.into())
    }

    /// `until_time`: events published at or before this time.
    pub fn until_time(self, time: impl Into<String>) -> EventHistoryQuery {
        self.option("until_time", time.into())
    }

    /// `topic`: only events published to this topic (for pattern subscriptions).
    pub fn topic(self, topic: impl Into<String>) -> EventHistoryQuery {
        self.option("topic", topic.into())
    }

    /// `from_publication`: events from this publication on, inclusive.
    pub fn from_publication(self, publication: u64) -> EventHistoryQuery {
        self.option("from_publication", publication)
    }

    /// `after_publication`: events after this publication, exclusive.
    pub fn after_publication(self, publication: u64) -> EventHistoryQuery {
        self.option("after_publication", publication)
    }

    /// `before_publication`: events before this publication, exclusive.
    pub fn before_publication(self, publication: u64) -> EventHistoryQuery {
        self.option("before_publication", publication)
    }

    /// `until_publication`: events up to this publication, inclusive.
    pub fn until_publication(self, publication: u64) -> EventHistoryQuery {
        self.option("until_publication", publication)
    }

    /// Any other keyword argument.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<Value>) -> EventHistoryQuery {
        self.dict.insert(key.into(), value.into());
        self
    }

    /// The keyword arguments as they go on the wire.
    pub fn as_dict(&self) -> &Dict {
        &self.dict
    }

    /// The keyword arguments.
    pub fn into_dict(self) -> Dict {
        self.dict
    }
}

impl From<Dict> for EventHistoryQuery {
    fn from(dict: Dict) -> EventHistoryQuery {
        EventHistoryQuery { dict }
    }
}

impl From<EventHistoryQuery> for Dict {
    fn from(query: EventHistoryQuery) -> Dict {
        query.dict
    }
}

/// One stored event returned by
/// [`Session::subscription_events`](crate::Session::subscription_events).
///
/// The specification's entries are `{timestamp, subscription, publication,
/// details, args, kwargs}`; Crossbar.io's carry `time_ns`, `topic`, `session_id`,
/// `authid`, `authrole`, `publication`, `args` and `kwargs`. Keys that are missing
/// or of another type read as `None` or empty; [`raw`](Self::raw) has everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryEvent {
    /// `publication`: the publication ID.
    pub publication: Option<u64>,
    /// `subscription`: the subscription it was stored for.
    pub subscription: Option<u64>,
    /// `timestamp`: when it was published (RFC 3339).
    pub timestamp: Option<String>,
    /// `details`: the event's details as a subscriber would have received them.
    pub details: Dict,
    /// `args`: positional arguments.
    pub args: Vec<Value>,
    /// `kwargs`: keyword arguments.
    pub kwargs: Dict,
    /// The whole entry as received.
    pub raw: Dict,
}

impl HistoryEvent {
    /// Reads one entry.
    fn from_entry(raw: Dict) -> HistoryEvent {
        let u64_of = |key: &str| raw.get(key).and_then(Value::as_u64);
        let dict_of = |key: &str| raw.get(key).and_then(Value::as_dict).cloned();
        HistoryEvent {
            publication: u64_of("publication"),
            subscription: u64_of("subscription"),
            timestamp: raw
                .get("timestamp")
                .and_then(Value::as_str)
                .map(str::to_owned),
            details: dict_of("details").unwrap_or_default(),
            args: raw
                .get("args")
                .and_then(Value::as_list)
                .map(<[Value]>::to_vec)
                .unwrap_or_default(),
            kwargs: dict_of("kwargs").unwrap_or_default(),
            raw,
        }
    }

    /// Reads the result of `wamp.subscription.get_events`: the entries as the
    /// positional results (specification), or one list of them (what a procedure
    /// returning a list, like Crossbar.io's, produces).
    pub(crate) fn from_result(args: Vec<Value>) -> Result<Vec<HistoryEvent>, Error> {
        let entries = match <[Value; 1]>::try_from(args) {
            Ok([Value::List(list)]) => list,
            Ok([single]) => vec![single],
            Err(args) => args,
        };
        entries
            .into_iter()
            .map(|entry| match entry {
                Value::Dict(raw) => Ok(HistoryEvent::from_entry(raw)),
                other => Err(Error::Protocol(format!(
                    "wamp.subscription.get_events returned a non-dict entry: {other:?}"
                ))),
            })
            .collect()
    }
}

/// When the router publishes a testament.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TestamentScope {
    /// When the session detaches from its transport (it may resume later). Without
    /// session resumption, when it ends, before the `destroyed` ones.
    Detached,
    /// When the session ends for good (the default).
    #[default]
    Destroyed,
}

impl TestamentScope {
    /// The wire spelling: `detached` or `destroyed`.
    pub fn as_str(self) -> &'static str {
        match self {
            TestamentScope::Detached => "detached",
            TestamentScope::Destroyed => "destroyed",
        }
    }
}

/// The keyword arguments of `wamp.session.add_testament` besides the event itself:
/// the scope and the options of the eventual PUBLISH.
///
/// ```
/// use wamp_client::{PublishOptions, TestamentOptions, TestamentScope};
///
/// let options = TestamentOptions::new()
///     .scope(TestamentScope::Detached)
///     .publish_options(PublishOptions::new().retain(true));
/// assert_eq!(options.scope_value(), TestamentScope::Detached);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestamentOptions {
    scope: TestamentScope,
    publish_options: PublishOptions,
}

impl TestamentOptions {
    /// Scope `destroyed`, no publish options.
    pub fn new() -> TestamentOptions {
        TestamentOptions::default()
    }

    /// `scope`: when the testament is published.
    pub fn scope(mut self, scope: TestamentScope) -> TestamentOptions {
        self.scope = scope;
        self
    }

    /// `publish_options`: `PUBLISH.Options` for the testament's publication
    /// (exclusion and eligibility lists, `retain`, …). Routers may ignore options
    /// that make no sense here, such as `acknowledge` and `exclude_me`.
    pub fn publish_options(mut self, options: impl Into<PublishOptions>) -> TestamentOptions {
        self.publish_options = options.into();
        self
    }

    /// The scope set.
    pub fn scope_value(&self) -> TestamentScope {
        self.scope
    }

    /// The keyword arguments: `scope` always, `publish_options` unless empty.
    pub(crate) fn into_kwargs(self) -> Dict {
        let mut kwargs = Dict::new();
        kwargs.insert("scope".into(), Value::from(self.scope.as_str()));
        let publish_options = self.publish_options.into_dict();
        if !publish_options.is_empty() {
            kwargs.insert("publish_options".into(), Value::Dict(publish_options));
        }
        kwargs
    }
}

impl From<TestamentScope> for TestamentOptions {
    fn from(scope: TestamentScope) -> TestamentOptions {
        TestamentOptions::new().scope(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wamp_proto::dict;

    #[test]
    fn history_results_in_both_shapes() {
        let entry = dict! {"publication" => 7u64, "timestamp" => "2024-01-01T00:00:00Z",
        "subscription" => 3u64, "args" => vec![Value::from(1)], "kwargs" => dict! {"a" => 1},
        "details" => dict! {"topic" => "t"}};
        let spec =
            HistoryEvent::from_result(vec![Value::Dict(entry.clone()), Value::Dict(entry.clone())])
                .expect("spec shape");
        let crossbar = HistoryEvent::from_result(vec![Value::List(vec![
            Value::Dict(entry.clone()),
            Value::Dict(entry.clone()),
        ])])
        .expect("list shape");
        assert_eq!(spec, crossbar);
        assert_eq!(spec.len(), 2);
        assert_eq!(spec[0].publication, Some(7));
        assert_eq!(spec[0].subscription, Some(3));
        assert_eq!(spec[0].timestamp.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(spec[0].args, vec![Value::from(1)]);
        assert_eq!(spec[0].kwargs, dict! {"a" => 1});
        assert_eq!(spec[0].details, dict! {"topic" => "t"});
        let one = HistoryEvent::from_result(vec![Value::Dict(entry)]).expect("one");
        assert_eq!(one.len(), 1);
        assert!(HistoryEvent::from_result(Vec::new())
            .expect("none")
            .is_empty());
        assert!(HistoryEvent::from_result(vec![Value::List(Vec::new())])
            .expect("empty list")
            .is_empty());
        assert!(matches!(
            HistoryEvent::from_result(vec![Value::from(1), Value::from(2)]),
            Err(Error::Protocol(_))
        ));
        let odd = HistoryEvent::from_result(vec![Value::Dict(dict! {"publication" => "x"})])
            .expect("odd types");
        assert_eq!(odd[0].publication, None);
    }

    #[test]
    fn testament_kwargs() {
        assert_eq!(
            TestamentOptions::new().into_kwargs(),
            dict! {"scope" => "destroyed"}
        );
        assert_eq!(
            TestamentOptions::from(TestamentScope::Detached)
                .publish_options(PublishOptions::new().exclude([5u64]))
                .into_kwargs(),
            dict! {"scope" => "detached",
            "publish_options" => dict! {"exclude" => vec![Value::from(5u64)]}}
        );
    }
}
