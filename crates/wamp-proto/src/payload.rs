//! Application payloads (`Arguments` and `ArgumentsKw`) that a router forwards untouched.
//!
//! A [`Payload`] received from the wire keeps the sender's encoded bytes of the
//! trailing payload elements. Encoding it again with the same serializer copies those
//! bytes; encoding it with another serializer decodes and re-encodes it once, and the
//! result is cached inside the payload, so a message fanned out to many receivers is
//! transcoded at most once per serializer. Cloning a payload is a reference-count bump.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::codec::{self, DecodeError, EncodeError, Serializer};
use crate::value::{Dict, Value};

/// The trailing elements of a message: `Arguments` and/or `ArgumentsKw`.
#[derive(Clone, Default)]
pub struct Payload {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    origin: Origin,
    /// Encoded trailing elements per serializer (indexed by [`Serializer::index`]).
    encoded: [OnceLock<Result<Bytes, EncodeError>>; 3],
}

enum Origin {
    /// Decoded from the wire in this serializer: `raw` holds `count` elements (1 or 2).
    /// Kept here rather than in `encoded`, so that building a payload for every
    /// routed message costs no cache initialisation.
    Wire {
        serializer: Serializer,
        raw: Bytes,
        count: u8,
    },
    /// Built from values by the application or the router.
    Values(Elements),
}

/// The decoded payload elements, exactly as they were on the wire.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Elements {
    /// The `Arguments` element: normally a list; a binary or string element in
    /// payload-transparency mode (Autobahn's end-to-end encryption).
    pub args: Option<Value>,
    /// The `ArgumentsKw` element.
    pub kwargs: Option<Dict>,
}

impl Elements {
    fn count(&self) -> u8 {
        match (&self.args, &self.kwargs) {
            (_, Some(_)) => 2,
            (Some(_), None) => 1,
            (None, None) => 0,
        }
    }
}

impl Payload {
    /// No arguments at all (the message's short form).
    pub fn empty() -> Self {
        Payload { inner: None }
    }

    /// Positional and keyword arguments; empty ones are left out on the wire as the
    /// spec recommends (an empty `Arguments` is still sent when `kwargs` is not empty).
    pub fn new(args: Vec<Value>, kwargs: Dict) -> Self {
        match (args.is_empty(), kwargs.is_empty()) {
            (true, true) => Payload::empty(),
            (_, false) => Payload::from_elements(Elements {
                args: Some(Value::List(args)),
                kwargs: Some(kwargs),
            }),
            (false, true) => Payload::from_elements(Elements {
                args: Some(Value::List(args)),
                kwargs: None,
            }),
        }
    }

    /// Positional arguments only.
    pub fn from_args(args: Vec<Value>) -> Self {
        Payload::new(args, Dict::new())
    }

    /// A single opaque binary element in place of `Arguments` (payload transparency).
    pub fn opaque(bytes: Bytes) -> Self {
        Payload::from_elements(Elements {
            args: Some(Value::Bytes(bytes)),
            kwargs: None,
        })
    }

    /// Exactly these elements, kept as given (an empty `Arguments` list is sent).
    pub fn from_elements(elements: Elements) -> Self {
        if elements.count() == 0 {
            return Payload::empty();
        }
        Payload {
            inner: Some(Arc::new(Inner {
                origin: Origin::Values(elements),
                encoded: Default::default(),
            })),
        }
    }

    /// A payload received on the wire: `raw` holds `count` encoded trailing elements
    /// (for JSON, the elements with the commas between them, without brackets).
    pub(crate) fn from_wire(serializer: Serializer, raw: Bytes, count: u8) -> Self {
        if count == 0 {
            return Payload::empty();
        }
        Payload {
            inner: Some(Arc::new(Inner {
                origin: Origin::Wire {
                    serializer,
                    raw,
                    count,
                },
                encoded: Default::default(),
            })),
        }
    }

    /// Whether there are no payload elements at all.
    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// How many trailing elements the payload has on the wire (0, 1 or 2).
    pub fn element_count(&self) -> u8 {
        match &self.inner {
            None => 0,
            Some(inner) => match &inner.origin {
                Origin::Wire { count, .. } => *count,
                Origin::Values(e) => e.count(),
            },
        }
    }

    /// The serializer the payload arrived in, if it came from the wire.
    pub fn wire_serializer(&self) -> Option<Serializer> {
        match self.inner.as_deref()?.origin {
            Origin::Wire { serializer, .. } => Some(serializer),
            Origin::Values(_) => None,
        }
    }

    /// The encoded trailing elements for `serializer` (transcoded and cached if needed).
    pub fn encoded(&self, serializer: Serializer) -> Result<(Bytes, u8), EncodeError> {
        let Some(inner) = &self.inner else {
            return Ok((Bytes::new(), 0));
        };
        let count = self.element_count();
        if let Origin::Wire {
            serializer: from,
            raw,
            ..
        } = &inner.origin
        {
            if *from == serializer {
                return Ok((raw.clone(), count));
            }
        }
        let slot = &inner.encoded[serializer.index()];
        let result = slot.get_or_init(|| {
            let elements = match &inner.origin {
                Origin::Values(e) => e.clone(),
                Origin::Wire { .. } => self.elements().map_err(EncodeError::Transcode)?,
            };
            Ok(codec::encode_elements(serializer, &elements))
        });
        result.clone().map(|b| (b, count))
    }

    /// Decodes the payload elements.
    pub fn elements(&self) -> Result<Elements, DecodeError> {
        let Some(inner) = &self.inner else {
            return Ok(Elements::default());
        };
        match &inner.origin {
            Origin::Values(e) => Ok(e.clone()),
            Origin::Wire {
                serializer,
                raw,
                count,
            } => codec::decode_elements(*serializer, raw, *count),
        }
    }

    /// The positional arguments (empty if absent). An opaque element is returned as
    /// the only item.
    pub fn args(&self) -> Result<Vec<Value>, DecodeError> {
        Ok(match self.elements()?.args {
            None => Vec::new(),
            Some(Value::List(l)) => l,
            Some(other) => vec![other],
        })
    }

    /// The keyword arguments (empty if absent).
    pub fn kwargs(&self) -> Result<Dict, DecodeError> {
        Ok(self.elements()?.kwargs.unwrap_or_default())
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.elements() {
            Ok(e) => f
                .debug_struct("Payload")
                .field("args", &e.args)
                .field("kwargs", &e.kwargs)
                .finish(),
            Err(err) => write!(f, "Payload(<undecodable: {err}>)"),
        }
    }
}

/// Payloads compare by their decoded elements.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        match (self.elements(), other.elements()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}
