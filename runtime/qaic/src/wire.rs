// SPDX-License-Identifier: MIT OR Apache-2.0
//! Little-endian field access on byte buffers, with bounds checks.

use crate::error::{Error, Result};

/// Writes little-endian fields at fixed offsets into a zero-filled buffer.
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(size: usize) -> Writer {
        Writer { buf: vec![0; size] }
    }
    pub(crate) fn u8(&mut self, off: usize, v: u8) -> &mut Self {
        self.buf[off] = v;
        self
    }
    pub(crate) fn u16(&mut self, off: usize, v: u16) -> &mut Self {
        self.bytes(off, &v.to_le_bytes())
    }
    pub(crate) fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.bytes(off, &v.to_le_bytes())
    }
    pub(crate) fn i32(&mut self, off: usize, v: i32) -> &mut Self {
        self.bytes(off, &v.to_le_bytes())
    }
    pub(crate) fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.bytes(off, &v.to_le_bytes())
    }
    pub(crate) fn bytes(&mut self, off: usize, v: &[u8]) -> &mut Self {
        self.buf[off..off + v.len()].copy_from_slice(v);
        self
    }
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Reads little-endian fields at fixed offsets; every access is checked.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf` that requires at least `min_len` bytes.
    pub(crate) fn new(buf: &'a [u8], min_len: usize, what: &'static str) -> Result<Reader<'a>> {
        if buf.len() < min_len {
            return Err(Error::protocol(format!(
                "{what}: {} bytes, expected at least {min_len}",
                buf.len()
            )));
        }
        Ok(Reader { buf, what })
    }
    fn get<const N: usize>(&self, off: usize) -> Result<[u8; N]> {
        self.buf
            .get(off..off + N)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| {
                Error::protocol(format!(
                    "{}: field at {off} beyond {} bytes",
                    self.what,
                    self.buf.len()
                ))
            })
    }
    pub(crate) fn u8(&self, off: usize) -> Result<u8> {
        Ok(self.get::<1>(off)?[0])
    }
    pub(crate) fn u16(&self, off: usize) -> Result<u16> {
        Ok(u16::from_le_bytes(self.get(off)?))
    }
    pub(crate) fn u32(&self, off: usize) -> Result<u32> {
        Ok(u32::from_le_bytes(self.get(off)?))
    }
    pub(crate) fn i32(&self, off: usize) -> Result<i32> {
        Ok(i32::from_le_bytes(self.get(off)?))
    }
    pub(crate) fn u64(&self, off: usize) -> Result<u64> {
        Ok(u64::from_le_bytes(self.get(off)?))
    }
    pub(crate) fn bytes(&self, off: usize, len: usize) -> Result<&'a [u8]> {
        self.buf.get(off..off + len).ok_or_else(|| {
            Error::protocol(format!(
                "{}: {len} bytes at {off} beyond {}",
                self.what,
                self.buf.len()
            ))
        })
    }
    /// A NUL-terminated (or full-length) string field.
    pub(crate) fn cstr(&self, off: usize, len: usize) -> Result<String> {
        let b = self.bytes(off, len)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    }
}

/// Copies `s` into a fixed `len`-byte, NUL-terminated string field.
pub(crate) fn fixed_cstr(s: &str, len: usize, what: &str) -> Result<Vec<u8>> {
    if s.len() >= len || s.as_bytes().contains(&0) {
        return Err(Error::invalid(format!(
            "{what} must be at most {} bytes without NUL: {s:?}",
            len - 1
        )));
    }
    let mut v = vec![0; len];
    v[..s.len()].copy_from_slice(s.as_bytes());
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_reader_roundtrip() {
        let b = Writer::new(16)
            .u8(0, 7)
            .u16(2, 0xbeef)
            .u32(4, 0xdead_beef)
            .u64(8, 1 << 40)
            .finish();
        assert_eq!(&b[..4], &[7, 0, 0xef, 0xbe]);
        let r = Reader::new(&b, 16, "t").unwrap();
        assert_eq!(
            (r.u8(0).unwrap(), r.u16(2).unwrap(), r.u32(4).unwrap()),
            (7, 0xbeef, 0xdead_beef)
        );
        assert_eq!(r.u64(8).unwrap(), 1 << 40);
        assert!(r.u64(9).is_err());
        assert!(Reader::new(&b, 17, "t").is_err());
    }

    #[test]
    fn cstr_fields() {
        assert_eq!(fixed_cstr("ab", 4, "n").unwrap(), b"ab\0\0");
        assert!(fixed_cstr("abcd", 4, "n").is_err());
        assert!(fixed_cstr("a\0", 4, "n").is_err());
        let r = Reader::new(b"xyz\0q", 5, "t").unwrap();
        assert_eq!(r.cstr(0, 5).unwrap(), "xyz");
        assert_eq!(r.cstr(0, 2).unwrap(), "xy");
    }
}
