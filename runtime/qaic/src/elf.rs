// SPDX-License-Identifier: MIT OR Apache-2.0
//! Minimal ELF64 little-endian images: writing a network image with a few
//! sections, and finding a section by name in one.
//!
//! Only what network images need: no program headers, no symbols. The
//! section header table follows the section contents and the section name
//! string table (`.shstrtab`) is the last section.
//!
//! ```
//! use qaic::elf::{find_section, ElfWriter, SHT_PROGBITS};
//!
//! let image = ElfWriter::new(qaic::elf::EM_QDSP6)
//!     .section("notes", SHT_PROGBITS, 0, b"hello")
//!     .finish();
//! assert_eq!(find_section(&image, "notes")?, Some(&b"hello"[..]));
//! assert_eq!(find_section(&image, "other")?, None);
//! # Ok::<(), qaic::workload::WorkloadError>(())
//! ```

use crate::workload::WorkloadError;

/// `e_machine` of Hexagon (QDSP6), the NSPs' architecture.
pub const EM_QDSP6: u16 = 164;
/// Section type: program data.
pub const SHT_PROGBITS: u32 = 1;
/// Section type: string table.
pub const SHT_STRTAB: u32 = 3;
/// Section type: no file contents (`.bss`).
pub const SHT_NOBITS: u32 = 8;
/// Section flag: occupies memory at run time.
pub const SHF_ALLOC: u64 = 0x2;
/// Section flag: executable instructions.
pub const SHF_EXECINSTR: u64 = 0x4;
/// `e_type` of an executable.
pub const ET_EXEC: u16 = 2;

const EHDR_LEN: usize = 64;
const SHDR_LEN: usize = 64;

struct Section {
    name: String,
    ty: u32,
    flags: u64,
    data: Vec<u8>,
}

/// Writes an ELF64 little-endian image section by section.
pub struct ElfWriter {
    machine: u16,
    sections: Vec<Section>,
}

impl ElfWriter {
    /// An empty image for architecture `machine` (`e_machine`).
    pub fn new(machine: u16) -> ElfWriter {
        ElfWriter {
            machine,
            sections: Vec::new(),
        }
    }

    /// Appends a section (`ty` is `sh_type`, `flags` is `sh_flags`).
    pub fn section(mut self, name: &str, ty: u32, flags: u64, data: &[u8]) -> ElfWriter {
        self.sections.push(Section {
            name: name.to_owned(),
            ty,
            flags,
            data: data.to_vec(),
        });
        self
    }

    /// The image: ELF header, section contents (each 8-byte aligned), then
    /// the section header table (null section, the sections in order,
    /// `.shstrtab`).
    pub fn finish(self) -> Vec<u8> {
        let mut shstrtab = vec![0u8];
        let mut name_off = Vec::new();
        for s in &self.sections {
            name_off.push(shstrtab.len() as u32);
            shstrtab.extend_from_slice(s.name.as_bytes());
            shstrtab.push(0);
        }
        let shstrtab_name = shstrtab.len() as u32;
        shstrtab.extend_from_slice(b".shstrtab\0");

        let mut out = vec![0u8; EHDR_LEN];
        let mut headers = vec![[0u8; SHDR_LEN]]; // SHN_UNDEF
        let mut place = |out: &mut Vec<u8>, name: u32, ty: u32, flags: u64, data: &[u8]| {
            out.resize(out.len().next_multiple_of(8), 0);
            let off = out.len() as u64;
            out.extend_from_slice(data);
            let mut h = [0u8; SHDR_LEN];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&ty.to_le_bytes());
            h[8..16].copy_from_slice(&flags.to_le_bytes());
            // sh_addr 0
            h[24..32].copy_from_slice(&off.to_le_bytes());
            h[32..40].copy_from_slice(&(data.len() as u64).to_le_bytes());
            // sh_link, sh_info 0
            let align: u64 = if ty == SHT_STRTAB { 1 } else { 8 };
            h[48..56].copy_from_slice(&align.to_le_bytes());
            // sh_entsize 0
            headers.push(h);
        };
        for (s, name) in self.sections.iter().zip(&name_off) {
            place(&mut out, *name, s.ty, s.flags, &s.data);
        }
        place(&mut out, shstrtab_name, SHT_STRTAB, 0, &shstrtab);
        out.resize(out.len().next_multiple_of(8), 0);
        let shoff = out.len() as u64;
        let shnum = headers.len() as u16;
        for h in &headers {
            out.extend_from_slice(h);
        }

        let e = &mut out[..EHDR_LEN];
        e[0..4].copy_from_slice(b"\x7fELF");
        e[4] = 2; // ELFCLASS64
        e[5] = 1; // ELFDATA2LSB
        e[6] = 1; // EV_CURRENT
        e[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        e[18..20].copy_from_slice(&self.machine.to_le_bytes());
        e[20..24].copy_from_slice(&1u32.to_le_bytes()); // e_version
                                                        // e_entry, e_phoff 0
        e[40..48].copy_from_slice(&shoff.to_le_bytes());
        // e_flags 0
        e[52..54].copy_from_slice(&(EHDR_LEN as u16).to_le_bytes());
        // e_phentsize, e_phnum 0
        e[58..60].copy_from_slice(&(SHDR_LEN as u16).to_le_bytes());
        e[60..62].copy_from_slice(&shnum.to_le_bytes());
        e[62..64].copy_from_slice(&(shnum - 1).to_le_bytes());
        out
    }
}

fn field<const N: usize>(b: &[u8], off: usize) -> Result<[u8; N], WorkloadError> {
    b.get(off..off + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| WorkloadError::Elf(format!("field at {off} beyond {} bytes", b.len())))
}

/// The contents of the first section called exactly `name` (a section
/// without file contents, `SHT_NOBITS`, does not count): `Ok(None)` when
/// there is none, an error when the image is not a well-formed ELF64
/// little-endian file with 64-byte section headers.
pub fn find_section<'a>(elf: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, WorkloadError> {
    let bad = |m: String| WorkloadError::Elf(m);
    if elf.len() < EHDR_LEN || elf[0..4] != *b"\x7fELF" {
        return Err(bad("no ELF header".into()));
    }
    if elf[4] != 2 || elf[5] != 1 {
        return Err(bad(format!(
            "class {} data {}, not ELF64 LE",
            elf[4], elf[5]
        )));
    }
    let shoff = u64::from_le_bytes(field(elf, 40)?);
    let shentsize = u16::from_le_bytes(field(elf, 58)?) as usize;
    let shnum = u16::from_le_bytes(field(elf, 60)?) as usize;
    let shstrndx = u16::from_le_bytes(field(elf, 62)?) as usize;
    if shnum == 0 {
        return Ok(None);
    }
    if shentsize != SHDR_LEN || shstrndx >= shnum {
        return Err(bad(format!(
            "e_shentsize {shentsize}, e_shstrndx {shstrndx} of {shnum} sections"
        )));
    }
    let table = usize::try_from(shoff)
        .ok()
        .and_then(|o| Some((o, o.checked_add(shnum * SHDR_LEN)?)))
        .and_then(|(o, e)| elf.get(o..e))
        .ok_or_else(|| {
            bad(format!(
                "section header table at {shoff:#x} beyond the file"
            ))
        })?;
    let header = |i: usize| -> Result<(u32, u32, &'a [u8]), WorkloadError> {
        let h = &table[i * SHDR_LEN..(i + 1) * SHDR_LEN];
        let name = u32::from_le_bytes(field(h, 0)?);
        let ty = u32::from_le_bytes(field(h, 4)?);
        if ty == SHT_NOBITS {
            return Ok((name, ty, &[]));
        }
        let off = u64::from_le_bytes(field(h, 24)?);
        let size = u64::from_le_bytes(field(h, 32)?);
        let data = off
            .checked_add(size)
            .filter(|&e| e <= elf.len() as u64)
            .map(|e| &elf[off as usize..e as usize])
            .ok_or_else(|| {
                bad(format!(
                    "section {i} [{off:#x}, +{size:#x}) beyond the file"
                ))
            })?;
        Ok((name, ty, data))
    };
    let (_, _, strtab) = header(shstrndx)?;
    for i in 1..shnum {
        let (n, ty, data) = header(i)?;
        let Some(s) = strtab.get(n as usize..) else {
            continue;
        };
        let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
        if ty != SHT_NOBITS && s == name.as_bytes() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Vec<u8> {
        ElfWriter::new(EM_QDSP6)
            .section(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, &[1, 2, 3])
            .section("qaic_emu_workload", SHT_PROGBITS, 0, &[9; 10])
            .finish()
    }

    #[test]
    fn header_fields() {
        let e = image();
        assert_eq!(&e[..8], b"\x7fELF\x02\x01\x01\x00");
        assert_eq!(u16::from_le_bytes([e[16], e[17]]), ET_EXEC);
        assert_eq!(u16::from_le_bytes([e[18], e[19]]), 164);
        assert_eq!(u16::from_le_bytes([e[52], e[53]]), 64, "e_ehsize");
        assert_eq!(u16::from_le_bytes([e[58], e[59]]), 64, "e_shentsize");
        assert_eq!(
            u16::from_le_bytes([e[60], e[61]]),
            4,
            "null, 2 sections, shstrtab"
        );
        assert_eq!(u16::from_le_bytes([e[62], e[63]]), 3, "e_shstrndx");
        let shoff = u64::from_le_bytes(e[40..48].try_into().unwrap());
        assert_eq!(shoff % 8, 0);
        assert_eq!(shoff as usize + 4 * 64, e.len());
        // the null section header is all zero
        assert!(e[shoff as usize..shoff as usize + 64]
            .iter()
            .all(|&b| b == 0));
        // .text lands right after the ELF header
        let h1 = &e[shoff as usize + 64..shoff as usize + 128];
        assert_eq!(
            u32::from_le_bytes(h1[4..8].try_into().unwrap()),
            SHT_PROGBITS
        );
        assert_eq!(u64::from_le_bytes(h1[8..16].try_into().unwrap()), 6);
        assert_eq!(u64::from_le_bytes(h1[24..32].try_into().unwrap()), 64);
        assert_eq!(u64::from_le_bytes(h1[32..40].try_into().unwrap()), 3);
        // the workload is 8-byte aligned after it
        let h2 = &e[shoff as usize + 128..shoff as usize + 192];
        assert_eq!(u64::from_le_bytes(h2[24..32].try_into().unwrap()), 72);
    }

    #[test]
    fn sections_are_found_by_exact_name() {
        let e = image();
        assert_eq!(find_section(&e, ".text").unwrap(), Some(&[1u8, 2, 3][..]));
        assert_eq!(
            find_section(&e, "qaic_emu_workload").unwrap(),
            Some(&[9u8; 10][..])
        );
        assert_eq!(find_section(&e, "qaic_emu_workloa").unwrap(), None);
        assert_eq!(find_section(&e, ".qaic_emu_workload").unwrap(), None);
        assert!(find_section(&e, ".shstrtab").unwrap().is_some());
        // no sections at all
        let empty = ElfWriter::new(EM_QDSP6).finish();
        assert_eq!(find_section(&empty, "x").unwrap(), None);
    }

    #[test]
    fn malformed_images_are_refused() {
        let e = image();
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut t = e.clone();
            f(&mut t);
            find_section(&t, "qaic_emu_workload").map(|o| o.map(<[u8]>::to_vec))
        };
        assert!(find_section(&e[..63], "x").is_err());
        assert!(with(&|t| t[0] = 0).is_err());
        assert!(with(&|t| t[4] = 1).is_err(), "ELF32");
        assert!(with(&|t| t[5] = 2).is_err(), "big-endian");
        assert!(with(&|t| t[58] = 40).is_err(), "e_shentsize");
        assert!(with(&|t| t[62] = 9).is_err(), "e_shstrndx");
        assert!(with(&|t| t.truncate(t.len() - 1)).is_err(), "table cut");
        // a section whose contents end beyond the file
        let shoff = u64::from_le_bytes(e[40..48].try_into().unwrap()) as usize;
        assert!(with(&|t| t[shoff + 128 + 33] = 0xff).is_err());
        // the same section as NOBITS has no contents and does not count
        assert_eq!(
            with(&|t| t[shoff + 128 + 4] = SHT_NOBITS as u8).unwrap(),
            None
        );
    }
}
