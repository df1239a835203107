//! A validating scanner for the top level of a JSON WAMP message.
//!
//! The router only needs each element's byte range (the envelope fields are then
//! decoded one by one, the payload is forwarded as it is), but it must still refuse
//! text that is not JSON, so that it never forwards invalid JSON to other peers.
//! This scanner does both in one pass over the bytes, with no allocation beyond
//! the list of ranges. It accepts exactly what serde_json accepts when it skips a
//! value (RFC 8259 grammar, `\u` escapes of four hex digits), which the tests check
//! against serde_json itself, with one difference: nesting deeper than
//! [`MAX_DEPTH`] levels is refused ([`DecodeError::TooDeep`]), as the MessagePack
//! and CBOR readers refuse it, where serde_json skips any depth.

use std::ops::Range;

use super::{DecodeError, MAX_DEPTH};

fn syntax(what: &str, at: usize) -> DecodeError {
    DecodeError::Syntax(format!("json: {what} at byte {at}"))
}

/// The byte ranges of the elements of the array that `bytes` holds, which must
/// start (after whitespace) with `[`.
pub(super) fn split_array(bytes: &[u8]) -> Result<Vec<Range<usize>>, DecodeError> {
    // Outside strings only ASCII is valid JSON; inside them the scanner checks each
    // non-ASCII character as it meets it.
    let mut s = Scanner { bytes, pos: 0 };
    s.skip_whitespace();
    if s.peek() != Some(b'[') {
        return Err(syntax("expected '['", s.pos));
    }
    s.pos += 1;
    let mut ranges = Vec::with_capacity(8);
    s.skip_whitespace();
    if s.peek() == Some(b']') {
        s.pos += 1;
    } else {
        loop {
            s.skip_whitespace();
            let start = s.pos;
            s.value(1)?;
            ranges.push(start..s.pos);
            s.skip_whitespace();
            match s.next() {
                Some(b',') => {}
                Some(b']') => break,
                _ => return Err(syntax("expected ',' or ']'", s.pos)),
            }
        }
    }
    s.skip_whitespace();
    if s.pos != bytes.len() {
        return Err(syntax("trailing characters", s.pos));
    }
    Ok(ranges)
}

/// Length of the run of plain ASCII string characters at the start of `bytes`: up
/// to the first `"`, `\\`, control character or non-ASCII byte. Eight bytes at a
/// time: a flag bit is set in each byte that is one of those (the lowest flagged
/// byte is always a true one; a borrow only propagates upwards from it).
pub(super) fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = ONES * u64::from(b'"');
    let backslash = ONES * u64::from(b'\\');
    let mut run = 0;
    for chunk in bytes.chunks_exact(8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_le_bytes(word);
        let is_quote = (x ^ quote).wrapping_sub(ONES) & !(x ^ quote);
        let is_backslash = (x ^ backslash).wrapping_sub(ONES) & !(x ^ backslash);
        let is_control = x.wrapping_sub(ONES * 0x20) & !x;
        // Non-ASCII bytes have the high bit set themselves.
        let flags = (is_quote | is_backslash | is_control | x) & HIGH;
        if flags != 0 {
            return run + (flags.trailing_zeros() / 8) as usize;
        }
        run += 8;
    }
    run + bytes[run..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b))
        .unwrap_or(bytes.len() - run)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Skips one value; `depth` is the nesting level of the container holding it.
    fn value(&mut self, depth: usize) -> Result<(), DecodeError> {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'[') => self.list(depth + 1),
            Some(b'{') => self.dict(depth + 1),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(syntax("expected a value", self.pos)),
            None => Err(syntax("unexpected end", self.pos)),
        }
    }

    fn enter(&self, depth: usize) -> Result<(), DecodeError> {
        // The outer array is level 1; like serde_json, allow MAX_DEPTH levels.
        if depth > MAX_DEPTH {
            Err(DecodeError::TooDeep)
        } else {
            Ok(())
        }
    }

    fn list(&mut self, depth: usize) -> Result<(), DecodeError> {
        self.enter(depth)?;
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            self.value(depth)?;
            self.skip_whitespace();
            match self.next() {
                Some(b',') => {}
                Some(b']') => return Ok(()),
                _ => return Err(syntax("expected ',' or ']'", self.pos)),
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<(), DecodeError> {
        self.enter(depth)?;
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(syntax("expected a string key", self.pos));
            }
            self.string()?;
            self.skip_whitespace();
            if self.next() != Some(b':') {
                return Err(syntax("expected ':'", self.pos));
            }
            self.skip_whitespace();
            self.value(depth)?;
            self.skip_whitespace();
            match self.next() {
                Some(b',') => {}
                Some(b'}') => return Ok(()),
                _ => return Err(syntax("expected ',' or '}'", self.pos)),
            }
        }
    }

    fn string(&mut self) -> Result<(), DecodeError> {
        self.pos += 1;
        loop {
            self.pos += plain_run(self.bytes.get(self.pos..).unwrap_or_default());
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape()?;
                }
                Some(lead @ 0x80..=0xFF) => self.utf8_char(lead)?,
                Some(_) => return Err(syntax("control character in string", self.pos)),
                None => return Err(syntax("unterminated string", self.pos)),
            }
        }
    }

    /// Checks and skips one multi-byte UTF-8 character.
    fn utf8_char(&mut self, lead: u8) -> Result<(), DecodeError> {
        let len = match lead {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => 0,
        };
        let valid = self
            .bytes
            .get(self.pos..self.pos + len)
            .is_some_and(|c| len > 0 && std::str::from_utf8(c).is_ok());
        if !valid {
            return Err(syntax("invalid UTF-8", self.pos));
        }
        self.pos += len;
        Ok(())
    }

    fn escape(&mut self) -> Result<(), DecodeError> {
        match self.next() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(()),
            Some(b'u') => {
                let hex = self
                    .bytes
                    .get(self.pos..self.pos + 4)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .ok_or_else(|| syntax("invalid \\u escape", self.pos))?;
                self.pos += hex.len();
                Ok(())
            }
            _ => Err(syntax("invalid escape", self.pos)),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), DecodeError> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(syntax("invalid literal", self.pos))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), DecodeError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(syntax("invalid number", self.pos)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(syntax("invalid number", self.pos));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(syntax("invalid number", self.pos));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    /// serde_json's view: the element ranges of a top-level array, or an error.
    fn reference(bytes: &[u8]) -> Option<Vec<Range<usize>>> {
        let raws: Vec<&RawValue> = serde_json::from_slice(bytes).ok()?;
        let base = bytes.as_ptr() as usize;
        Some(
            raws.iter()
                .map(|raw| {
                    let start = raw.get().as_ptr() as usize - base;
                    start..start + raw.get().len()
                })
                .collect(),
        )
    }

    #[test]
    fn plain_runs_stop_at_the_first_special_byte() {
        let text = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for special in [b'"', b'\\', b'\n', 0x1f, 0x80, 0xc3, 0xff] {
            for at in 0..text.len() {
                let mut bytes = text.to_vec();
                bytes[at] = special;
                assert_eq!(plain_run(&bytes), at, "{special:#x} at {at}");
            }
        }
        assert_eq!(plain_run(text), text.len());
        assert_eq!(plain_run(b""), 0);
        // Bytes just around the boundaries are plain.
        assert_eq!(plain_run(b" !#[]~\x7f "), 8);
    }

    fn agree(bytes: &[u8]) {
        let ours = split_array(bytes).ok();
        assert_eq!(
            ours,
            reference(bytes),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    #[test]
    fn agrees_with_serde_json_on_tricky_input() {
        let cases: &[&[u8]] = &[
            b"[]",
            b" [ ] ",
            b"[48,1,{},\"a.b\",[1,2],{\"k\":[true,false,null]}]",
            b"[1,]",
            b"[,1]",
            b"[1 2]",
            b"[01]",
            b"[-0,-0.5e+3,1E9,2.0]",
            b"[1.]",
            b"[.5]",
            b"[1e]",
            b"[-]",
            b"[\"\\u00e9\\n\\\"\",\"\\x\"]",
            b"[\"\\u12G4\"]",
            b"[\"tab\there\"]",
            b"[\"caf\xc3\xa9\"]",
            b"[\"\xff\"]",
            b"[{\"a\" : 1 , \"b\":{}}]",
            b"[{1:2}]",
            b"[{\"a\"}]",
            b"[tru]",
            b"[nul]",
            b"[1]]",
            b"[1] x",
            b"[\"unterminated]",
            b"[[[[]]]]",
            b"[\"\\ud800\"]",
            b"[\"\xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xa9\"]",
            b"[\"\xc0\x80\"]",
            b"[\"\xed\xa0\x80\"]",
            b"[\"\xe2\x82\"]",
            b"[\"\xe2\x82",
            b"[\"\xf5\x80\x80\x80\"]",
            b"[\xc3\xa9]",
        ];
        for case in cases {
            agree(case);
        }
    }

    #[test]
    fn nesting_is_bounded() {
        for depth in [MAX_DEPTH - 1, MAX_DEPTH] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            agree(text.as_bytes());
        }
        for depth in [MAX_DEPTH + 1, 100_000] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert_eq!(split_array(text.as_bytes()), Err(DecodeError::TooDeep));
            let text = format!("[{}{}]", "{\"a\":".repeat(depth), "}".repeat(depth));
            assert_eq!(split_array(text.as_bytes()), Err(DecodeError::TooDeep));
        }
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn agrees_with_serde_json_on_valid_messages(
            elements in prop::collection::vec(json_value(), 0..7),
            pretty in any::<bool>(),
        ) {
            let array = serde_json::Value::Array(elements);
            let text = if pretty {
                serde_json::to_vec_pretty(&array)
            } else {
                serde_json::to_vec(&array)
            }.expect("serializes");
            prop_assert!(split_array(&text).is_ok());
            agree(&text);
        }

        #[test]
        fn agrees_with_serde_json_on_damaged_messages(
            elements in prop::collection::vec(json_value(), 1..5),
            at in any::<prop::sample::Index>(),
            byte in prop_oneof![Just(b'"'), Just(b'\\'), Just(b','), Just(b'{'), Just(b']'),
                Just(b'e'), Just(b'-'), Just(b'.'), Just(b'0'), Just(b' '), any::<u8>()],
            delete in any::<bool>(),
        ) {
            let mut text = serde_json::to_vec(&serde_json::Value::Array(elements)).expect("serializes");
            let i = at.index(text.len());
            if delete {
                text.remove(i);
            } else {
                text.insert(i, byte);
            }
            agree(&text);
        }
    }
}
