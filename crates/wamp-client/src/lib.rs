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
//! Only the Basic Profile is implemented and announced (no authentication, no
//! progressive results, no call canceling); options for advanced features can still be
//! passed through the `*_with` methods.

mod endpoint;
mod error;
mod pubsub;
mod rpc;
mod session;
mod state;
mod transport;

pub use endpoint::Endpoint;
pub use error::{CloseReason, Error};
pub use pubsub::{Event, Subscription};
pub use rpc::{CallResult, HandlerResult, Invocation, Registration, RegistrationHandle};
pub use session::{ConnectOptions, Session, LEAVE_TIMEOUT};

pub use wamp_proto;
pub use wamp_proto::{dict, Dict, Message, MessageType, Payload, Serializer, Value};
