// SPDX-License-Identifier: MIT OR Apache-2.0
//! The compute stand-in: the int8 MLP carried in the `qaic_emu_workload` section of a network
//! ELF (format 1.0, `Documentation/workload.rst`). This is the one invented part of the
//! device; the parsing and the arithmetic here are the definition the document describes.

use crate::wire::crc32;
use std::fmt;

/// Name of the ELF section holding the workload.
pub const SECTION: &str = "qaic_emu_workload";
/// Section magic.
pub const MAGIC: &[u8; 8] = b"QEMUWKLD";
/// Major version understood.
pub const VERSION_MAJOR: u16 = 1;
/// Minor version written by this crate.
pub const VERSION_MINOR: u16 = 0;
/// Header length of version 1.0.
pub const HEADER_LEN: usize = 64;
/// Layer descriptor length of version 1.0.
pub const LAYER_LEN: usize = 32;
/// Most layers.
pub const MAX_LAYERS: usize = 16;
/// Most features per layer side.
pub const MAX_FEATURES: u32 = 4096;
/// Input and output regions must end at or below this DDR offset.
pub const IO_LIMIT: u64 = 0x0800_0000;
/// Largest absolute bias.
pub const BIAS_LIMIT: i64 = 1 << 24;

/// Why a workload (or its ELF) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadError(pub String);

impl fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(s: impl Into<String>) -> Result<T, WorkloadError> {
    Err(WorkloadError(s.into()))
}

fn u16le(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32le(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64le(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// Find section `name` in an ELF64 little-endian image: `Ok(None)` if the ELF has no such
/// section, `Err` if the image is not a well-formed ELF64 LE.
pub fn elf_section<'a>(elf: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, WorkloadError> {
    if elf.len() < 64 || &elf[0..4] != b"\x7fELF" {
        return err("not an ELF image");
    }
    if elf[4] != 2 || elf[5] != 1 {
        return err("not ELF64 little-endian");
    }
    let bad = || WorkloadError("section header table out of bounds".into());
    let shoff = u64le(elf, 0x28).ok_or_else(bad)? as usize;
    let shentsize = u16le(elf, 0x3a).ok_or_else(bad)? as usize;
    let shnum = u16le(elf, 0x3c).ok_or_else(bad)? as usize;
    let shstrndx = u16le(elf, 0x3e).ok_or_else(bad)? as usize;
    if shnum == 0 {
        return Ok(None);
    }
    if shentsize != 64 || shstrndx >= shnum {
        return err(format!(
            "section header entry size {shentsize}, string table index {shstrndx} of {shnum}"
        ));
    }
    let end = shoff
        .checked_add(shnum * 64)
        .filter(|&e| e <= elf.len())
        .ok_or_else(bad)?;
    let sh = &elf[shoff..end];
    let sect = |i: usize| -> Result<(u32, u32, &'a [u8]), WorkloadError> {
        let h = &sh[i * 64..i * 64 + 64];
        let name = u32le(h, 0).unwrap();
        let ty = u32le(h, 4).unwrap();
        let off = u64le(h, 0x18).unwrap();
        let size = u64le(h, 0x20).unwrap();
        if ty == 8 {
            // SHT_NOBITS: no file contents
            return Ok((name, ty, &[]));
        }
        let e = off
            .checked_add(size)
            .filter(|&e| e <= elf.len() as u64)
            .ok_or_else(|| WorkloadError(format!("section {i} beyond the end of the file")))?;
        Ok((name, ty, &elf[off as usize..e as usize]))
    };
    let (_, _, strtab) = sect(shstrndx)?;
    for i in 0..shnum {
        let (n, ty, data) = sect(i)?;
        let Some(s) = strtab.get(n as usize..) else {
            continue;
        };
        let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
        if s == name.as_bytes() && ty != 8 {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// One fully connected layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Input features.
    pub in_features: u32,
    /// Output features.
    pub out_features: u32,
    /// Offset of the int8 weight matrix in the constants.
    pub weights_offset: u64,
    /// Offset of the int32 biases in the constants.
    pub bias_offset: u64,
    /// Requantization multiplier.
    pub multiplier: u32,
    /// Requantization shift.
    pub shift: u8,
    /// 0 none, 1 ReLU.
    pub activation: u8,
}

/// A validated workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Minor version of the section.
    pub version_minor: u16,
    /// Input vector offset relative to `ddr_base`.
    pub input_offset: u64,
    /// Output vector offset relative to `ddr_base`.
    pub output_offset: u64,
    /// Input doorbell offset relative to `mcid_base`.
    pub doorbell_offset: u64,
    /// Semaphore incremented after each inference.
    pub done_sem: u8,
    /// Nominal latency of one inference.
    pub latency_ns: u32,
    /// Bytes of constants the model reads.
    pub constants_len: u64,
    /// Layers.
    pub layers: Vec<Layer>,
}

impl Workload {
    /// Input vector length.
    pub fn input_len(&self) -> usize {
        self.layers[0].in_features as usize
    }
    /// Output vector length.
    pub fn output_len(&self) -> usize {
        self.layers.last().unwrap().out_features as usize
    }

    /// Parse and validate a section (rules of `workload.rst` checked at LOAD_ELF).
    pub fn parse(s: &[u8]) -> Result<Workload, WorkloadError> {
        if s.len() < HEADER_LEN {
            return err(format!(
                "section of {} bytes is shorter than the header",
                s.len()
            ));
        }
        if &s[0..8] != MAGIC {
            return err("bad magic");
        }
        let major = u16le(s, 8).unwrap();
        if major != VERSION_MAJOR {
            return err(format!("version {major} is not supported"));
        }
        let hlen = u32le(s, 12).unwrap() as usize;
        let dlen = u32le(s, 16).unwrap() as usize;
        let n = u32le(s, 20).unwrap() as usize;
        if hlen < HEADER_LEN || dlen < LAYER_LEN {
            return err(format!("header length {hlen}, descriptor length {dlen}"));
        }
        if n == 0 || n > MAX_LAYERS {
            return err(format!("{n} layers"));
        }
        let tend = n
            .checked_mul(dlen)
            .and_then(|t| t.checked_add(hlen))
            .filter(|&e| e <= s.len())
            .ok_or_else(|| WorkloadError("layer table beyond the section".into()))?;
        let table = &s[hlen..tend];
        let crc = u32le(s, 48).unwrap();
        if crc32(table) != crc {
            return err(format!(
                "layer table CRC {:#010x}, header says {crc:#010x}",
                crc32(table)
            ));
        }
        let w = Workload {
            version_minor: u16le(s, 10).unwrap(),
            input_offset: u32le(s, 24).unwrap() as u64,
            output_offset: u32le(s, 28).unwrap() as u64,
            doorbell_offset: u32le(s, 32).unwrap() as u64,
            done_sem: s[36],
            latency_ns: u32le(s, 40).unwrap(),
            constants_len: u32le(s, 44).unwrap() as u64,
            layers: (0..n)
                .map(|i| {
                    let d = &table[i * dlen..];
                    Layer {
                        in_features: u32le(d, 0).unwrap(),
                        out_features: u32le(d, 4).unwrap(),
                        weights_offset: u64le(d, 8).unwrap(),
                        bias_offset: u64le(d, 16).unwrap(),
                        multiplier: u32le(d, 24).unwrap(),
                        shift: d[28],
                        activation: d[29],
                    }
                })
                .collect(),
        };
        if !w.doorbell_offset.is_multiple_of(4) {
            return err("doorbell offset not a multiple of 4");
        }
        if w.done_sem > 31 {
            return err(format!("done semaphore {}", w.done_sem));
        }
        for (i, l) in w.layers.iter().enumerate() {
            let f = 1..=MAX_FEATURES;
            if !f.contains(&l.in_features) || !f.contains(&l.out_features) {
                return err(format!(
                    "layer {i}: {} x {} features",
                    l.in_features, l.out_features
                ));
            }
            if i > 0 && l.in_features != w.layers[i - 1].out_features {
                return err(format!("layer {i}: input does not match layer {}", i - 1));
            }
            if l.multiplier >= 1 << 31 || l.shift > 62 || l.activation > 1 {
                return err(format!(
                    "layer {i}: multiplier {}, shift {}, activation {}",
                    l.multiplier, l.shift, l.activation
                ));
            }
            if !l.bias_offset.is_multiple_of(4) {
                return err(format!("layer {i}: bias offset not a multiple of 4"));
            }
            let wend = l
                .weights_offset
                .checked_add(l.in_features as u64 * l.out_features as u64);
            let bend = l.bias_offset.checked_add(4 * l.out_features as u64);
            if wend.is_none_or(|e| e > w.constants_len) || bend.is_none_or(|e| e > w.constants_len)
            {
                return err(format!(
                    "layer {i}: weights or biases beyond constants_len {}",
                    w.constants_len
                ));
            }
        }
        let (ib, ie) = (w.input_offset, w.input_offset + w.input_len() as u64);
        let (ob, oe) = (w.output_offset, w.output_offset + w.output_len() as u64);
        if ie > IO_LIMIT || oe > IO_LIMIT {
            return err("input or output region beyond 128 MiB");
        }
        if ib < oe && ob < ie {
            return err("input and output regions overlap");
        }
        Ok(w)
    }

    /// Checks at ACTIVATE: the constants are large enough and every bias is in range.
    pub fn check_constants(&self, constants: &[u8]) -> Result<(), WorkloadError> {
        if (constants.len() as u64) < self.constants_len {
            return err(format!(
                "constants of {} bytes, the workload needs {}",
                constants.len(),
                self.constants_len
            ));
        }
        for (i, l) in self.layers.iter().enumerate() {
            for j in 0..l.out_features as usize {
                let b = bias(constants, l, j) as i64;
                if b.abs() > BIAS_LIMIT {
                    return err(format!("layer {i}: bias {j} = {b} out of range"));
                }
            }
        }
        Ok(())
    }

    /// Run the model on `input` (`input_len()` bytes) with validated `constants`.
    pub fn compute(&self, constants: &[u8], input: &[u8]) -> Vec<u8> {
        let mut x: Vec<i8> = input.iter().map(|&b| b as i8).collect();
        for l in &self.layers {
            x = layer(constants, l, &x);
        }
        x.into_iter().map(|v| v as u8).collect()
    }
}

fn bias(constants: &[u8], l: &Layer, j: usize) -> i32 {
    let o = l.bias_offset as usize + 4 * j;
    i32::from_le_bytes(constants[o..o + 4].try_into().unwrap())
}

/// One layer of the reference arithmetic.
pub fn layer(constants: &[u8], l: &Layer, x: &[i8]) -> Vec<i8> {
    let n = l.in_features as usize;
    let lo: i64 = if l.activation == 1 { 0 } else { -128 };
    (0..l.out_features as usize)
        .map(|j| {
            let w = &constants[l.weights_offset as usize + j * n..][..n];
            let mut acc = bias(constants, l, j) as i64;
            for (wi, xi) in w.iter().zip(x) {
                acc += (*wi as i8 as i64) * (*xi as i64);
            }
            let p = acc * l.multiplier as i64;
            let r = if l.shift == 0 {
                p
            } else {
                (p + (1i64 << (l.shift - 1))) >> l.shift
            };
            r.clamp(lo, 127) as i8
        })
        .collect()
}

/// Builder used by tests and the benchmark: encode a section (format 1.0).
pub fn encode_section(w: &Workload) -> Vec<u8> {
    let mut table = Vec::new();
    for l in &w.layers {
        table.extend_from_slice(&l.in_features.to_le_bytes());
        table.extend_from_slice(&l.out_features.to_le_bytes());
        table.extend_from_slice(&l.weights_offset.to_le_bytes());
        table.extend_from_slice(&l.bias_offset.to_le_bytes());
        table.extend_from_slice(&l.multiplier.to_le_bytes());
        table.extend_from_slice(&[l.shift, l.activation, 0, 0]);
    }
    let mut s = Vec::new();
    s.extend_from_slice(MAGIC);
    s.extend_from_slice(&VERSION_MAJOR.to_le_bytes());
    s.extend_from_slice(&w.version_minor.to_le_bytes());
    s.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    s.extend_from_slice(&(LAYER_LEN as u32).to_le_bytes());
    s.extend_from_slice(&(w.layers.len() as u32).to_le_bytes());
    s.extend_from_slice(&(w.input_offset as u32).to_le_bytes());
    s.extend_from_slice(&(w.output_offset as u32).to_le_bytes());
    s.extend_from_slice(&(w.doorbell_offset as u32).to_le_bytes());
    s.extend_from_slice(&[w.done_sem, 0, 0, 0]);
    s.extend_from_slice(&w.latency_ns.to_le_bytes());
    s.extend_from_slice(&(w.constants_len as u32).to_le_bytes());
    s.extend_from_slice(&crc32(&table).to_le_bytes());
    s.resize(HEADER_LEN, 0);
    s.extend_from_slice(&table);
    s
}

/// Builder used by tests and the benchmark: a minimal ELF64 LE holding `sections`
/// (name, contents) plus the section name table.
pub fn encode_elf(sections: &[(&str, &[u8])]) -> Vec<u8> {
    let mut strtab = vec![0u8];
    let mut names = Vec::new();
    for (n, _) in sections {
        names.push(strtab.len() as u32);
        strtab.extend_from_slice(n.as_bytes());
        strtab.push(0);
    }
    let shstr_name = strtab.len() as u32;
    strtab.extend_from_slice(b".shstrtab\0");
    let mut body = vec![0u8; 64];
    let mut hdrs = vec![[0u8; 64]]; // null section
    let mut add = |body: &mut Vec<u8>, name: u32, ty: u32, data: &[u8]| {
        while !body.len().is_multiple_of(8) {
            body.push(0);
        }
        let off = body.len() as u64;
        body.extend_from_slice(data);
        let mut h = [0u8; 64];
        h[0..4].copy_from_slice(&name.to_le_bytes());
        h[4..8].copy_from_slice(&ty.to_le_bytes());
        h[0x18..0x20].copy_from_slice(&off.to_le_bytes());
        h[0x20..0x28].copy_from_slice(&(data.len() as u64).to_le_bytes());
        h[0x30..0x38].copy_from_slice(&1u64.to_le_bytes());
        hdrs.push(h);
    };
    for (i, (_, d)) in sections.iter().enumerate() {
        add(&mut body, names[i], 1, d);
    }
    add(&mut body, shstr_name, 3, &strtab);
    while !body.len().is_multiple_of(8) {
        body.push(0);
    }
    let shoff = body.len() as u64;
    let shnum = hdrs.len() as u16;
    for h in &hdrs {
        body.extend_from_slice(h);
    }
    body[0..4].copy_from_slice(b"\x7fELF");
    body[4] = 2;
    body[5] = 1;
    body[6] = 1;
    body[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    body[0x12..0x14].copy_from_slice(&164u16.to_le_bytes()); // EM_QDSP6
    body[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
    body[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    body[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
    body[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    body[0x3c..0x3e].copy_from_slice(&shnum.to_le_bytes());
    body[0x3e..0x40].copy_from_slice(&(shnum - 1).to_le_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of workload.rst.
    pub(crate) fn example() -> (Workload, Vec<u8>) {
        let mut c = vec![0u8; 208];
        for (k, b) in c[0..128].iter_mut().enumerate() {
            *b = ((k as i32 * 37 % 23) - 11) as i8 as u8;
        }
        for j in 0..8 {
            c[128 + 4 * j..132 + 4 * j].copy_from_slice(&(j as i32 * 50 - 100).to_le_bytes());
        }
        for (k, b) in c[160..192].iter_mut().enumerate() {
            *b = ((k as i32 * 11 % 9) - 4) as i8 as u8;
        }
        for j in 0..4 {
            c[192 + 4 * j..196 + 4 * j].copy_from_slice(&(7 - 5 * j as i32).to_le_bytes());
        }
        let w = Workload {
            version_minor: 0,
            input_offset: 0,
            output_offset: 0x1000,
            doorbell_offset: 0,
            done_sem: 0,
            latency_ns: 0,
            constants_len: 208,
            layers: vec![
                Layer {
                    in_features: 16,
                    out_features: 8,
                    weights_offset: 0,
                    bias_offset: 128,
                    multiplier: 1,
                    shift: 4,
                    activation: 1,
                },
                Layer {
                    in_features: 8,
                    out_features: 4,
                    weights_offset: 160,
                    bias_offset: 192,
                    multiplier: 3,
                    shift: 2,
                    activation: 0,
                },
            ],
        };
        (w, c)
    }

    #[test]
    fn workload_section_round_trips_through_an_elf() {
        let (w, _) = example();
        let elf = encode_elf(&[(".text", &[0u8; 12]), (SECTION, &encode_section(&w))]);
        let s = elf_section(&elf, SECTION).unwrap().unwrap();
        assert_eq!(Workload::parse(s).unwrap(), w);
        assert_eq!(elf_section(&elf, "metadata_fb").unwrap(), None);
        assert!(elf_section(&elf[..40], SECTION).is_err());
        let mut elf32 = elf.clone();
        elf32[4] = 1;
        assert!(elf_section(&elf32, SECTION).is_err());
    }

    #[test]
    fn workload_rounding_and_saturation_follow_the_document() {
        let l = |mult, shift, act| Layer {
            in_features: 1,
            out_features: 1,
            weights_offset: 0,
            bias_offset: 4,
            multiplier: mult,
            shift,
            activation: act,
        };
        // constants: weight 1, bias b
        let c = |b: i32| {
            let mut v = vec![1u8, 0, 0, 0];
            v.extend_from_slice(&b.to_le_bytes());
            v
        };
        // acc = b + x; documented examples: -5 >> 1 rounds to -2, 5 -> 3
        assert_eq!(layer(&c(0), &l(1, 1, 0), &[-5]), vec![-2]);
        assert_eq!(layer(&c(0), &l(1, 1, 0), &[5]), vec![3]);
        assert_eq!(layer(&c(0), &l(1, 1, 0), &[-6]), vec![-3]);
        assert_eq!(layer(&c(1000), &l(1, 0, 0), &[0]), vec![127]);
        assert_eq!(layer(&c(-1000), &l(1, 0, 0), &[0]), vec![-128]);
        assert_eq!(layer(&c(-1000), &l(1, 0, 1), &[0]), vec![0]);
        assert_eq!(layer(&c(100), &l(3, 2, 1), &[10]), vec![83]); // (330 + 2) >> 2
    }

    #[test]
    fn workload_example_matches_a_hand_computed_value() {
        let (w, c) = example();
        let x: Vec<u8> = (0..16).map(|i| (i * 9 - 70) as i8 as u8).collect();
        let y = w.compute(&c, &x);
        // Independent straightforward evaluation.
        let mut h = [0i64; 8];
        for (j, hj) in h.iter_mut().enumerate() {
            let mut a = (j as i64) * 50 - 100;
            for i in 0..16 {
                a += (c[j * 16 + i] as i8 as i64) * (x[i] as i8 as i64);
            }
            *hj = ((a + 8).div_euclid(16)).clamp(0, 127);
        }
        for j in 0..4 {
            let mut a = 7 - 5 * j as i64;
            for (i, hi) in h.iter().enumerate() {
                a += (c[160 + j * 8 + i] as i8 as i64) * hi;
            }
            assert_eq!(
                y[j] as i8 as i64,
                ((3 * a + 2).div_euclid(4)).clamp(-128, 127)
            );
        }
        w.check_constants(&c).unwrap();
        assert!(w.check_constants(&c[..200]).is_err());
    }

    #[test]
    fn workload_validation_refuses_every_broken_rule() {
        let (w, _) = example();
        let good = encode_section(&w);
        assert!(Workload::parse(&good).is_ok());
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut m = good.clone();
        m[0] = b'X';
        cases.push(("magic", m));
        let mut m = good.clone();
        m[8] = 2;
        cases.push(("major", m));
        let mut m = good.clone();
        m[64] ^= 1; // table byte: CRC mismatch
        cases.push(("crc", m));
        cases.push(("short", good[..100].to_vec()));
        type Edit = Box<dyn Fn(&mut Workload)>;
        let variants: Vec<(&str, Edit)> = vec![
            ("no layers", Box::new(|w| w.layers.clear())),
            ("chain", Box::new(|w| w.layers[1].in_features = 9)),
            ("features", Box::new(|w| w.layers[0].in_features = 5000)),
            ("shift", Box::new(|w| w.layers[0].shift = 63)),
            ("activation", Box::new(|w| w.layers[0].activation = 2)),
            ("bias align", Box::new(|w| w.layers[0].bias_offset = 130)),
            (
                "weights range",
                Box::new(|w| w.layers[1].weights_offset = 190),
            ),
            ("overlap", Box::new(|w| w.output_offset = 8)),
            ("io limit", Box::new(|w| w.output_offset = IO_LIMIT)),
            ("doorbell align", Box::new(|w| w.doorbell_offset = 2)),
            ("semaphore", Box::new(|w| w.done_sem = 32)),
        ];
        for (name, f) in variants {
            let mut w2 = w.clone();
            f(&mut w2);
            cases.push((name, encode_section(&w2)));
        }
        for (name, s) in cases {
            assert!(Workload::parse(&s).is_err(), "{name} accepted");
        }
        // A bias beyond 2^24 is refused when the constants are known.
        let (w, mut c) = example();
        c[128..132].copy_from_slice(&((1 << 24) + 1i32).to_le_bytes());
        assert!(w.check_constants(&c).is_err());
    }
}
