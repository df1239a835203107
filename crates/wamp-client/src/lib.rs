//! Async WAMP v2 client for Rust applications: caller, callee, publisher and
//! subscriber over WebSocket (`ws://`) and RawSocket (`rs://`, `unix://`), with JSON,
//! MessagePack or CBOR.
//!
//! ```no_run
//! use wamp_client::{dict, Dict, Session, Value};
//!
//! # async fn demo() -> Result<(), wamp_client::Error> {
//! let session = Session::connect("ws://127.0.0.1:8080/ws", "realm1").await?;
//!
//! let mut sub = session.subscribe("com.example.topic").await?;
//! session
//!     .publish_with("com.example.topic", wamp_client::Payload::from_args(vec![Value::from(1)]),
//!                   dict! {"acknowledge" => true, "exclude_me" => false})
//!     .await?;
//! let event = sub.next().await;
//!
//! let _add = session
//!     .register_fn("com.example.add", |args: Vec<Value>, _kwargs: Dict| async move {
//!         let sum: i64 = args.iter().filter_map(Value::as_i64).sum();
//!         Ok((vec![Value::from(sum)], Dict::new()))
//!     })
//!     .await?;
//! let result = session.call("com.example.add", vec![Value::from(2), Value::from(3)], Dict::new()).await?;
//! assert_eq!(result.args, vec![Value::from(5)]);
//! session.leave().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Advanced Profile RPC
//!
//! As caller: progressive call results ([`Session::call_progressive`],
//! [`CallStream`]), progressive call invocations ([`Session::start_progressive_call`],
//! [`ProgressiveCall`]), call timeouts and caller disclosure ([`CallOptions`]), call
//! canceling ([`CallStream::cancel`], and on drop). As callee: progressive results
//! and chunked arguments ([`Invocation::progress`], [`Invocation::next_chunk`]),
//! interrupts ([`Invocation::interrupted`]), caller identification
//! ([`Invocation::caller`]), pattern-based and shared registrations
//! ([`RegisterOptions`]), registration revocation
//! ([`Registration::revocation_reason`]).
//!
//! # Advanced Profile publish and subscribe
//!
//! As publisher ([`PublishOptions`]): acknowledgement, subscriber black- and
//! whitelisting, publisher exclusion and identification, event retention, and
//! payload passthru mode ([`Session::publish_passthru`]). As subscriber
//! ([`SubscribeOptions`]): pattern-based subscriptions, retained events, event
//! details ([`Event::publisher`], [`Event::topic`], [`Event::trustlevel`],
//! [`Event::passthru_payload`], …), subscription revocation
//! ([`Subscription::revocation_reason`]). Event history
//! ([`Session::subscription_events`]) and session testaments
//! ([`Session::add_testament`]) are typed wrappers of the router's procedures.
//!
//! HELLO announces exactly the features implemented ([`CALLER_FEATURES`],
//! [`CALLEE_FEATURES`], [`PUBLISHER_FEATURES`], [`SUBSCRIBER_FEATURES`]). Other
//! options can still be passed through the `*_with` methods.
//!
//! # Authentication
//!
//! Anonymous by default; `ticket` and `wampcra` (plain, or salted with the PBKDF2
//! parameters the router's CHALLENGE carries) through
//! [`ConnectOptions::with_ticket`] and [`ConnectOptions::with_wampcra`]. A failed
//! authentication is [`Error::Abort`] with the router's reason. Secrets are kept in
//! [`Secret`], whose `Debug` form hides them.
//!
//! ```no_run
//! use wamp_client::{ConnectOptions, Session};
//!
//! # async fn demo() -> Result<(), wamp_client::Error> {
//! let options = ConnectOptions::default().with_wampcra("peter", "secret123");
//! let session = Session::connect_with("ws://127.0.0.1:8080/ws", "realm1", options).await?;
//! # Ok(())
//! # }
//! ```

pub mod auth;
mod call;
mod endpoint;
mod error;
mod meta;
mod pubsub;
mod rpc;
mod session;
mod state;
mod transport;

pub use call::{CallEvent, CallOptions, CallStream, CancelMode, ProgressiveCall};
pub use endpoint::Endpoint;
pub use error::{CloseReason, Error};
pub use meta::{EventHistoryQuery, HistoryEvent, TestamentOptions, TestamentScope};
pub use pubsub::{Event, PublishOptions, SubscribeOptions, Subscription};
pub use rpc::{
    CallResult, HandlerResult, InterruptMode, Invocation, InvocationChunk, InvokePolicy,
    MatchPolicy, RegisterOptions, Registration, RegistrationHandle,
};
pub use session::{
    ConnectOptions, PrivateKey, Secret, Session, CALLEE_FEATURES, CALLER_FEATURES, LEAVE_TIMEOUT,
    PUBLISHER_FEATURES, SUBSCRIBER_FEATURES,
};

pub use wamp_proto;
pub use wamp_proto::{dict, Dict, Message, MessageType, Payload, Serializer, Value};
