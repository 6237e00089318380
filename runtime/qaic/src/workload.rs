// SPDX-License-Identifier: MIT OR Apache-2.0
//! The emulated card's compute stand-in: a quantized int8 multi-layer
//! perceptron described by the `qaic_emu_workload` ELF section, format 1.0
//! (`Documentation/workload.rst`).
//!
//! This module encodes and parses the section, checks the rules the device
//! applies at `LOAD_ELF` and `ACTIVATE`, and holds the CPU reference of the
//! arithmetic ([`Workload::reference`]) that device results are checked
//! against. It needs no device.
//!
//! ```
//! use qaic::workload::{Layer, LayerActivation, Workload};
//!
//! // One layer, 2 inputs, 1 output: y = clamp((5 + 3*x0 - 2*x1) * 1 >> 1).
//! let mut constants = vec![3u8, (-2i8) as u8, 0, 0];
//! constants.extend_from_slice(&5i32.to_le_bytes());
//! let w = Workload {
//!     output_offset: 0x100,
//!     constants_len: 8,
//!     layers: vec![Layer {
//!         in_features: 2,
//!         out_features: 1,
//!         weights_offset: 0,
//!         bias_offset: 4,
//!         multiplier: 1,
//!         shift: 1,
//!         activation: LayerActivation::None,
//!     }],
//!     ..Default::default()
//! };
//! w.validate()?;
//! // acc = 5 + 3*10 - 2*4 = 27; (27 + 1) >> 1 = 14
//! assert_eq!(w.reference(&constants, &[10, 4])?, vec![14]);
//! // the section round-trips
//! assert_eq!(Workload::parse(&w.encode()?)?, w);
//! # Ok::<(), qaic::workload::WorkloadError>(())
//! ```

use std::fmt;

/// Name of the ELF section that carries the workload.
pub const SECTION_NAME: &str = "qaic_emu_workload";
/// Magic at the start of the section.
pub const MAGIC: [u8; 8] = *b"QEMUWKLD";
/// Major version written and understood.
pub const VERSION_MAJOR: u16 = 1;
/// Minor version written.
pub const VERSION_MINOR: u16 = 0;
/// Header length of version 1.0 (where the layer table starts).
pub const HEADER_LEN: usize = 64;
/// Layer descriptor length of version 1.0.
pub const LAYER_DESC_LEN: usize = 32;
/// Most layers in one workload.
pub const MAX_LAYERS: usize = 16;
/// Most input or output features of one layer.
pub const MAX_FEATURES: u32 = 4096;
/// The input and output regions end at or below this DDR offset (the static
/// half of the activation's DDR window).
pub const IO_LIMIT: u64 = 0x0800_0000;
/// Largest absolute bias value.
pub const BIAS_LIMIT: i64 = 1 << 24;
/// Largest semaphore index for `done_sem`.
pub const MAX_DONE_SEM: u8 = 31;
/// Largest requantization shift.
pub const MAX_SHIFT: u8 = 62;

/// Non-linearity applied after requantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LayerActivation {
    /// None: output range `[-128, 127]` (encoded 0).
    #[default]
    None,
    /// ReLU: output range `[0, 127]` (encoded 1).
    Relu,
}

impl LayerActivation {
    /// The encoded value.
    pub fn code(self) -> u8 {
        match self {
            LayerActivation::None => 0,
            LayerActivation::Relu => 1,
        }
    }

    /// Decodes a value; `None` for an unknown one.
    pub fn from_code(code: u8) -> Option<LayerActivation> {
        match code {
            0 => Some(LayerActivation::None),
            1 => Some(LayerActivation::Relu),
            _ => None,
        }
    }

    /// Lower clamp bound of the layer's outputs.
    pub fn lower_bound(self) -> i64 {
        match self {
            LayerActivation::None => -128,
            LayerActivation::Relu => 0,
        }
    }
}

/// Why a workload section, its ELF or its constants were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// The image is not a well-formed ELF64 little-endian file.
    #[error("not a usable ELF64 little-endian image: {0}")]
    Elf(String),
    /// The ELF has no `qaic_emu_workload` section.
    #[error("the ELF has no {SECTION_NAME} section")]
    NoSection,
    /// The section is shorter than its header and layer table.
    #[error("workload section of {len} bytes, needs {need}")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The section does not start with `QEMUWKLD`.
    #[error("bad workload magic {0:02x?}")]
    Magic([u8; 8]),
    /// A major version other than 1.
    #[error("workload format major version {0} is not supported (1 is)")]
    Version(u16),
    /// `header_len` below 64 or `layer_desc_len` below 32.
    #[error("header length {header_len} / layer descriptor length {layer_desc_len} too small")]
    Lengths {
        /// Header length field.
        header_len: u32,
        /// Layer descriptor length field.
        layer_desc_len: u32,
    },
    /// `num_layers` outside `1..=16`.
    #[error("{0} layers (1 ..= 16 allowed)")]
    LayerCount(usize),
    /// The layer table's CRC-32 does not match the header.
    #[error("layer table CRC {actual:#010x}, header says {expected:#010x}")]
    TableCrc {
        /// CRC in the header.
        expected: u32,
        /// CRC of the table.
        actual: u32,
    },
    /// A header field has a value the format does not allow.
    #[error("header field {field} = {value:#x} is invalid")]
    Header {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// A layer field has a value the format does not allow.
    #[error("layer {layer}: {field} = {value:#x} is invalid")]
    Layer {
        /// Layer index.
        layer: usize,
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// A layer's input count differs from the previous layer's output count.
    #[error("layer {layer} has {in_features} inputs, layer {} has {previous_out} outputs", layer - 1)]
    Chain {
        /// Layer index.
        layer: usize,
        /// Its `in_features`.
        in_features: u32,
        /// The previous layer's `out_features`.
        previous_out: u32,
    },
    /// The input and output regions overlap or end above 128 MiB.
    #[error("input [{input_offset:#x}, +{input_len}) / output [{output_offset:#x}, +{output_len}) overlap or end above {IO_LIMIT:#x}")]
    Regions {
        /// Input offset.
        input_offset: u32,
        /// Input bytes.
        input_len: u32,
        /// Output offset.
        output_offset: u32,
        /// Output bytes.
        output_len: u32,
    },
    /// A weight or bias range ends beyond `constants_len`.
    #[error(
        "layer {layer}: {what} [{start:#x}, {end:#x}) ends beyond constants_len {constants_len:#x}"
    )]
    ConstantsRange {
        /// Layer index.
        layer: usize,
        /// `"weights"` or `"biases"`.
        what: &'static str,
        /// Start offset.
        start: u64,
        /// End offset.
        end: u64,
        /// The header's `constants_len`.
        constants_len: u32,
    },
    /// The constants are shorter than `constants_len`.
    #[error("{have} bytes of constants, the workload reads {need}")]
    ConstantsTooShort {
        /// Bytes given.
        have: usize,
        /// `constants_len`.
        need: u32,
    },
    /// A bias outside `[-2^24, 2^24]`.
    #[error("layer {layer}: bias {index} = {value} is outside [-2^24, 2^24]")]
    BiasRange {
        /// Layer index.
        layer: usize,
        /// Bias index.
        index: usize,
        /// The value.
        value: i32,
    },
    /// An input vector of the wrong length.
    #[error("input of {actual} bytes, the workload takes {expected}")]
    InputLen {
        /// `in_features` of layer 0.
        expected: usize,
        /// Length given.
        actual: usize,
    },
}

type Result<T> = std::result::Result<T, WorkloadError>;

/// One fully connected layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Layer {
    /// Inputs, 1 ..= 4096; equal to the previous layer's outputs.
    pub in_features: u32,
    /// Outputs, 1 ..= 4096.
    pub out_features: u32,
    /// Offset in the constants of the int8 weights, `out_features` rows of
    /// `in_features` bytes.
    pub weights_offset: u64,
    /// Offset in the constants of the `out_features` little-endian int32
    /// biases; multiple of 4.
    pub bias_offset: u64,
    /// Requantization multiplier, below `2^31`.
    pub multiplier: u32,
    /// Requantization right shift, 0 ..= 62 (rounding half up).
    pub shift: u8,
    /// Non-linearity.
    pub activation: LayerActivation,
}

impl Layer {
    fn weights_end(&self) -> u64 {
        self.weights_offset
            .saturating_add(u64::from(self.in_features) * u64::from(self.out_features))
    }

    fn bias_end(&self) -> u64 {
        self.bias_offset
            .saturating_add(4 * u64::from(self.out_features))
    }

    fn encode(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.in_features.to_le_bytes());
        out[4..8].copy_from_slice(&self.out_features.to_le_bytes());
        out[8..16].copy_from_slice(&self.weights_offset.to_le_bytes());
        out[16..24].copy_from_slice(&self.bias_offset.to_le_bytes());
        out[24..28].copy_from_slice(&self.multiplier.to_le_bytes());
        out[28] = self.shift;
        out[29] = self.activation.code();
        out[30..32].fill(0);
    }

    /// One layer of the CPU reference: `x` has `in_features` elements,
    /// `constants` holds the weights and biases (ranges already checked).
    fn apply(&self, constants: &[u8], x: &[i8]) -> Vec<i8> {
        let n_in = self.in_features as usize;
        let w0 = self.weights_offset as usize;
        let b0 = self.bias_offset as usize;
        let lo = self.activation.lower_bound();
        (0..self.out_features as usize)
            .map(|j| {
                let b = &constants[b0 + 4 * j..b0 + 4 * j + 4];
                let mut acc = i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                let row = &constants[w0 + j * n_in..w0 + (j + 1) * n_in];
                for (w, xi) in row.iter().zip(x) {
                    acc += i64::from(*w as i8) * i64::from(*xi);
                }
                let p = acc * i64::from(self.multiplier);
                let r = match self.shift {
                    0 => p,
                    s => (p + (1i64 << (s - 1))) >> s,
                };
                r.clamp(lo, 127) as i8
            })
            .collect()
    }
}

/// A workload: the header fields of the section and its layers.
///
/// [`Workload::encode`] writes format 1.0 (`version_minor` 0, `flags` 0,
/// `header_len` 64, `layer_desc_len` 32, the table CRC computed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Workload {
    /// Input vector offset relative to the activation's `ddr_base`.
    pub input_offset: u32,
    /// Output vector offset relative to `ddr_base`.
    pub output_offset: u32,
    /// Input doorbell offset relative to `mcid_base`; multiple of 4.
    pub doorbell_offset: u32,
    /// Semaphore incremented after each inference, 0 ..= 31.
    pub done_sem: u8,
    /// Nominal compute time of one inference.
    pub latency_ns: u32,
    /// Bytes of constants the model reads (0: none).
    pub constants_len: u32,
    /// The layers, 1 ..= 16.
    pub layers: Vec<Layer>,
}

impl Workload {
    /// Bytes of the input vector (`in_features` of layer 0; 0 without layers).
    pub fn input_len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.in_features as usize)
    }

    /// Bytes of the output vector (`out_features` of the last layer).
    pub fn output_len(&self) -> usize {
        self.layers.last().map_or(0, |l| l.out_features as usize)
    }

    /// Checks the rules the device applies at `LOAD_ELF`.
    pub fn validate(&self) -> Result<()> {
        let n = self.layers.len();
        if n == 0 || n > MAX_LAYERS {
            return Err(WorkloadError::LayerCount(n));
        }
        if !self.doorbell_offset.is_multiple_of(4) {
            return Err(WorkloadError::Header {
                field: "doorbell_offset",
                value: self.doorbell_offset.into(),
            });
        }
        if self.done_sem > MAX_DONE_SEM {
            return Err(WorkloadError::Header {
                field: "done_sem",
                value: self.done_sem.into(),
            });
        }
        for (k, l) in self.layers.iter().enumerate() {
            let bad = |field, value: u64| WorkloadError::Layer {
                layer: k,
                field,
                value,
            };
            if !(1..=MAX_FEATURES).contains(&l.in_features) {
                return Err(bad("in_features", l.in_features.into()));
            }
            if !(1..=MAX_FEATURES).contains(&l.out_features) {
                return Err(bad("out_features", l.out_features.into()));
            }
            if k > 0 && l.in_features != self.layers[k - 1].out_features {
                return Err(WorkloadError::Chain {
                    layer: k,
                    in_features: l.in_features,
                    previous_out: self.layers[k - 1].out_features,
                });
            }
            if !l.bias_offset.is_multiple_of(4) {
                return Err(bad("bias_offset", l.bias_offset));
            }
            if l.multiplier >= 1 << 31 {
                return Err(bad("multiplier", l.multiplier.into()));
            }
            if l.shift > MAX_SHIFT {
                return Err(bad("shift", l.shift.into()));
            }
            for (what, start, end) in [
                ("weights", l.weights_offset, l.weights_end()),
                ("biases", l.bias_offset, l.bias_end()),
            ] {
                if end > u64::from(self.constants_len) {
                    return Err(WorkloadError::ConstantsRange {
                        layer: k,
                        what,
                        start,
                        end,
                        constants_len: self.constants_len,
                    });
                }
            }
        }
        let (i0, il) = (u64::from(self.input_offset), self.input_len() as u64);
        let (o0, ol) = (u64::from(self.output_offset), self.output_len() as u64);
        let overlap = i0 < o0 + ol && o0 < i0 + il;
        if overlap || i0 + il > IO_LIMIT || o0 + ol > IO_LIMIT {
            return Err(WorkloadError::Regions {
                input_offset: self.input_offset,
                input_len: il as u32,
                output_offset: self.output_offset,
                output_len: ol as u32,
            });
        }
        Ok(())
    }

    /// Checks constants against the workload (the rules the device applies
    /// at `ACTIVATE`): at least `constants_len` bytes, every bias in
    /// `[-2^24, 2^24]`. The workload itself must be valid.
    pub fn validate_constants(&self, constants: &[u8]) -> Result<()> {
        if constants.len() < self.constants_len as usize {
            return Err(WorkloadError::ConstantsTooShort {
                have: constants.len(),
                need: self.constants_len,
            });
        }
        for (k, l) in self.layers.iter().enumerate() {
            let b0 = l.bias_offset as usize;
            for j in 0..l.out_features as usize {
                let b = &constants[b0 + 4 * j..b0 + 4 * j + 4];
                let value = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if i64::from(value).abs() > BIAS_LIMIT {
                    return Err(WorkloadError::BiasRange {
                        layer: k,
                        index: j,
                        value,
                    });
                }
            }
        }
        Ok(())
    }

    /// The section bytes, format 1.0, after [`Workload::validate`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let mut table = vec![0u8; self.layers.len() * LAYER_DESC_LEN];
        for (l, out) in self.layers.iter().zip(table.chunks_mut(LAYER_DESC_LEN)) {
            l.encode(out);
        }
        let mut s = vec![0u8; HEADER_LEN];
        s[0..8].copy_from_slice(&MAGIC);
        s[8..10].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
        s[10..12].copy_from_slice(&VERSION_MINOR.to_le_bytes());
        s[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        s[16..20].copy_from_slice(&(LAYER_DESC_LEN as u32).to_le_bytes());
        s[20..24].copy_from_slice(&(self.layers.len() as u32).to_le_bytes());
        s[24..28].copy_from_slice(&self.input_offset.to_le_bytes());
        s[28..32].copy_from_slice(&self.output_offset.to_le_bytes());
        s[32..36].copy_from_slice(&self.doorbell_offset.to_le_bytes());
        s[36] = self.done_sem;
        // 37: flags 0, 38..40 reserved
        s[40..44].copy_from_slice(&self.latency_ns.to_le_bytes());
        s[44..48].copy_from_slice(&self.constants_len.to_le_bytes());
        s[48..52].copy_from_slice(&crc32(&table).to_le_bytes());
        // 52..64 reserved
        s.extend_from_slice(&table);
        Ok(s)
    }

    /// Parses and validates a section as a reader of format 1.x does:
    /// any minor version, longer headers and descriptors skipped, reserved
    /// fields and `flags` ignored.
    pub fn parse(s: &[u8]) -> Result<Workload> {
        let u16_at = |o: usize| u16::from_le_bytes([s[o], s[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([s[o], s[o + 1], s[o + 2], s[o + 3]]);
        let u64_at = |o: usize| u64::from(u32_at(o)) | u64::from(u32_at(o + 4)) << 32;
        if s.len() < HEADER_LEN {
            return Err(WorkloadError::Truncated {
                len: s.len(),
                need: HEADER_LEN,
            });
        }
        let magic: [u8; 8] = s[0..8].try_into().expect("8 bytes");
        if magic != MAGIC {
            return Err(WorkloadError::Magic(magic));
        }
        let major = u16_at(8);
        if major != VERSION_MAJOR {
            return Err(WorkloadError::Version(major));
        }
        let (header_len, layer_desc_len) = (u32_at(12), u32_at(16));
        if (header_len as usize) < HEADER_LEN || (layer_desc_len as usize) < LAYER_DESC_LEN {
            return Err(WorkloadError::Lengths {
                header_len,
                layer_desc_len,
            });
        }
        let n = u32_at(20) as usize;
        if n == 0 || n > MAX_LAYERS {
            return Err(WorkloadError::LayerCount(n));
        }
        let (hl, dl) = (header_len as usize, layer_desc_len as usize);
        let need = hl.saturating_add(n.saturating_mul(dl));
        if s.len() < need {
            return Err(WorkloadError::Truncated { len: s.len(), need });
        }
        let table = &s[hl..need];
        let (expected, actual) = (u32_at(48), crc32(table));
        if expected != actual {
            return Err(WorkloadError::TableCrc { expected, actual });
        }
        // s[37], flags: none defined in 1.0; ignored like the reserved fields, since a later
        // minor may define bits (as the emulator does)
        let mut layers = Vec::with_capacity(n);
        for k in 0..n {
            let o = hl + k * dl;
            let activation = LayerActivation::from_code(s[o + 29]).ok_or(WorkloadError::Layer {
                layer: k,
                field: "activation",
                value: s[o + 29].into(),
            })?;
            layers.push(Layer {
                in_features: u32_at(o),
                out_features: u32_at(o + 4),
                weights_offset: u64_at(o + 8),
                bias_offset: u64_at(o + 16),
                multiplier: u32_at(o + 24),
                shift: s[o + 28],
                activation,
            });
        }
        let w = Workload {
            input_offset: u32_at(24),
            output_offset: u32_at(28),
            doorbell_offset: u32_at(32),
            done_sem: s[36],
            latency_ns: u32_at(40),
            constants_len: u32_at(44),
            layers,
        };
        w.validate()?;
        Ok(w)
    }

    /// The CPU reference: the model's output for `input` (`input_len()`
    /// int8 values), computed with the exact integer arithmetic of the
    /// format. Checks the workload and the constants first.
    pub fn reference(&self, constants: &[u8], input: &[i8]) -> Result<Vec<i8>> {
        self.validate()?;
        self.validate_constants(constants)?;
        if input.len() != self.input_len() {
            return Err(WorkloadError::InputLen {
                expected: self.input_len(),
                actual: input.len(),
            });
        }
        let mut x = input.to_vec();
        for l in &self.layers {
            x = l.apply(constants, &x);
        }
        Ok(x)
    }
}

impl fmt::Display for Workload {
    /// `16 -> 8 (relu) -> 4`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(first) = self.layers.first() {
            write!(f, "{}", first.in_features)?;
        }
        for l in &self.layers {
            write!(f, " -> {}", l.out_features)?;
            if l.activation == LayerActivation::Relu {
                f.write_str(" (relu)")?;
            }
        }
        Ok(())
    }
}

/// CRC-32 as zlib's `crc32` (IEEE 802.3, reflected polynomial `0xedb88320`,
/// initial value and final XOR `0xffffffff`).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// A small deterministic pseudo-random generator (SplitMix64) for test
/// inputs and generated weights. Not for anything that needs real
/// randomness.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `lo ..= hi` (slightly biased for huge ranges; fine for tests).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }

    /// Fills `out` with random int8 values.
    pub fn fill_i8(&mut self, out: &mut [i8]) {
        for v in out {
            *v = self.next_u64() as i8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(i: u32, o: u32, w: u64, b: u64, m: u32, s: u8, a: LayerActivation) -> Layer {
        Layer {
            in_features: i,
            out_features: o,
            weights_offset: w,
            bias_offset: b,
            multiplier: m,
            shift: s,
            activation: a,
        }
    }

    /// The worked example of workload.rst: 16 -> 8 (ReLU) -> 4, constants
    /// of 208 bytes.
    fn doc_example() -> Workload {
        Workload {
            output_offset: 0x1000,
            constants_len: 208,
            layers: vec![
                layer(16, 8, 0, 128, 1, 4, LayerActivation::Relu),
                layer(8, 4, 160, 192, 3, 2, LayerActivation::None),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b"a"), 0xe8b7_be43);
    }

    #[test]
    fn header_and_layer_bytes_are_at_the_documented_offsets() {
        let w = Workload {
            input_offset: 0x10,
            output_offset: 0x2000,
            doorbell_offset: 0x44,
            done_sem: 7,
            latency_ns: 1500,
            constants_len: 208,
            layers: doc_example().layers,
        };
        let s = w.encode().unwrap();
        assert_eq!(s.len(), 64 + 2 * 32);
        assert_eq!(&s[0..8], &[0x51, 0x45, 0x4d, 0x55, 0x57, 0x4b, 0x4c, 0x44]);
        let hdr: [u8; 64] = [
            b'Q', b'E', b'M', b'U', b'W', b'K', b'L', b'D', // magic
            1, 0, 0, 0, // version 1.0
            64, 0, 0, 0, // header_len
            32, 0, 0, 0, // layer_desc_len
            2, 0, 0, 0, // num_layers
            0x10, 0, 0, 0, // input_offset
            0, 0x20, 0, 0, // output_offset
            0x44, 0, 0, 0, // doorbell_offset
            7, 0, 0, 0, // done_sem, flags, reserved
            0xdc, 0x05, 0, 0, // latency_ns 1500
            208, 0, 0, 0, // constants_len
            0, 0, 0, 0, // crc (checked below)
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // reserved
        ];
        assert_eq!(&s[..48], &hdr[..48]);
        assert_eq!(&s[52..64], &hdr[52..]);
        assert_eq!(
            u32::from_le_bytes(s[48..52].try_into().unwrap()),
            crc32(&s[64..])
        );
        let l1: [u8; 32] = [
            8, 0, 0, 0, // in
            4, 0, 0, 0, // out
            160, 0, 0, 0, 0, 0, 0, 0, // weights_offset
            192, 0, 0, 0, 0, 0, 0, 0, // bias_offset
            3, 0, 0, 0, // multiplier
            2, 0, 0, 0, // shift, activation none, reserved
        ];
        assert_eq!(&s[96..128], &l1);
        assert_eq!(s[64 + 28], 4);
        assert_eq!(s[64 + 29], 1, "layer 0 is ReLU");
    }

    #[test]
    fn sections_round_trip() {
        let w = doc_example();
        assert_eq!(Workload::parse(&w.encode().unwrap()).unwrap(), w);
        assert_eq!(w.to_string(), "16 -> 8 (relu) -> 4");
        assert_eq!((w.input_len(), w.output_len()), (16, 4));
    }

    #[test]
    fn readers_of_1x_skip_longer_headers_and_descriptors() {
        let w = doc_example();
        let s = w.encode().unwrap();
        // header 72 bytes, descriptors 40 bytes, minor 3
        let mut t = s[..64].to_vec();
        t[10] = 3;
        t[12] = 72;
        t[16] = 40;
        t.extend_from_slice(&[0xaa; 8]);
        for d in s[64..].chunks(32) {
            t.extend_from_slice(d);
            t.extend_from_slice(&[0x55; 8]);
        }
        let crc = crc32(&t[72..]);
        t[48..52].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Workload::parse(&t).unwrap(), w);
    }

    #[test]
    fn malformed_sections_are_refused() {
        let s = doc_example().encode().unwrap();
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut t = s.clone();
            f(&mut t);
            Workload::parse(&t)
        };
        let recrc = |t: &mut Vec<u8>| {
            let c = crc32(&t[64..]);
            t[48..52].copy_from_slice(&c.to_le_bytes());
        };
        assert!(matches!(
            Workload::parse(&s[..63]),
            Err(WorkloadError::Truncated { need: 64, .. })
        ));
        assert!(matches!(
            Workload::parse(&s[..100]),
            Err(WorkloadError::Truncated { need: 128, .. })
        ));
        assert!(matches!(
            with(&|t| t[0] = b'X'),
            Err(WorkloadError::Magic(_))
        ));
        assert_eq!(with(&|t| t[8] = 2), Err(WorkloadError::Version(2)));
        assert!(matches!(
            with(&|t| t[12] = 60),
            Err(WorkloadError::Lengths { .. })
        ));
        assert_eq!(with(&|t| t[20] = 0), Err(WorkloadError::LayerCount(0)));
        assert_eq!(with(&|t| t[20] = 17), Err(WorkloadError::LayerCount(17)));
        assert!(matches!(
            with(&|t| t[64] ^= 1),
            Err(WorkloadError::TableCrc { .. })
        ));
        // flags and reserved bytes are ignored by a 1.x reader
        assert_eq!(
            with(&|t| {
                t[37] = 1;
                t[38] = 0xff;
                t[60] = 0xff
            }),
            Ok(doc_example())
        );
        assert!(matches!(
            with(&|t| {
                t[64 + 29] = 2;
                recrc(t)
            }),
            Err(WorkloadError::Layer {
                field: "activation",
                ..
            })
        ));
        // layer 1 input count no longer chains
        assert!(matches!(
            with(&|t| {
                t[96] = 9;
                recrc(t)
            }),
            Err(WorkloadError::Chain { layer: 1, .. })
        ));
    }

    #[test]
    fn load_rules() {
        let ok = doc_example();
        ok.validate().unwrap();
        let check = |f: &dyn Fn(&mut Workload)| {
            let mut w = ok.clone();
            f(&mut w);
            w.validate()
        };
        assert!(matches!(
            check(&|w| w.doorbell_offset = 2),
            Err(WorkloadError::Header {
                field: "doorbell_offset",
                ..
            })
        ));
        assert!(matches!(
            check(&|w| w.done_sem = 32),
            Err(WorkloadError::Header {
                field: "done_sem",
                ..
            })
        ));
        check(&|w| w.done_sem = 31).unwrap();
        assert!(matches!(
            check(&|w| w.layers[0].in_features = 0),
            Err(WorkloadError::Layer {
                field: "in_features",
                ..
            })
        ));
        assert!(matches!(
            check(&|w| w.layers[1].out_features = 4097),
            Err(WorkloadError::Layer {
                field: "out_features",
                ..
            })
        ));
        assert!(matches!(
            check(&|w| w.layers[1].bias_offset = 194),
            Err(WorkloadError::Layer {
                field: "bias_offset",
                ..
            })
        ));
        assert!(matches!(
            check(&|w| w.layers[0].multiplier = 1 << 31),
            Err(WorkloadError::Layer {
                field: "multiplier",
                ..
            })
        ));
        check(&|w| w.layers[0].multiplier = (1 << 31) - 1).unwrap();
        assert!(matches!(
            check(&|w| w.layers[0].shift = 63),
            Err(WorkloadError::Layer { field: "shift", .. })
        ));
        // b1 ends at 208 exactly; one byte less of constants is too little
        assert!(matches!(
            check(&|w| w.constants_len = 207),
            Err(WorkloadError::ConstantsRange {
                layer: 1,
                what: "biases",
                end: 208,
                ..
            })
        ));
        assert!(matches!(
            check(&|w| w.layers[0].weights_offset = 81),
            Err(WorkloadError::ConstantsRange {
                layer: 0,
                what: "weights",
                ..
            })
        ));
        // regions: output [0x1000, 0x1004) vs input [0, 16)
        assert!(matches!(
            check(&|w| w.output_offset = 15),
            Err(WorkloadError::Regions { .. })
        ));
        check(&|w| w.output_offset = 16).unwrap();
        check(&|w| w.input_offset = 0x1004).unwrap();
        assert!(matches!(
            check(&|w| w.input_offset = 0x1003),
            Err(WorkloadError::Regions { .. })
        ));
        check(&|w| w.output_offset = 0x0800_0000 - 4).unwrap();
        assert!(matches!(
            check(&|w| w.output_offset = 0x0800_0000 - 3),
            Err(WorkloadError::Regions { .. })
        ));
        assert!(matches!(
            check(&|w| w.layers.clear()),
            Err(WorkloadError::LayerCount(0))
        ));
    }

    #[test]
    fn activate_rules() {
        let w = doc_example();
        let mut c = vec![0u8; 208];
        w.validate_constants(&c).unwrap();
        assert!(matches!(
            w.validate_constants(&c[..207]),
            Err(WorkloadError::ConstantsTooShort {
                have: 207,
                need: 208
            })
        ));
        c[192 + 4..192 + 8].copy_from_slice(&(1i32 << 24).to_le_bytes());
        w.validate_constants(&c).unwrap();
        c[192 + 4..192 + 8].copy_from_slice(&(-(1i32 << 24)).to_le_bytes());
        w.validate_constants(&c).unwrap();
        c[192 + 4..192 + 8].copy_from_slice(&((1i32 << 24) + 1).to_le_bytes());
        assert_eq!(
            w.validate_constants(&c),
            Err(WorkloadError::BiasRange {
                layer: 1,
                index: 1,
                value: (1 << 24) + 1
            })
        );
    }

    /// The rounding examples of workload.rst: acc -5 and 5, multiplier 1,
    /// shift 1.
    #[test]
    fn rounding_is_half_up() {
        let one = |bias: i32, mult: u32, shift: u8, act| {
            let w = Workload {
                output_offset: 16,
                constants_len: 8,
                layers: vec![layer(1, 1, 0, 4, mult, shift, act)],
                ..Default::default()
            };
            let mut c = vec![0u8; 8];
            c[4..].copy_from_slice(&bias.to_le_bytes());
            w.reference(&c, &[0]).unwrap()[0]
        };
        use LayerActivation::*;
        assert_eq!(one(-5, 1, 1, None), -2);
        assert_eq!(one(5, 1, 1, None), 3);
        assert_eq!(one(-6, 1, 2, None), -1, "-1.5 rounds to -1");
        assert_eq!(one(-7, 1, 2, None), -2, "-1.75 rounds to -2");
        assert_eq!(one(7, 1, 0, None), 7, "shift 0: no rounding");
        assert_eq!(one(1000, 1, 0, None), 127);
        assert_eq!(one(-1000, 1, 0, None), -128);
        assert_eq!(one(-1000, 1, 0, Relu), 0);
        assert_eq!(one(-3, 1, 0, Relu), 0);
        // largest values: |acc| = 2^24, multiplier 2^31 - 1, shift 62
        assert_eq!(one(1 << 24, (1 << 31) - 1, 62, None), 0);
        assert_eq!(one(1 << 24, (1 << 31) - 1, 48, None), 127);
        assert_eq!(one(1 << 24, (1 << 31) - 1, 54, None), 2); // 2^55 - 2^24 rounds to 2
        assert_eq!(one(-(1 << 24), (1 << 31) - 1, 54, None), -2);
    }

    /// The worked example with hand-chosen constants, computed by hand.
    #[test]
    fn two_layer_reference_by_hand() {
        let w = doc_example();
        let mut c = vec![0u8; 208];
        // W0: row j has weight 1 at columns j and j+8, -1 at column (j+1)%8
        for j in 0..8 {
            c[j * 16 + j] = 1;
            c[j * 16 + j + 8] = 1;
            c[j * 16 + (j + 1) % 8] = (-1i8) as u8;
        }
        // b0 = [8, 0, -8, 0, 0, 0, 0, 100]
        for (j, b) in [8i32, 0, -8, 0, 0, 0, 0, 100].iter().enumerate() {
            c[128 + 4 * j..132 + 4 * j].copy_from_slice(&b.to_le_bytes());
        }
        // W1: row k = [1 x8] for k 0, [-1, 0...] for 1, [2 at col 7] for 2, zeros for 3
        for i in 0..8 {
            c[160 + i] = 1;
        }
        c[160 + 8] = (-1i8) as u8;
        c[160 + 16 + 7] = 2;
        // b1 = [0, 1, -2, -10]
        for (k, b) in [0i32, 1, -2, -10].iter().enumerate() {
            c[192 + 4 * k..196 + 4 * k].copy_from_slice(&b.to_le_bytes());
        }
        let x: Vec<i8> = (0..16).map(|i| (i * 10 - 60) as i8).collect();
        // x = [-60,-50,-40,-30,-20,-10,0,10, 20,30,40,50,60,70,80,90]
        // layer 0, acc_j = b0_j + x_j + x_{j+8} - x_{(j+1)%8}, y = clamp((acc + 8) >> 4, 0, 127)
        // j0: 8 - 60 + 20 + 50 = 18 -> 26 >> 4 = 1
        // j1: 0 - 50 + 30 + 40 = 20 -> 28 >> 4 = 1
        // j2: -8 - 40 + 40 + 30 = 22 -> 30 >> 4 = 1
        // j3: 0 - 30 + 50 + 20 = 40 -> 48 >> 4 = 3
        // j4: 0 - 20 + 60 + 10 = 50 -> 58 >> 4 = 3
        // j5: 0 - 10 + 70 + 0 = 60 -> 68 >> 4 = 4
        // j6: 0 + 0 + 80 - 10 = 70 -> 78 >> 4 = 4
        // j7: 100 + 10 + 90 + 60 = 260 -> 268 >> 4 = 16
        // layer 1 (multiplier 3, shift 2): h = [1,1,1,3,3,4,4,16]
        // k0: 0 + 33 = 33 -> 99 -> (99 + 2) >> 2 = 25
        // k1: 1 - 1 = 0 -> 0
        // k2: -2 + 32 = 30 -> 90 -> 92 >> 2 = 23
        // k3: -10 -> -30 -> -28 >> 2 = -7
        assert_eq!(w.reference(&c, &x).unwrap(), vec![25, 0, 23, -7]);
        assert_eq!(
            w.reference(&c, &x[..15]),
            Err(WorkloadError::InputLen {
                expected: 16,
                actual: 15
            })
        );
    }

    #[test]
    fn rng_is_deterministic() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        // SplitMix64 reference value for seed 0
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        for _ in 0..1000 {
            let v = a.range(-3, 5);
            assert!((-3..=5).contains(&v));
        }
    }
}
