//! Error and close reason URIs defined by the WAMP specification.

/// Peer sent a message that violates the protocol.
pub const PROTOCOL_VIOLATION: &str = "wamp.error.protocol_violation";
/// The realm does not exist.
pub const NO_SUCH_REALM: &str = "wamp.error.no_such_realm";
/// No registration for the called procedure.
pub const NO_SUCH_PROCEDURE: &str = "wamp.error.no_such_procedure";
/// The procedure is already registered.
pub const PROCEDURE_ALREADY_EXISTS: &str = "wamp.error.procedure_already_exists";
/// Unregister of a registration the session does not hold.
pub const NO_SUCH_REGISTRATION: &str = "wamp.error.no_such_registration";
/// Unsubscribe of a subscription the session does not hold.
pub const NO_SUCH_SUBSCRIPTION: &str = "wamp.error.no_such_subscription";
/// A URI is not valid.
pub const INVALID_URI: &str = "wamp.error.invalid_uri";
/// Arguments did not match what the procedure expects.
pub const INVALID_ARGUMENT: &str = "wamp.error.invalid_argument";
/// A call was canceled (also: its callee went away).
pub const CANCELED: &str = "wamp.error.canceled";
/// The action is not allowed for this session.
pub const NOT_AUTHORIZED: &str = "wamp.error.not_authorized";
/// The router could not deliver within transport size limits.
pub const PAYLOAD_SIZE_EXCEEDED: &str = "wamp.error.payload_size_exceeded";
/// A named session does not exist.
pub const NO_SUCH_SESSION: &str = "wamp.error.no_such_session";

/// GOODBYE reason: the router is shutting down.
pub const CLOSE_SYSTEM_SHUTDOWN: &str = "wamp.close.system_shutdown";
/// GOODBYE reason: the realm is being closed.
pub const CLOSE_REALM: &str = "wamp.close.close_realm";
/// GOODBYE reply reason.
pub const CLOSE_GOODBYE_AND_OUT: &str = "wamp.close.goodbye_and_out";
/// GOODBYE reason used by Autobahn clients for a normal close.
pub const CLOSE_NORMAL: &str = "wamp.close.normal";
/// GOODBYE reason: the router killed the session.
pub const CLOSE_KILLED: &str = "wamp.close.killed";
