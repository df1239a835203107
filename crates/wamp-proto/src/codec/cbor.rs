//! CBOR (RFC 8949) reader and writer over the shared [`Value`] model.
//!
//! Reads definite and indefinite lengths, tags (ignored, the tagged item is kept)
//! and half/single/double floats; writes the shortest definite-length heads.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::msgpack::map_key;
use super::{DecodeError, Kind, MAX_DEPTH};
use crate::value::{Dict, Value};

const BREAK: u8 = 0xff;

fn eof() -> DecodeError {
    DecodeError::Syntax("cbor: unexpected end of input".into())
}

fn bad(what: &str) -> DecodeError {
    DecodeError::Syntax(format!("cbor: {what}"))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or_else(eof)?;
        let s = self.buf.get(self.pos..end).ok_or_else(eof)?;
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Reads an initial byte and its argument; `None` means indefinite length.
    fn head(&mut self) -> Result<(u8, u8, Option<u64>), DecodeError> {
        let ib = self.take(1)?[0];
        let (major, ai) = (ib >> 5, ib & 0x1f);
        let arg = match ai {
            0..=23 => Some(u64::from(ai)),
            24 => Some(self.be(1)?),
            25 => Some(self.be(2)?),
            26 => Some(self.be(4)?),
            27 => Some(self.be(8)?),
            31 => None,
            _ => return Err(bad("reserved additional information")),
        };
        Ok((major, ai, arg))
    }

    fn len(&self, n: u64) -> Result<usize, DecodeError> {
        usize::try_from(n).map_err(|_| eof())
    }

    fn at_break(&mut self) -> bool {
        if self.peek() == Some(BREAK) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Reads a byte or text string (major 2 or 3), joining indefinite chunks.
    fn string(&mut self, major: u8, arg: Option<u64>) -> Result<Vec<u8>, DecodeError> {
        match arg {
            Some(n) => {
                let n = self.len(n)?;
                Ok(self.take(n)?.to_vec())
            }
            None => {
                let mut all = Vec::new();
                while !self.at_break() {
                    let (m, _, a) = self.head()?;
                    let Some(n) = a.filter(|_| m == major) else {
                        return Err(bad("malformed indefinite-length string"));
                    };
                    let n = self.len(n)?;
                    all.extend_from_slice(self.take(n)?);
                }
                Ok(all)
            }
        }
    }

    fn read(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let (major, ai, arg) = self.head()?;
        Ok(match major {
            0 => Value::from_u64(arg.ok_or_else(|| bad("indefinite integer"))?),
            1 => {
                let n = arg.ok_or_else(|| bad("indefinite integer"))?;
                let n = i64::try_from(n).map_err(|_| bad("negative integer out of range"))?;
                Value::Int(-1 - n)
            }
            2 => Value::Bytes(Bytes::from(self.string(2, arg)?)),
            3 => Value::Str(
                String::from_utf8(self.string(3, arg)?).map_err(|_| bad("invalid UTF-8"))?,
            ),
            4 => {
                let mut list = Vec::new();
                match arg {
                    Some(n) => {
                        for _ in 0..n {
                            list.push(self.read(depth + 1)?);
                        }
                    }
                    None => {
                        while !self.at_break() {
                            list.push(self.read(depth + 1)?);
                        }
                    }
                }
                Value::List(list)
            }
            5 => {
                let mut dict = Dict::new();
                let mut remaining = arg;
                loop {
                    match remaining {
                        Some(0) => break,
                        Some(ref mut n) => *n -= 1,
                        None if self.at_break() => break,
                        None => {}
                    }
                    let key = map_key(self.read(depth + 1)?)?;
                    let value = self.read(depth + 1)?;
                    dict.insert(key, value);
                }
                Value::Dict(dict)
            }
            6 => self.read(depth + 1)?,
            _ => match ai {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 | 23 => Value::Null,
                25 => Value::Float(half_to_f64(arg.unwrap_or(0) as u16)),
                26 => Value::Float(f64::from(f32::from_bits(arg.unwrap_or(0) as u32))),
                27 => Value::Float(f64::from_bits(arg.unwrap_or(0))),
                31 => return Err(bad("unexpected break")),
                _ => return Err(bad("unsupported simple value")),
            },
        })
    }

    fn skip(&mut self, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let (major, ai, arg) = self.head()?;
        match major {
            0 | 1 if arg.is_none() => return Err(bad("indefinite integer")),
            0 | 1 => {}
            2 => {
                self.string(2, arg)?;
            }
            3 => {
                let s = self.string(3, arg)?;
                std::str::from_utf8(&s).map_err(|_| bad("invalid UTF-8"))?;
            }
            4 | 5 => {
                let per_entry = if major == 5 { 2 } else { 1 };
                match arg {
                    Some(n) => {
                        for _ in 0..n {
                            for _ in 0..per_entry {
                                self.skip(depth + 1)?;
                            }
                        }
                    }
                    None => {
                        while !self.at_break() {
                            for _ in 0..per_entry {
                                self.skip(depth + 1)?;
                            }
                        }
                    }
                }
            }
            6 => self.skip(depth + 1)?,
            _ => {
                if ai == 31 {
                    return Err(bad("unexpected break"));
                }
            }
        }
        Ok(())
    }
}

fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = (h >> 10) & 0x1f;
    let frac = f64::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(i32::from(e) - 15),
    }
}

pub(super) fn split(bytes: &[u8]) -> Result<Vec<Range<usize>>, DecodeError> {
    let mut r = Reader::new(bytes);
    let (major, _, arg) = r.head()?;
    if major != 4 {
        return Err(DecodeError::NotAList);
    }
    let mut ranges = Vec::new();
    let mut next = |r: &mut Reader| -> Result<(), DecodeError> {
        let start = r.pos;
        r.skip(1)?;
        ranges.push(start..r.pos);
        Ok(())
    };
    match arg {
        Some(n) => {
            for _ in 0..n {
                next(&mut r)?;
            }
        }
        None => {
            while !r.at_break() {
                if r.at_end() {
                    return Err(eof());
                }
                next(&mut r)?;
            }
        }
    }
    if !r.at_end() {
        return Err(bad("trailing bytes after message"));
    }
    Ok(ranges)
}

pub(super) fn decode_value(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = r.read(0)?;
    if !r.at_end() {
        return Err(bad("trailing bytes after value"));
    }
    Ok(v)
}

pub(super) fn decode_sequence(raw: &[u8]) -> Result<Vec<Value>, DecodeError> {
    let mut r = Reader::new(raw);
    let mut values = Vec::new();
    while !r.at_end() {
        values.push(r.read(1)?);
    }
    Ok(values)
}

pub(super) fn peek_kind(raw: &[u8]) -> Kind {
    let mut i = 0;
    // Look through tags to the tagged item.
    while let Some(&b) = raw.get(i) {
        let skip = match b & 0x1f {
            0..=23 => 1,
            24 => 2,
            25 => 3,
            26 => 5,
            27 => 9,
            _ => 1,
        };
        match b >> 5 {
            6 => i += skip,
            2 => return Kind::Bytes,
            3 => return Kind::Str,
            4 => return Kind::List,
            5 => return Kind::Dict,
            _ => return Kind::Other,
        }
    }
    Kind::Other
}

/// Writes an initial byte with the shortest encoding of `arg`.
pub(super) fn write_head(out: &mut BytesMut, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.put_u8(m | arg as u8);
    } else if arg <= 0xff {
        out.put_u8(m | 24);
        out.put_u8(arg as u8);
    } else if arg <= 0xffff {
        out.put_u8(m | 25);
        out.put_u16(arg as u16);
    } else if arg <= 0xffff_ffff {
        out.put_u8(m | 26);
        out.put_u32(arg as u32);
    } else {
        out.put_u8(m | 27);
        out.put_u64(arg);
    }
}

pub(super) fn write_str(out: &mut BytesMut, s: &str) {
    write_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn write_dict(out: &mut BytesMut, dict: &Dict) {
    write_head(out, 5, dict.len() as u64);
    for (k, v) in dict {
        write_str(out, k);
        write_value(out, v);
    }
}

pub(super) fn write_value(out: &mut BytesMut, value: &Value) {
    match value {
        Value::Null => out.put_u8(0xf6),
        Value::Bool(b) => out.put_u8(if *b { 0xf5 } else { 0xf4 }),
        Value::Int(i) if *i >= 0 => write_head(out, 0, *i as u64),
        Value::Int(i) => write_head(out, 1, (-1 - *i) as u64),
        Value::UInt(u) => write_head(out, 0, *u),
        Value::Float(f) => {
            out.put_u8(0xfb);
            out.put_f64(*f);
        }
        Value::Str(s) => write_str(out, s),
        Value::Bytes(b) => {
            write_head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::List(l) => {
            write_head(out, 4, l.len() as u64);
            for v in l {
                write_value(out, v);
            }
        }
        Value::Dict(d) => write_dict(out, d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indefinite_lengths_and_tags_decode() {
        // [_ 1, "a" (indefinite text of "a"), h'01' tagged with tag 24]
        let bytes = [
            0x9f, 0x01, 0x7f, 0x61, b'a', 0xff, 0xd8, 0x18, 0x41, 0x01, 0xff,
        ];
        let v = decode_value(&bytes).expect("decode");
        assert_eq!(
            v,
            Value::List(vec![
                Value::Int(1),
                Value::Str("a".into()),
                Value::Bytes(Bytes::from_static(&[1]))
            ])
        );
        assert_eq!(split(&bytes).expect("split").len(), 3);
    }

    #[test]
    fn half_floats_decode() {
        assert_eq!(
            decode_value(&[0xf9, 0x3c, 0x00]).expect("1.0"),
            Value::Float(1.0)
        );
        assert_eq!(
            decode_value(&[0xf9, 0xc4, 0x00]).expect("-4.0"),
            Value::Float(-4.0)
        );
        assert_eq!(
            decode_value(&[0xf9, 0x7c, 0x00]).expect("inf"),
            Value::Float(f64::INFINITY)
        );
    }

    #[test]
    fn truncated_and_huge_inputs_fail_cleanly() {
        assert!(decode_value(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_value(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(split(&[0x9f, 0x01]).is_err());
        assert_eq!(split(&[0x01]), Err(DecodeError::NotAList));
    }
}
