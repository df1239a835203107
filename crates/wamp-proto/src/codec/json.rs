//! JSON: serde_json for parsing and writing values; the message's elements are
//! found (and the whole text validated) by [`json_scan`](super::json_scan), so
//! payload bytes can be sliced without a copy.

use std::ops::Range;

use bytes::{BufMut, BytesMut};

use super::{DecodeError, Kind};
use crate::value::{Dict, Value};

fn syntax(e: serde_json::Error) -> DecodeError {
    if e.to_string().contains("recursion limit") {
        DecodeError::TooDeep
    } else {
        DecodeError::Syntax(format!("json: {e}"))
    }
}

pub(super) fn split(bytes: &[u8]) -> Result<Vec<Range<usize>>, DecodeError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => {}
        Some(_) => {
            // Valid JSON that is not a list is a structural error, anything else syntax.
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                    Ok(_) => DecodeError::NotAList,
                    Err(e) => syntax(e),
                },
            );
        }
        None => return Err(DecodeError::Syntax("json: empty input".into())),
    }
    super::json_scan::split_array(bytes)
}

pub(super) fn decode_value(bytes: &[u8]) -> Result<Value, DecodeError> {
    match decode_simple(bytes) {
        Some(value) => Ok(value),
        None => serde_json::from_slice(bytes).map_err(syntax),
    }
}

/// The shapes most envelope fields take — a plain non-negative integer (type codes,
/// ids), `{}`, an ASCII string without escapes (URIs) — decoded without the general
/// parser. `None` for anything else, which then goes through serde_json.
fn decode_simple(bytes: &[u8]) -> Option<Value> {
    match bytes {
        [b'{', b'}'] => Some(Value::Dict(Dict::new())),
        [b'0'] => Some(Value::from_u64(0)),
        // Up to 19 digits always fits in a u64.
        [b'1'..=b'9', ..] if bytes.len() <= 19 && bytes.iter().all(u8::is_ascii_digit) => {
            let n = bytes.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            Some(Value::from_u64(n))
        }
        [b'"', inner @ .., b'"'] if super::json_scan::plain_run(inner) == inner.len() => {
            std::str::from_utf8(inner)
                .ok()
                .map(|s| Value::Str(s.to_owned()))
        }
        _ => None,
    }
}

/// Decodes comma-separated elements (a payload tail) into values.
pub(super) fn decode_sequence(raw: &[u8]) -> Result<Vec<Value>, DecodeError> {
    let mut wrapped = Vec::with_capacity(raw.len() + 2);
    wrapped.push(b'[');
    wrapped.extend_from_slice(raw);
    wrapped.push(b']');
    serde_json::from_slice(&wrapped).map_err(syntax)
}

pub(super) fn peek_kind(raw: &[u8]) -> Kind {
    let trimmed = match raw.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) => &raw[i..],
        None => return Kind::Other,
    };
    match trimmed.first() {
        Some(b'[') => Kind::List,
        Some(b'{') => Kind::Dict,
        Some(b'"') if trimmed.starts_with(b"\"\\u0000") => Kind::Bytes,
        Some(b'"') => Kind::Str,
        _ => Kind::Other,
    }
}

pub(super) fn write_value(out: &mut BytesMut, value: &Value) {
    // Writing to a BytesMut cannot fail and Value always serializes.
    let _ = serde_json::to_writer(out.writer(), value);
}

pub(super) fn write_dict(out: &mut BytesMut, dict: &Dict) {
    let _ = serde_json::to_writer(out.writer(), dict);
}

pub(super) fn write_str(out: &mut BytesMut, s: &str) {
    let _ = serde_json::to_writer(out.writer(), s);
}

pub(super) fn write_u64(out: &mut BytesMut, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_shapes_decode_as_serde_json_does() {
        let cases: &[&[u8]] = &[
            b"0",
            b"7",
            b"9007199254740992",
            b"1234567890123456789",
            b"12345678901234567890",
            b"{}",
            b"\"com.example.topic\"",
            b"\"\"",
            b"\"caf\xc3\xa9\"",
            b"\"with \\\"escape\\\"\"",
            b"\"\\u0000AAEC\"",
            b"-1",
            b"1.5",
            b"1e3",
            b"{\"a\":1}",
            b"[]",
        ];
        for case in cases {
            let general: Value = serde_json::from_slice(case).expect("valid json");
            assert_eq!(
                decode_value(case).expect("decodes"),
                general,
                "{}",
                String::from_utf8_lossy(case)
            );
        }
        // Malformed input is refused by both paths.
        for bad in [&b"\"\xff\""[..], b"\"tab\there\"", b"01"] {
            assert!(
                decode_value(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn split_borrows_element_ranges() {
        let text = br#"[48, 1, {"a": [1,2]}, "proc", [1, "x"], {"k": null}]"#;
        let ranges = split(text).expect("split");
        let parts: Vec<&str> = ranges
            .iter()
            .map(|r| std::str::from_utf8(&text[r.clone()]).expect("utf8"))
            .collect();
        assert_eq!(
            parts,
            vec![
                "48",
                "1",
                r#"{"a": [1,2]}"#,
                r#""proc""#,
                r#"[1, "x"]"#,
                r#"{"k": null}"#
            ]
        );
    }

    #[test]
    fn non_lists_and_garbage_are_told_apart() {
        assert_eq!(split(b"{}"), Err(DecodeError::NotAList));
        assert!(matches!(split(b"[1,"), Err(DecodeError::Syntax(_))));
        assert!(matches!(split(b"nope"), Err(DecodeError::Syntax(_))));
        assert!(matches!(split(b""), Err(DecodeError::Syntax(_))));
    }

    #[test]
    fn kinds_are_peeked() {
        assert_eq!(peek_kind(b" [1]"), Kind::List);
        assert_eq!(peek_kind(b"{}"), Kind::Dict);
        assert_eq!(peek_kind(br#""\u0000AAE=""#), Kind::Bytes);
        assert_eq!(peek_kind(br#""abc""#), Kind::Str);
        assert_eq!(peek_kind(b"12"), Kind::Other);
    }
}
