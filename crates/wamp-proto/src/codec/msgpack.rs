//! MessagePack (spec version 5) reader and writer over the shared [`Value`] model.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::{DecodeError, Kind, MAX_DEPTH};
use crate::value::{Dict, Value};

fn eof() -> DecodeError {
    DecodeError::Syntax("msgpack: unexpected end of input".into())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The decoded header of one MessagePack item.
enum Head {
    Nil,
    Bool(bool),
    UInt(u64),
    Int(i64),
    F32(f32),
    F64(f64),
    Str(usize),
    Bin(usize),
    Array(usize),
    Map(usize),
    /// Extension type: the type byte plus `len` data bytes follow.
    Ext(usize),
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
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

    fn len(&mut self, n: usize) -> Result<usize, DecodeError> {
        Ok(self.be(n)? as usize)
    }

    fn head(&mut self) -> Result<Head, DecodeError> {
        let m = self.take(1)?[0];
        Ok(match m {
            0x00..=0x7f => Head::UInt(u64::from(m)),
            0x80..=0x8f => Head::Map(usize::from(m & 0x0f)),
            0x90..=0x9f => Head::Array(usize::from(m & 0x0f)),
            0xa0..=0xbf => Head::Str(usize::from(m & 0x1f)),
            0xc0 => Head::Nil,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4 => Head::Bin(self.len(1)?),
            0xc5 => Head::Bin(self.len(2)?),
            0xc6 => Head::Bin(self.len(4)?),
            0xc7 => Head::Ext(self.len(1)?),
            0xc8 => Head::Ext(self.len(2)?),
            0xc9 => Head::Ext(self.len(4)?),
            0xca => Head::F32(f32::from_bits(self.be(4)? as u32)),
            0xcb => Head::F64(f64::from_bits(self.be(8)?)),
            0xcc => Head::UInt(self.be(1)?),
            0xcd => Head::UInt(self.be(2)?),
            0xce => Head::UInt(self.be(4)?),
            0xcf => Head::UInt(self.be(8)?),
            0xd0 => Head::Int(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Head::Int(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Head::Int(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Head::Int(self.be(8)? as i64),
            0xd4 => Head::Ext(1),
            0xd5 => Head::Ext(2),
            0xd6 => Head::Ext(4),
            0xd7 => Head::Ext(8),
            0xd8 => Head::Ext(16),
            0xd9 => Head::Str(self.len(1)?),
            0xda => Head::Str(self.len(2)?),
            0xdb => Head::Str(self.len(4)?),
            0xdc => Head::Array(self.len(2)?),
            0xdd => Head::Array(self.len(4)?),
            0xde => Head::Map(self.len(2)?),
            0xdf => Head::Map(self.len(4)?),
            0xe0..=0xff => Head::Int(i64::from(m as i8)),
            0xc1 => return Err(DecodeError::Syntax("msgpack: reserved marker 0xc1".into())),
        })
    }

    fn read(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        Ok(match self.head()? {
            Head::Nil => Value::Null,
            Head::Bool(b) => Value::Bool(b),
            Head::UInt(u) => Value::from_u64(u),
            Head::Int(i) => Value::Int(i),
            Head::F32(f) => Value::Float(f64::from(f)),
            Head::F64(f) => Value::Float(f),
            Head::Str(n) => Value::Str(utf8(self.take(n)?)?),
            Head::Bin(n) => Value::Bytes(Bytes::copy_from_slice(self.take(n)?)),
            Head::Array(n) => {
                let mut list = Vec::with_capacity(n.min(self.buf.len() - self.pos));
                for _ in 0..n {
                    list.push(self.read(depth + 1)?);
                }
                Value::List(list)
            }
            Head::Map(n) => {
                let mut dict = Dict::new();
                for _ in 0..n {
                    let key = map_key(self.read(depth + 1)?)?;
                    let value = self.read(depth + 1)?;
                    dict.insert(key, value);
                }
                Value::Dict(dict)
            }
            Head::Ext(_) => {
                return Err(DecodeError::Syntax(
                    "msgpack: extension types are not supported".into(),
                ))
            }
        })
    }

    fn skip(&mut self, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        match self.head()? {
            Head::Str(n) => {
                utf8_check(self.take(n)?)?;
            }
            Head::Bin(n) => {
                self.take(n)?;
            }
            Head::Ext(n) => {
                self.take(n + 1)?;
            }
            Head::Array(n) => {
                for _ in 0..n {
                    self.skip(depth + 1)?;
                }
            }
            Head::Map(n) => {
                for _ in 0..n {
                    self.skip(depth + 1)?;
                    self.skip(depth + 1)?;
                }
            }
            Head::Nil
            | Head::Bool(_)
            | Head::UInt(_)
            | Head::Int(_)
            | Head::F32(_)
            | Head::F64(_) => {}
        }
        Ok(())
    }
}

fn utf8_check(b: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(b)
        .map_err(|_| DecodeError::Syntax("msgpack: invalid UTF-8 in string".into()))
}

fn utf8(b: &[u8]) -> Result<String, DecodeError> {
    utf8_check(b).map(str::to_owned)
}

/// Dict keys must be strings in WAMP; integer keys from application payloads are
/// turned into their decimal text so they survive transcoding to JSON.
pub(super) fn map_key(key: Value) -> Result<String, DecodeError> {
    match key {
        Value::Str(s) => Ok(s),
        Value::Int(i) => Ok(i.to_string()),
        Value::UInt(u) => Ok(u.to_string()),
        other => Err(DecodeError::Syntax(format!(
            "dict key of type {} is not supported",
            other.type_name()
        ))),
    }
}

pub(super) fn split(bytes: &[u8]) -> Result<Vec<Range<usize>>, DecodeError> {
    let mut r = Reader::new(bytes);
    let n = match r.head()? {
        Head::Array(n) => n,
        _ => return Err(DecodeError::NotAList),
    };
    let mut ranges = Vec::with_capacity(n.min(16));
    for _ in 0..n {
        let start = r.pos;
        r.skip(1)?;
        ranges.push(start..r.pos);
    }
    if !r.at_end() {
        return Err(DecodeError::Syntax(
            "msgpack: trailing bytes after message".into(),
        ));
    }
    Ok(ranges)
}

pub(super) fn decode_value(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = r.read(0)?;
    if !r.at_end() {
        return Err(DecodeError::Syntax(
            "msgpack: trailing bytes after value".into(),
        ));
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
    match raw.first() {
        Some(0x90..=0x9f | 0xdc | 0xdd) => Kind::List,
        Some(0x80..=0x8f | 0xde | 0xdf) => Kind::Dict,
        Some(0xa0..=0xbf | 0xd9..=0xdb) => Kind::Str,
        Some(0xc4..=0xc6) => Kind::Bytes,
        _ => Kind::Other,
    }
}

fn write_len(
    out: &mut BytesMut,
    len: usize,
    fix: Option<(u8, usize)>,
    m8: Option<u8>,
    m16: u8,
    m32: u8,
) {
    match fix {
        Some((base, max)) if len <= max => out.put_u8(base | len as u8),
        _ => match m8 {
            Some(m) if len <= 0xff => {
                out.put_u8(m);
                out.put_u8(len as u8);
            }
            _ if len <= 0xffff => {
                out.put_u8(m16);
                out.put_u16(len as u16);
            }
            _ => {
                out.put_u8(m32);
                out.put_u32(len as u32);
            }
        },
    }
}

pub(super) fn write_array_header(out: &mut BytesMut, len: usize) {
    write_len(out, len, Some((0x90, 15)), None, 0xdc, 0xdd);
}

fn write_map_header(out: &mut BytesMut, len: usize) {
    write_len(out, len, Some((0x80, 15)), None, 0xde, 0xdf);
}

pub(super) fn write_u64(out: &mut BytesMut, v: u64) {
    if v <= 0x7f {
        out.put_u8(v as u8);
    } else if v <= 0xff {
        out.put_u8(0xcc);
        out.put_u8(v as u8);
    } else if v <= 0xffff {
        out.put_u8(0xcd);
        out.put_u16(v as u16);
    } else if v <= 0xffff_ffff {
        out.put_u8(0xce);
        out.put_u32(v as u32);
    } else {
        out.put_u8(0xcf);
        out.put_u64(v);
    }
}

fn write_i64(out: &mut BytesMut, v: i64) {
    if v >= 0 {
        write_u64(out, v as u64);
    } else if v >= -32 {
        out.put_u8(v as i8 as u8);
    } else if v >= i64::from(i8::MIN) {
        out.put_u8(0xd0);
        out.put_i8(v as i8);
    } else if v >= i64::from(i16::MIN) {
        out.put_u8(0xd1);
        out.put_i16(v as i16);
    } else if v >= i64::from(i32::MIN) {
        out.put_u8(0xd2);
        out.put_i32(v as i32);
    } else {
        out.put_u8(0xd3);
        out.put_i64(v);
    }
}

pub(super) fn write_str(out: &mut BytesMut, s: &str) {
    write_len(out, s.len(), Some((0xa0, 31)), Some(0xd9), 0xda, 0xdb);
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn write_dict(out: &mut BytesMut, dict: &Dict) {
    write_map_header(out, dict.len());
    for (k, v) in dict {
        write_str(out, k);
        write_value(out, v);
    }
}

pub(super) fn write_value(out: &mut BytesMut, value: &Value) {
    match value {
        Value::Null => out.put_u8(0xc0),
        Value::Bool(b) => out.put_u8(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) => write_i64(out, *i),
        Value::UInt(u) => write_u64(out, *u),
        Value::Float(f) => {
            out.put_u8(0xcb);
            out.put_f64(*f);
        }
        Value::Str(s) => write_str(out, s),
        Value::Bytes(b) => {
            write_len(out, b.len(), None, Some(0xc4), 0xc5, 0xc6);
            out.extend_from_slice(b);
        }
        Value::List(l) => {
            write_array_header(out, l.len());
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
    fn integer_widths_round_trip() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = BytesMut::new();
            write_value(&mut out, &Value::Int(v));
            assert_eq!(decode_value(&out).expect("decode"), Value::Int(v));
        }
    }

    #[test]
    fn huge_declared_lengths_do_not_allocate_or_panic() {
        // array32 claiming 4 billion elements, then nothing
        assert!(decode_value(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(split(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
        assert!(decode_value(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']).is_err());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert!(split(&[0x91, 0x01, 0x02]).is_err());
        assert_eq!(split(&[0x01]), Err(DecodeError::NotAList));
    }
}
