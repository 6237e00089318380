// SPDX-License-Identifier: MIT OR Apache-2.0
//! Project-generated firmware images (not vendor firmware).
//!
//! The guest's `/lib/firmware/qcom/aic100/` holds `sbl.bin` (loaded by the MHI host over BHI) and
//! the Sahara images `fwN.bin` of the AIC100 image table. The emulated device does not execute
//! them; it checks that it received exactly what `aic100-emu gen-firmware` wrote. Every image is a
//! 32-byte header followed by a deterministic payload:
//!
//! | off | size | field |
//! |----:|-----:|-------|
//! | 0   | 8    | magic `QAICEMFW` |
//! | 8   | 4    | format version (1) |
//! | 12  | 4    | image id (0 = SBL, otherwise the Sahara image id) |
//! | 16  | 4    | payload length in bytes |
//! | 20  | 4    | CRC-32 (IEEE) of the payload |
//! | 24  | 4    | header length (32) |
//! | 28  | 4    | CRC-32 of header bytes 0..28 |
//!
//! All fields little-endian.

use crate::wire::{crc32, u32_at, Writer};
use std::path::Path;

/// Header magic.
pub const MAGIC: &[u8; 8] = b"QAICEMFW";
/// Header length.
pub const HEADER_LEN: usize = 32;
/// Format version written and accepted.
pub const FORMAT_VERSION: u32 = 1;
/// Image id of the SBL in the header.
pub const SBL_ID: u32 = 0;

/// The AIC100 Sahara image table: image ids the device requests, in request order.
pub const AIC100_SAHARA_IDS: [u32; 8] = [1, 2, 4, 5, 6, 8, 9, 10];

/// Payload size of each generated image (bytes). Sizes are chosen to exercise the transports:
/// fw1 needs two READ_DATA requests (> 512 KiB), several need chained TREs (> 64 KiB).
pub fn payload_size(id: u32) -> usize {
    match id {
        SBL_ID => 96 * 1024,
        1 => 600 * 1024,
        2 => 72 * 1024,
        4 => 16 * 1024,
        5 => 4 * 1024 + 8,
        6 => 200 * 1024,
        8 => 1024,
        9 => 48 * 1024,
        10 => 24 * 1024,
        _ => 4096,
    }
}

/// File name of an image inside the firmware directory (`qcom/aic100/` in the guest).
pub fn file_name(id: u32) -> String {
    if id == SBL_ID {
        "sbl.bin".into()
    } else {
        format!("fw{id}.bin")
    }
}

/// Why an image was rejected. The numeric value is what BHI reports in `ERRCODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// Shorter than the header.
    TooShort = 1,
    /// Wrong magic or format version.
    BadMagic = 2,
    /// Header CRC mismatch.
    BadHeaderCrc = 3,
    /// The header names another image.
    WrongId = 4,
    /// Length differs from header + payload length.
    SizeMismatch = 5,
    /// Payload CRC mismatch.
    BadPayloadCrc = 6,
    /// Differs from the reference image given with `--firmware-dir`.
    NotReference = 7,
}

/// Parsed image header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// Image id.
    pub id: u32,
    /// Payload length.
    pub payload_len: u32,
    /// Payload CRC-32.
    pub payload_crc: u32,
}

impl ImageHeader {
    /// Total image length (header + payload).
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len as usize
    }
}

/// Parse and check a header (first 32 bytes of an image).
pub fn parse_header(b: &[u8]) -> Result<ImageHeader, ImageError> {
    if b.len() < HEADER_LEN {
        return Err(ImageError::TooShort);
    }
    if &b[0..8] != MAGIC || u32_at(b, 8) != Some(FORMAT_VERSION) {
        return Err(ImageError::BadMagic);
    }
    if u32_at(b, 28) != Some(crc32(&b[0..28])) || u32_at(b, 24) != Some(HEADER_LEN as u32) {
        return Err(ImageError::BadHeaderCrc);
    }
    Ok(ImageHeader {
        id: u32_at(b, 12).unwrap(),
        payload_len: u32_at(b, 16).unwrap(),
        payload_crc: u32_at(b, 20).unwrap(),
    })
}

/// Verify a complete image: header, id, size, payload checksum.
pub fn verify(b: &[u8], expected_id: u32) -> Result<ImageHeader, ImageError> {
    let h = parse_header(b)?;
    if h.id != expected_id {
        return Err(ImageError::WrongId);
    }
    if b.len() != h.total_len() {
        return Err(ImageError::SizeMismatch);
    }
    if crc32(&b[HEADER_LEN..]) != h.payload_crc {
        return Err(ImageError::BadPayloadCrc);
    }
    Ok(h)
}

/// Build image `id` with a payload of `len` bytes.
pub fn build_image(id: u32, len: usize) -> Vec<u8> {
    let mut payload = Vec::with_capacity(len);
    let text = format!(
        "qaic-rs emulated AIC100 image {id} ({}); generated test content, not vendor firmware\n",
        file_name(id)
    );
    payload.extend_from_slice(&text.as_bytes()[..text.len().min(len)]);
    // xorshift64*, seeded per image: deterministic, incompressible filler.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ ((id as u64 + 1) << 32);
    while payload.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        let n = (len - payload.len()).min(8);
        payload.extend_from_slice(&v[..n]);
    }
    let mut w = Writer::new();
    w.bytes(MAGIC)
        .u32(FORMAT_VERSION)
        .u32(id)
        .u32(len as u32)
        .u32(crc32(&payload))
        .u32(HEADER_LEN as u32);
    let hcrc = crc32(&w.buf);
    w.u32(hcrc).bytes(&payload);
    w.buf
}

/// The image the project generates for `id`.
pub fn generated_image(id: u32) -> Vec<u8> {
    build_image(id, payload_size(id))
}

/// Write `sbl.bin` and every Sahara image into `dir`. Returns the file names written.
pub fn write_all(dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut names = Vec::new();
    for id in std::iter::once(SBL_ID).chain(AIC100_SAHARA_IDS) {
        let name = file_name(id);
        std::fs::write(dir.join(&name), generated_image(id))?;
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_images_verify_and_are_deterministic() {
        for id in std::iter::once(SBL_ID).chain(AIC100_SAHARA_IDS) {
            let a = generated_image(id);
            assert_eq!(a, generated_image(id));
            let h = verify(&a, id).expect("verifies");
            assert_eq!(h.total_len(), a.len());
            assert_eq!(a.len(), HEADER_LEN + payload_size(id));
        }
    }

    #[test]
    fn corrupted_or_truncated_images_are_rejected_with_the_right_code() {
        let img = generated_image(2);
        assert_eq!(verify(&img, 4), Err(ImageError::WrongId));
        assert_eq!(verify(&img[..10], 2), Err(ImageError::TooShort));
        assert_eq!(
            verify(&img[..img.len() - 1], 2),
            Err(ImageError::SizeMismatch)
        );
        let mut bad = img.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(verify(&bad, 2), Err(ImageError::BadPayloadCrc));
        let mut bad = img.clone();
        bad[13] ^= 1; // id field: header CRC no longer matches
        assert_eq!(verify(&bad, 2), Err(ImageError::BadHeaderCrc));
        let mut bad = img;
        bad[0] = b'X';
        assert_eq!(verify(&bad, 2), Err(ImageError::BadMagic));
    }

    #[test]
    fn write_all_creates_sbl_and_the_aic100_image_table() {
        let dir = std::env::temp_dir().join(format!("aic100-fw-{}", std::process::id()));
        let names = write_all(&dir).unwrap();
        assert_eq!(names.len(), 9);
        for n in [
            "sbl.bin", "fw1.bin", "fw2.bin", "fw4.bin", "fw5.bin", "fw6.bin", "fw8.bin", "fw9.bin",
            "fw10.bin",
        ] {
            assert!(dir.join(n).is_file(), "{n}");
        }
        let sbl = std::fs::read(dir.join("sbl.bin")).unwrap();
        assert!(verify(&sbl, SBL_ID).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
