//! Every WAMP message, with typed envelope fields, and its wire layout.
//!
//! Parsing is strict about the envelope (element count and types, known option keys
//! with values of the right type) and leaves the payload undecoded. Unknown option
//! keys are kept and ignored, as the spec requires.

use bytes::BytesMut;

use crate::codec::{DecodeError, EncodeError, Kind, RawMessage, Serializer, Writer};
use crate::id::MAX_ID;
use crate::payload::Payload;
use crate::value::{Dict, Value};

/// A WAMP ID (session, request, publication, subscription, registration).
pub type Id = u64;

/// A WAMP message type code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum MessageType {
    Hello = 1,
    Welcome = 2,
    Abort = 3,
    Challenge = 4,
    Authenticate = 5,
    Goodbye = 6,
    Error = 8,
    Publish = 16,
    Published = 17,
    Subscribe = 32,
    Subscribed = 33,
    Unsubscribe = 34,
    Unsubscribed = 35,
    Event = 36,
    Call = 48,
    Cancel = 49,
    Result = 50,
    Register = 64,
    Registered = 65,
    Unregister = 66,
    Unregistered = 67,
    Invocation = 68,
    Interrupt = 69,
    Yield = 70,
    EventReceived = 337,
}

impl MessageType {
    /// The message type for a code, if known.
    pub fn from_code(code: u64) -> Option<Self> {
        use MessageType::*;
        Some(match code {
            1 => Hello,
            2 => Welcome,
            3 => Abort,
            4 => Challenge,
            5 => Authenticate,
            6 => Goodbye,
            8 => Error,
            16 => Publish,
            17 => Published,
            32 => Subscribe,
            33 => Subscribed,
            34 => Unsubscribe,
            35 => Unsubscribed,
            36 => Event,
            48 => Call,
            49 => Cancel,
            50 => Result,
            64 => Register,
            65 => Registered,
            66 => Unregister,
            67 => Unregistered,
            68 => Invocation,
            69 => Interrupt,
            70 => Yield,
            337 => EventReceived,
            _ => return None,
        })
    }

    /// The numeric code.
    pub fn code(self) -> u64 {
        self as u64
    }

    /// The upper-case name, e.g. `PUBLISH`.
    pub fn name(self) -> &'static str {
        use MessageType::*;
        match self {
            Hello => "HELLO",
            Welcome => "WELCOME",
            Abort => "ABORT",
            Challenge => "CHALLENGE",
            Authenticate => "AUTHENTICATE",
            Goodbye => "GOODBYE",
            Error => "ERROR",
            Publish => "PUBLISH",
            Published => "PUBLISHED",
            Subscribe => "SUBSCRIBE",
            Subscribed => "SUBSCRIBED",
            Unsubscribe => "UNSUBSCRIBE",
            Unsubscribed => "UNSUBSCRIBED",
            Event => "EVENT",
            Call => "CALL",
            Cancel => "CANCEL",
            Result => "RESULT",
            Register => "REGISTER",
            Registered => "REGISTERED",
            Unregister => "UNREGISTER",
            Unregistered => "UNREGISTERED",
            Invocation => "INVOCATION",
            Interrupt => "INTERRUPT",
            Yield => "YIELD",
            EventReceived => "EVENT_RECEIVED",
        }
    }

    /// Whether ERROR may name this type as the request it answers.
    pub fn is_error_request_type(self) -> bool {
        use MessageType::*;
        matches!(
            self,
            Subscribe | Unsubscribe | Publish | Register | Unregister | Call | Invocation
        )
    }
}

/// A WAMP message.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Message {
    Hello {
        realm: String,
        details: Dict,
    },
    Welcome {
        session: Id,
        details: Dict,
    },
    Abort {
        details: Dict,
        reason: String,
        payload: Payload,
    },
    Challenge {
        method: String,
        extra: Dict,
    },
    Authenticate {
        signature: String,
        extra: Dict,
    },
    Goodbye {
        details: Dict,
        reason: String,
    },
    Error {
        request_type: MessageType,
        request: Id,
        details: Dict,
        error: String,
        payload: Payload,
    },
    Publish {
        request: Id,
        options: Dict,
        topic: String,
        payload: Payload,
    },
    Published {
        request: Id,
        publication: Id,
    },
    Subscribe {
        request: Id,
        options: Dict,
        topic: String,
    },
    Subscribed {
        request: Id,
        subscription: Id,
    },
    /// `options` is Autobahn's optional fourth element (empty: not sent).
    Unsubscribe {
        request: Id,
        subscription: Id,
        options: Dict,
    },
    /// `details` is present in the revocation form (`request` 0).
    Unsubscribed {
        request: Id,
        details: Option<Dict>,
    },
    Event {
        subscription: Id,
        publication: Id,
        details: Dict,
        payload: Payload,
    },
    Call {
        request: Id,
        options: Dict,
        procedure: String,
        payload: Payload,
    },
    Cancel {
        request: Id,
        options: Dict,
    },
    Result {
        request: Id,
        details: Dict,
        payload: Payload,
    },
    Register {
        request: Id,
        options: Dict,
        procedure: String,
    },
    Registered {
        request: Id,
        registration: Id,
    },
    /// `options` is Autobahn's optional fourth element (empty: not sent).
    Unregister {
        request: Id,
        registration: Id,
        options: Dict,
    },
    /// `details` is present in the revocation form (`request` 0).
    Unregistered {
        request: Id,
        details: Option<Dict>,
    },
    Invocation {
        request: Id,
        registration: Id,
        details: Dict,
        payload: Payload,
    },
    Interrupt {
        request: Id,
        options: Dict,
    },
    Yield {
        request: Id,
        options: Dict,
        payload: Payload,
    },
    /// Autobahn's acknowledged event delivery (code 337).
    EventReceived {
        publication: Id,
        payload: Payload,
    },
}

impl Message {
    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        use MessageType as T;
        match self {
            Message::Hello { .. } => T::Hello,
            Message::Welcome { .. } => T::Welcome,
            Message::Abort { .. } => T::Abort,
            Message::Challenge { .. } => T::Challenge,
            Message::Authenticate { .. } => T::Authenticate,
            Message::Goodbye { .. } => T::Goodbye,
            Message::Error { .. } => T::Error,
            Message::Publish { .. } => T::Publish,
            Message::Published { .. } => T::Published,
            Message::Subscribe { .. } => T::Subscribe,
            Message::Subscribed { .. } => T::Subscribed,
            Message::Unsubscribe { .. } => T::Unsubscribe,
            Message::Unsubscribed { .. } => T::Unsubscribed,
            Message::Event { .. } => T::Event,
            Message::Call { .. } => T::Call,
            Message::Cancel { .. } => T::Cancel,
            Message::Result { .. } => T::Result,
            Message::Register { .. } => T::Register,
            Message::Registered { .. } => T::Registered,
            Message::Unregister { .. } => T::Unregister,
            Message::Unregistered { .. } => T::Unregistered,
            Message::Invocation { .. } => T::Invocation,
            Message::Interrupt { .. } => T::Interrupt,
            Message::Yield { .. } => T::Yield,
            Message::EventReceived { .. } => T::EventReceived,
        }
    }

    /// An ABORT with a `message` detail and no payload.
    pub fn abort(reason: &str, message: &str) -> Message {
        let mut details = Dict::new();
        if !message.is_empty() {
            details.insert("message".into(), Value::from(message));
        }
        Message::Abort {
            details,
            reason: reason.into(),
            payload: Payload::empty(),
        }
    }

    /// A GOODBYE with the given reason and no details.
    pub fn goodbye(reason: &str) -> Message {
        Message::Goodbye {
            details: Dict::new(),
            reason: reason.into(),
        }
    }

    /// An ERROR answering `request` of type `request_type`.
    pub fn error(request_type: MessageType, request: Id, error: &str, payload: Payload) -> Message {
        Message::Error {
            request_type,
            request,
            details: Dict::new(),
            error: error.into(),
            payload,
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing

struct Fields<'a, 'b> {
    raw: &'b RawMessage<'a>,
    name: &'static str,
}

impl Fields<'_, '_> {
    fn field_error(&self, field: &'static str, expected: &'static str) -> DecodeError {
        DecodeError::FieldType {
            message: self.name,
            field,
            expected,
        }
    }

    fn id(&self, index: usize, field: &'static str) -> Result<Id, DecodeError> {
        match self.raw.value(index)?.as_u64() {
            Some(id) if id <= MAX_ID => Ok(id),
            _ => Err(self.field_error(field, "an integer in [0, 2^53]")),
        }
    }

    fn string(&self, index: usize, field: &'static str) -> Result<String, DecodeError> {
        match self.raw.value(index)? {
            Value::Str(s) => Ok(s),
            _ => Err(self.field_error(field, "a string")),
        }
    }

    fn dict(&self, index: usize, field: &'static str) -> Result<Dict, DecodeError> {
        match self.raw.value(index)? {
            Value::Dict(d) => Ok(d),
            _ => Err(self.field_error(field, "a dict")),
        }
    }

    /// A dict of options/details whose known keys are type-checked.
    fn options(&self, index: usize, field: &'static str) -> Result<Dict, DecodeError> {
        let d = self.dict(index, field)?;
        for (k, v) in &d {
            check_option(self.name, k, v)?;
        }
        Ok(d)
    }

    /// The trailing payload from element `start`, given the dict that governs it.
    fn payload(&self, start: usize, options: &Dict) -> Result<Payload, DecodeError> {
        let count = self.raw.len().saturating_sub(start);
        if count == 0 {
            return Ok(Payload::empty());
        }
        let transparent = options.contains_key("enc_algo") || options.contains_key("ppt_scheme");
        match self.raw.kind(start) {
            Kind::List => {}
            Kind::Bytes | Kind::Str if transparent => {}
            _ => return Err(self.field_error("Arguments", "a list")),
        }
        if count == 2 && self.raw.kind(start + 1) != Kind::Dict {
            return Err(self.field_error("ArgumentsKw", "a dict"));
        }
        Ok(Payload::from_wire(
            self.raw.serializer,
            self.raw.tail(start),
            count as u8,
        ))
    }
}

pub(crate) fn parse(raw: &RawMessage<'_>) -> Result<Message, DecodeError> {
    if raw.len() == 0 {
        return Err(DecodeError::NotAList);
    }
    let code = raw.value(0)?.as_u64().ok_or(DecodeError::FieldType {
        message: "message",
        field: "type",
        expected: "an integer",
    })?;
    let ty = MessageType::from_code(code).ok_or(DecodeError::UnknownType(code))?;
    let f = Fields {
        raw,
        name: ty.name(),
    };
    let len = raw.len();
    let len_ok = |min: usize, max: usize| -> Result<(), DecodeError> {
        if (min..=max).contains(&len) {
            Ok(())
        } else {
            Err(DecodeError::WrongLength {
                message: ty.name(),
                len,
            })
        }
    };
    use MessageType as T;
    Ok(match ty {
        T::Hello => {
            len_ok(3, 3)?;
            Message::Hello {
                realm: f.string(1, "Realm")?,
                details: f.dict(2, "Details")?,
            }
        }
        T::Welcome => {
            len_ok(3, 3)?;
            Message::Welcome {
                session: f.id(1, "Session")?,
                details: f.dict(2, "Details")?,
            }
        }
        T::Abort => {
            len_ok(3, 5)?;
            let details = f.dict(1, "Details")?;
            Message::Abort {
                reason: f.string(2, "Reason")?,
                payload: f.payload(3, &details)?,
                details,
            }
        }
        T::Challenge => {
            len_ok(3, 3)?;
            Message::Challenge {
                method: f.string(1, "AuthMethod")?,
                extra: f.dict(2, "Extra")?,
            }
        }
        T::Authenticate => {
            len_ok(3, 3)?;
            Message::Authenticate {
                signature: f.string(1, "Signature")?,
                extra: f.dict(2, "Extra")?,
            }
        }
        T::Goodbye => {
            len_ok(3, 3)?;
            Message::Goodbye {
                details: f.dict(1, "Details")?,
                reason: f.string(2, "Reason")?,
            }
        }
        T::Error => {
            len_ok(5, 7)?;
            let request_type = raw
                .value(1)?
                .as_u64()
                .and_then(MessageType::from_code)
                .filter(|t| t.is_error_request_type())
                .ok_or(f.field_error("REQUEST.Type", "a request message type"))?;
            let details = f.options(3, "Details")?;
            Message::Error {
                request_type,
                request: f.id(2, "REQUEST.Request")?,
                error: f.string(4, "Error")?,
                payload: f.payload(5, &details)?,
                details,
            }
        }
        T::Publish => {
            len_ok(4, 6)?;
            let options = f.options(2, "Options")?;
            Message::Publish {
                request: f.id(1, "Request")?,
                topic: f.string(3, "Topic")?,
                payload: f.payload(4, &options)?,
                options,
            }
        }
        T::Published => {
            len_ok(3, 3)?;
            Message::Published {
                request: f.id(1, "Request")?,
                publication: f.id(2, "Publication")?,
            }
        }
        T::Subscribe => {
            len_ok(4, 4)?;
            Message::Subscribe {
                request: f.id(1, "Request")?,
                options: f.options(2, "Options")?,
                topic: f.string(3, "Topic")?,
            }
        }
        T::Subscribed => {
            len_ok(3, 3)?;
            Message::Subscribed {
                request: f.id(1, "Request")?,
                subscription: f.id(2, "Subscription")?,
            }
        }
        T::Unsubscribe => {
            len_ok(3, 4)?;
            Message::Unsubscribe {
                request: f.id(1, "Request")?,
                subscription: f.id(2, "Subscription")?,
                options: if len == 4 {
                    f.options(3, "Options")?
                } else {
                    Dict::new()
                },
            }
        }
        T::Unsubscribed => {
            len_ok(2, 3)?;
            Message::Unsubscribed {
                request: f.id(1, "Request")?,
                details: if len == 3 {
                    Some(f.options(2, "Details")?)
                } else {
                    None
                },
            }
        }
        T::Event => {
            len_ok(4, 6)?;
            let details = f.options(3, "Details")?;
            Message::Event {
                subscription: f.id(1, "Subscription")?,
                publication: f.id(2, "Publication")?,
                payload: f.payload(4, &details)?,
                details,
            }
        }
        T::Call => {
            len_ok(4, 6)?;
            let options = f.options(2, "Options")?;
            Message::Call {
                request: f.id(1, "Request")?,
                procedure: f.string(3, "Procedure")?,
                payload: f.payload(4, &options)?,
                options,
            }
        }
        T::Cancel => {
            len_ok(3, 3)?;
            Message::Cancel {
                request: f.id(1, "Request")?,
                options: f.options(2, "Options")?,
            }
        }
        T::Result => {
            len_ok(3, 5)?;
            let details = f.options(2, "Details")?;
            Message::Result {
                request: f.id(1, "Request")?,
                payload: f.payload(3, &details)?,
                details,
            }
        }
        T::Register => {
            len_ok(4, 4)?;
            Message::Register {
                request: f.id(1, "Request")?,
                options: f.options(2, "Options")?,
                procedure: f.string(3, "Procedure")?,
            }
        }
        T::Registered => {
            len_ok(3, 3)?;
            Message::Registered {
                request: f.id(1, "Request")?,
                registration: f.id(2, "Registration")?,
            }
        }
        T::Unregister => {
            len_ok(3, 4)?;
            Message::Unregister {
                request: f.id(1, "Request")?,
                registration: f.id(2, "Registration")?,
                options: if len == 4 {
                    f.options(3, "Options")?
                } else {
                    Dict::new()
                },
            }
        }
        T::Unregistered => {
            len_ok(2, 3)?;
            Message::Unregistered {
                request: f.id(1, "Request")?,
                details: if len == 3 {
                    Some(f.options(2, "Details")?)
                } else {
                    None
                },
            }
        }
        T::Invocation => {
            len_ok(4, 6)?;
            let details = f.options(3, "Details")?;
            Message::Invocation {
                request: f.id(1, "Request")?,
                registration: f.id(2, "Registration")?,
                payload: f.payload(4, &details)?,
                details,
            }
        }
        T::Interrupt => {
            len_ok(3, 3)?;
            Message::Interrupt {
                request: f.id(1, "Request")?,
                options: f.options(2, "Options")?,
            }
        }
        T::Yield => {
            len_ok(3, 5)?;
            let options = f.options(2, "Options")?;
            Message::Yield {
                request: f.id(1, "Request")?,
                payload: f.payload(3, &options)?,
                options,
            }
        }
        T::EventReceived => {
            len_ok(2, 4)?;
            Message::EventReceived {
                publication: f.id(1, "Publication")?,
                payload: f.payload(2, &Dict::new())?,
            }
        }
    })
}

/// Type-checks a known option/detail key; unknown keys pass.
fn check_option(message: &'static str, key: &str, v: &Value) -> Result<(), DecodeError> {
    let is_id = |v: &Value| v.as_u64().is_some_and(|id| id <= MAX_ID);
    let is_str = |v: &Value| v.as_str().is_some();
    let (valid, problem) = match key {
        "acknowledge"
        | "exclude_me"
        | "disclose_me"
        | "retain"
        | "get_retained"
        | "receive_progress"
        | "progress"
        | "retained"
        | "x_acknowledged_delivery"
        | "force_reregister"
        | "disclose_caller"
        | "forward_timeout" => (v.as_bool().is_some(), "must be a bool"),
        "exclude" | "eligible" => (
            v.as_list().is_some_and(|l| l.iter().all(is_id)),
            "must be a list of session ids",
        ),
        "exclude_authid" | "exclude_authrole" | "eligible_authid" | "eligible_authrole" => (
            v.as_list().is_some_and(|l| l.iter().all(is_str)),
            "must be a list of strings",
        ),
        "publisher" | "caller" | "callee" | "registration" | "subscription" => {
            (is_id(v), "must be an id")
        }
        "publisher_authid" | "publisher_authrole" | "caller_authid" | "caller_authrole"
        | "callee_authid" | "callee_authrole" | "topic" | "procedure" | "transaction_hash"
        | "enc_serializer" | "enc_key" | "ppt_scheme" | "ppt_serializer" | "ppt_cipher"
        | "ppt_keyid" | "rkey" | "nkey" | "reason" => (is_str(v), "must be a string"),
        // For REGISTER, unknown policy names are the dealer's to refuse (with an
        // ERROR `wamp.error.invalid_argument`, not by ending the session).
        "match" | "invoke" if message == "REGISTER" => (is_str(v), "must be a string"),
        "match" => (
            matches!(v.as_str(), Some("exact" | "prefix" | "wildcard")),
            "must be exact, prefix or wildcard",
        ),
        "invoke" => (
            matches!(
                v.as_str(),
                Some("single" | "roundrobin" | "random" | "first" | "last")
            ),
            "must be single, roundrobin, random, first or last",
        ),
        "mode" => (
            matches!(v.as_str(), Some("skip" | "kill" | "killnowait")),
            "must be skip, kill or killnowait",
        ),
        "timeout" | "trustlevel" => (v.as_u64().is_some(), "must be a non-negative integer"),
        "concurrency" => (
            v.as_u64().is_some_and(|n| n >= 1),
            "must be a positive integer",
        ),
        "forward_for" => (
            v.as_list().is_some_and(|hops| {
                hops.iter().all(|hop| {
                    hop.as_dict().is_some_and(|h| {
                        h.get("session").is_some_and(is_id)
                            && h.get("authid").is_some_and(is_str)
                            && h.get("authrole").is_some_and(is_str)
                    })
                })
            }),
            "must be a list of {session, authid, authrole}",
        ),
        "enc_algo" => (
            v.as_str()
                .is_some_and(|a| matches!(a, "cryptobox" | "mqtt" | "xbr") || a.starts_with("x_")),
            "must be cryptobox, mqtt, xbr or x_*",
        ),
        _ => (true, ""),
    };
    if valid {
        Ok(())
    } else {
        Err(DecodeError::InvalidOption {
            message,
            key: key.to_owned(),
            problem,
        })
    }
}

// ---------------------------------------------------------------------------
// Writing

pub(crate) fn write(
    message: &Message,
    serializer: Serializer,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let code = message.message_type().code();
    // Messages with a payload: resolve the encoded tail first (may transcode).
    let (tail, tail_count) = match message {
        Message::Abort { payload, .. }
        | Message::Error { payload, .. }
        | Message::Publish { payload, .. }
        | Message::Event { payload, .. }
        | Message::Call { payload, .. }
        | Message::Result { payload, .. }
        | Message::Invocation { payload, .. }
        | Message::Yield { payload, .. }
        | Message::EventReceived { payload, .. } => payload.encoded(serializer)?,
        _ => (bytes::Bytes::new(), 0),
    };
    let tail_count = usize::from(tail_count);
    fn start(serializer: Serializer, out: &mut BytesMut, len: usize, code: u64) -> Writer<'_> {
        let mut w = Writer::begin(serializer, out, len);
        w.uint(code);
        w
    }
    let begin = |out, envelope: usize| start(serializer, out, envelope + tail_count, code);
    match message {
        Message::Hello { realm, details } => {
            let mut w = begin(out, 3);
            w.str(realm);
            w.dict(details);
            w.end();
        }
        Message::Welcome { session, details } => {
            let mut w = begin(out, 3);
            w.uint(*session);
            w.dict(details);
            w.end();
        }
        Message::Abort {
            details, reason, ..
        } => {
            let mut w = begin(out, 3);
            w.dict(details);
            w.str(reason);
            w.raw_tail(&tail);
            w.end();
        }
        Message::Challenge { method, extra } => {
            let mut w = begin(out, 3);
            w.str(method);
            w.dict(extra);
            w.end();
        }
        Message::Authenticate { signature, extra } => {
            let mut w = begin(out, 3);
            w.str(signature);
            w.dict(extra);
            w.end();
        }
        Message::Goodbye { details, reason } => {
            let mut w = begin(out, 3);
            w.dict(details);
            w.str(reason);
            w.end();
        }
        Message::Error {
            request_type,
            request,
            details,
            error,
            ..
        } => {
            let mut w = begin(out, 5);
            w.uint(request_type.code());
            w.uint(*request);
            w.dict(details);
            w.str(error);
            w.raw_tail(&tail);
            w.end();
        }
        Message::Publish {
            request,
            options,
            topic,
            ..
        }
        | Message::Call {
            request,
            options,
            procedure: topic,
            ..
        } => {
            let mut w = begin(out, 4);
            w.uint(*request);
            w.dict(options);
            w.str(topic);
            w.raw_tail(&tail);
            w.end();
        }
        Message::Subscribe {
            request,
            options,
            topic,
        }
        | Message::Register {
            request,
            options,
            procedure: topic,
        } => {
            let mut w = begin(out, 4);
            w.uint(*request);
            w.dict(options);
            w.str(topic);
            w.end();
        }
        Message::Published {
            request,
            publication: id,
        }
        | Message::Subscribed {
            request,
            subscription: id,
        }
        | Message::Registered {
            request,
            registration: id,
        } => {
            let mut w = begin(out, 3);
            w.uint(*request);
            w.uint(*id);
            w.end();
        }
        Message::Unsubscribe {
            request,
            subscription: id,
            options,
        }
        | Message::Unregister {
            request,
            registration: id,
            options,
        } => {
            let mut w = begin(out, if options.is_empty() { 3 } else { 4 });
            w.uint(*request);
            w.uint(*id);
            if !options.is_empty() {
                w.dict(options);
            }
            w.end();
        }
        Message::Unsubscribed { request, details } | Message::Unregistered { request, details } => {
            let mut w = begin(out, if details.is_some() { 3 } else { 2 });
            w.uint(*request);
            if let Some(d) = details {
                w.dict(d);
            }
            w.end();
        }
        Message::Event {
            subscription: a,
            publication: b,
            details,
            ..
        }
        | Message::Invocation {
            request: a,
            registration: b,
            details,
            ..
        } => {
            let mut w = begin(out, 4);
            w.uint(*a);
            w.uint(*b);
            w.dict(details);
            w.raw_tail(&tail);
            w.end();
        }
        Message::Cancel { request, options } | Message::Interrupt { request, options } => {
            let mut w = begin(out, 3);
            w.uint(*request);
            w.dict(options);
            w.end();
        }
        Message::Result {
            request, details, ..
        }
        | Message::Yield {
            request,
            options: details,
            ..
        } => {
            let mut w = begin(out, 3);
            w.uint(*request);
            w.dict(details);
            w.raw_tail(&tail);
            w.end();
        }
        Message::EventReceived { publication, .. } => {
            let mut w = begin(out, 2);
            w.uint(*publication);
            w.raw_tail(&tail);
            w.end();
        }
    }
    Ok(())
}
