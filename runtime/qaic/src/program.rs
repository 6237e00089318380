// SPDX-License-Identifier: MIT OR Apache-2.0
//! The program builder: network images for the emulated card's compute
//! stand-in (`Documentation/workload.rst`), loaded and run through the same
//! firmware commands and ioctls a vendor runtime uses.
//!
//! A [`Program`] is a quantized int8 MLP ([`Workload`]), its constants
//! (weights and biases) and the ELF network image that carries the workload
//! in its `qaic_emu_workload` section. [`Program::load`] sends the constants
//! (`LOAD_CONSTANTS_EX` + `LOAD_CONSTANTS_PAYLOAD`) and the image
//! (`LOAD_ELF`), then activates it (`ACTIVATE` + `SETUP_VC`). The slices are
//! computed on the host from the activation's answer ([`io_slices`]); each
//! [`Request`] is one input and one output buffer object attached with them,
//! run with `EXECUTE_BO` + `WAIT_BO` and checked against the CPU reference
//! ([`Workload::reference`]).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use qaic::program::Program;
//!
//! # fn main() -> qaic::Result<()> {
//! let dev = qaic::Device::open("/dev/accel/accel0")?;
//! let program = Program::example();
//! let loaded = program.load(&dev)?;
//! let mut request = loaded.request()?;
//!
//! let input: Vec<i8> = (0..16).map(|i| i * 3 - 20).collect();
//! // Execute, wait, and compare with the CPU reference: a wrong answer is
//! // an `Error::OutputMismatch`.
//! let output = request.run_checked(&input, Some(Duration::from_secs(5)))?;
//! println!("{input:?} -> {output:?}");
//!
//! drop(request);
//! loaded.unload()?;
//! # Ok(())
//! # }
//! ```

use std::sync::Mutex;
use std::time::Duration;

use crate::bo::{Bo, Direction, DoorbellWidth, Sem, SemCmd, Slice};
use crate::device::{Activation, ConstantsId, Device, ElfId, LoadElfOptions, DEFAULT_QUEUE_SIZE};
use crate::elf::{self, ElfWriter};
use crate::error::{Error, Result};
use crate::nnc::{ActivateResponse, ActivationState};
use crate::workload::{self, Layer, LayerActivation, Rng, Workload, WorkloadError};

/// Contents of the placeholder `.text` section: one Hexagon packet
/// `{ jumpr r31 }`. The emulated card never runs it.
const TEXT: [u8; 4] = 0x529f_c000u32.to_le_bytes();

/// Where the generated programs put the output vector (relative to
/// `ddr_base`), as in the worked example of workload.rst.
pub const DEFAULT_OUTPUT_OFFSET: u32 = 0x1000;

/// A network image without a workload section: it loads and activates
/// normally and its channel moves data, runs semaphores and doorbells, but
/// nothing computes (for plain DMA tests such as `qaic bench --loopback`).
pub fn plain_elf() -> Vec<u8> {
    ElfWriter::new(elf::EM_QDSP6)
        .section(
            ".text",
            elf::SHT_PROGBITS,
            elf::SHF_ALLOC | elf::SHF_EXECINSTR,
            &TEXT,
        )
        .finish()
}

/// A network for the emulated card: workload, constants and ELF image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    name: String,
    workload: Workload,
    constants: Vec<u8>,
    elf: Vec<u8>,
}

impl Program {
    /// A program from a workload and its constants: both are checked with
    /// the rules the device applies at `LOAD_ELF` and `ACTIVATE`, then the
    /// ELF image is built (sections `.text`, `qaic_emu_workload`,
    /// `.shstrtab`; `e_machine` Hexagon). `name` is what LOAD_ELF and
    /// LOAD_CONSTANTS_EX carry (at most 63 bytes).
    pub fn new(
        name: &str,
        workload: Workload,
        constants: Vec<u8>,
    ) -> std::result::Result<Program, WorkloadError> {
        let section = workload.encode()?;
        workload.validate_constants(&constants)?;
        let elf = ElfWriter::new(elf::EM_QDSP6)
            .section(
                ".text",
                elf::SHT_PROGBITS,
                elf::SHF_ALLOC | elf::SHF_EXECINSTR,
                &TEXT,
            )
            .section(workload::SECTION_NAME, elf::SHT_PROGBITS, 0, &section)
            .finish();
        Ok(Program {
            name: name.to_owned(),
            workload,
            constants,
            elf,
        })
    }

    /// A program from an existing network image, which must carry a valid
    /// workload section, and its constants.
    pub fn from_elf(
        name: &str,
        elf: Vec<u8>,
        constants: Vec<u8>,
    ) -> std::result::Result<Program, WorkloadError> {
        let section =
            elf::find_section(&elf, workload::SECTION_NAME)?.ok_or(WorkloadError::NoSection)?;
        let workload = Workload::parse(section)?;
        workload.validate_constants(&constants)?;
        Ok(Program {
            name: name.to_owned(),
            workload,
            constants,
            elf,
        })
    }

    /// The worked example of workload.rst: 16 inputs, 8 hidden units with
    /// ReLU, 4 outputs; constants of 208 bytes (`W0` at 0, `b0` at 128,
    /// `W1` at 160, `b1` at 192); output at `0x1000`; layer 0 multiplier 1
    /// shift 4, layer 1 multiplier 3 shift 2. Weights and biases are fixed
    /// pseudo-random values.
    pub fn example() -> Program {
        let mut rng = Rng::new(0x5eed_0001);
        let mut c = vec![0u8; 208];
        let mut fill = |range: std::ops::Range<usize>, lo, hi, width| {
            for chunk in c[range].chunks_mut(width) {
                let v = rng.range(lo, hi);
                chunk.copy_from_slice(&v.to_le_bytes()[..width]);
            }
        };
        fill(0..128, -4, 4, 1); // W0
        fill(128..160, -64, 64, 4); // b0
        fill(160..192, -1, 1, 1); // W1
        fill(192..208, -32, 32, 4); // b1
        let layer = |i, o, w, b, m, s, a| Layer {
            in_features: i,
            out_features: o,
            weights_offset: w,
            bias_offset: b,
            multiplier: m,
            shift: s,
            activation: a,
        };
        let w = Workload {
            output_offset: DEFAULT_OUTPUT_OFFSET,
            constants_len: 208,
            layers: vec![
                layer(16, 8, 0, 128, 1, 4, LayerActivation::Relu),
                layer(8, 4, 160, 192, 3, 2, LayerActivation::None),
            ],
            ..Default::default()
        };
        Program::new("qaic-example-mlp", w, c).expect("the example is valid")
    }

    /// A multi-layer perceptron with `dims = [in, hidden.., out]` features
    /// (2 ..= 17 entries, each 1 ..= 4096): pseudo-random weights in
    /// `[-8, 8]` and biases seeded by `seed`, ReLU on hidden layers, and a
    /// requantization scale per layer that keeps typical outputs inside
    /// the int8 range. Constants are laid out layer by layer, weights then
    /// biases (4-byte aligned).
    pub fn mlp(dims: &[u32], seed: u64) -> std::result::Result<Program, WorkloadError> {
        if dims.len() < 2 {
            return Err(WorkloadError::LayerCount(dims.len().saturating_sub(1)));
        }
        let mut rng = Rng::new(seed);
        let mut constants = Vec::new();
        let mut layers = Vec::new();
        let n = dims.len() - 1;
        for k in 0..n {
            let (i, o) = (dims[k], dims[k + 1]);
            let weights_offset = constants.len() as u64;
            for _ in 0..u64::from(i) * u64::from(o) {
                constants.push(rng.range(-8, 8) as i8 as u8);
            }
            constants.resize(constants.len().next_multiple_of(4), 0);
            // RMS of the inputs: uniform int8 for layer 0, about 48 after a
            // requantized hidden layer; weights in [-8, 8] have an RMS of 4.9.
            let x_rms = if k == 0 { 74.0 } else { 48.0 };
            let acc_rms = f64::from(i).sqrt() * 4.9 * x_rms;
            let bias_offset = constants.len() as u64;
            let b = (acc_rms / 4.0) as i64;
            for _ in 0..o {
                let v = rng.range(-b, b) as i32;
                constants.extend_from_slice(&v.to_le_bytes());
            }
            // output RMS about 48: multiplier / 2^16 = 48 / acc_rms
            let multiplier = ((48.0 / acc_rms * 65536.0).round() as u32).max(1);
            layers.push(Layer {
                in_features: i,
                out_features: o,
                weights_offset,
                bias_offset,
                multiplier,
                shift: 16,
                activation: if k + 1 < n {
                    LayerActivation::Relu
                } else {
                    LayerActivation::None
                },
            });
        }
        let input_len = dims[0];
        let w = Workload {
            input_offset: 0,
            // output after the input, page aligned
            output_offset: input_len
                .next_multiple_of(0x1000)
                .max(DEFAULT_OUTPUT_OFFSET),
            constants_len: constants.len() as u32,
            layers,
            ..Default::default()
        };
        let shape: Vec<String> = dims.iter().map(u32::to_string).collect();
        Program::new(&format!("qaic-mlp-{}", shape.join("x")), w, constants)
    }

    /// The name used when loading.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Replaces the name used when loading (at most 63 bytes).
    pub fn with_name(mut self, name: &str) -> Program {
        self.name = name.to_owned();
        self
    }

    /// The workload.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// The constants (weights and biases).
    pub fn constants(&self) -> &[u8] {
        &self.constants
    }

    /// The ELF network image.
    pub fn elf(&self) -> &[u8] {
        &self.elf
    }

    /// The CPU reference output for `input`.
    pub fn reference(&self, input: &[i8]) -> std::result::Result<Vec<i8>, WorkloadError> {
        self.workload.reference(&self.constants, input)
    }

    /// Loads the constants and the image on `dev` and activates the
    /// network with a DMA bridge channel of [`DEFAULT_QUEUE_SIZE`] elements.
    pub fn load(&self, dev: &Device) -> Result<LoadedProgram> {
        self.load_with_queue(dev, DEFAULT_QUEUE_SIZE)
    }

    /// Like [`Program::load`], with a channel of `queue_size` elements.
    /// Whatever was loaded is unloaded again when a later step fails.
    pub fn load_with_queue(&self, dev: &Device, queue_size: u32) -> Result<LoadedProgram> {
        let constants_id = if self.constants.is_empty() {
            None
        } else {
            Some(dev.load_constants(&self.name, &self.constants, &[])?)
        };
        let undo_constants = |e: Error| {
            if let Some(c) = constants_id {
                let _ = dev.unload_constants(c);
            }
            e
        };
        let elf_id = dev
            .load_elf(&self.name, &self.elf, &LoadElfOptions::default())
            .map_err(undo_constants)?;
        let activation = dev
            .activate(elf_id, constants_id, queue_size, ActivationState::Ready)
            .map_err(|e| {
                let _ = dev.unload_elf(elf_id);
                undo_constants(e)
            })?;
        let mut loaded = LoadedProgram {
            dev: dev.clone(),
            program: self.clone(),
            elf_id,
            constants_id,
            activation,
            slices: IoSlices::default(),
            device_input: Mutex::new(vec![0; self.workload.input_len()]),
            torn_down: false,
        };
        // on error, dropping `loaded` deactivates and unloads
        loaded.slices = io_slices(&self.workload, &activation.response)?;
        Ok(loaded)
    }
}

/// The slices of one request, computed on the host from the workload and
/// the activation's answer as workload.rst prescribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoSlices {
    /// Input: the input vector to `ddr_base + input_offset`, then a 32-bit
    /// write of the input doorbell at `mcid_base + doorbell_offset`.
    pub input: Slice,
    /// Output: waits (pre-sync) until `done_sem >= 1`, copies the output
    /// vector from `ddr_base + output_offset`, then decrements `done_sem`.
    pub output: Slice,
}

/// Computes the [`IoSlices`] of `workload` activated with answer `act`.
/// The doorbell value is not interpreted by the device; the slices carry
/// `1`.
pub fn io_slices(workload: &Workload, act: &ActivateResponse) -> Result<IoSlices> {
    workload.validate()?;
    let add = |base: u64, off: u32, what: &str| {
        base.checked_add(u64::from(off))
            .ok_or_else(|| Error::protocol(format!("{what} base {base:#x} + {off:#x} overflows")))
    };
    let input = Slice::new(
        0,
        workload.input_len() as u64,
        add(act.ddr_base, workload.input_offset, "DDR")?,
    )
    .with_doorbell(
        add(act.mcid_base, workload.doorbell_offset, "MCID")?,
        1,
        DoorbellWidth::Bits32,
    );
    let sem = workload.done_sem;
    let output = Slice::new(
        0,
        workload.output_len() as u64,
        add(act.ddr_base, workload.output_offset, "DDR")?,
    )
    .with_sem(Sem::new(SemCmd::WaitGtEq, sem, 1).presync())?
    .with_sem(Sem::new(SemCmd::Dec, sem, 0))?;
    Ok(IoSlices { input, output })
}

/// A program loaded and activated on a device. Dropping it deactivates and
/// unloads it, ignoring errors; [`LoadedProgram::unload`] reports them.
#[derive(Debug)]
pub struct LoadedProgram {
    dev: Device,
    program: Program,
    elf_id: ElfId,
    constants_id: Option<ConstantsId>,
    activation: Activation,
    slices: IoSlices,
    /// What the device's input region holds once every submitted request
    /// has run: zero after ACTIVATE, then each submission's fresh bytes
    /// (the device keeps the rest, see workload.rst "Partial execute").
    /// Locked across the EXECUTE ioctl so it follows the channel's order.
    device_input: Mutex<Vec<i8>>,
    torn_down: bool,
}

impl LoadedProgram {
    /// The device.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// The program.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The activation (channel, DDR and MCID bases).
    pub fn activation(&self) -> &Activation {
        &self.activation
    }

    /// The id of the loaded image.
    pub fn elf_id(&self) -> ElfId {
        self.elf_id
    }

    /// The id of the loaded constants, if the program has any.
    pub fn constants_id(&self) -> Option<ConstantsId> {
        self.constants_id
    }

    /// The slices every request is attached with.
    pub fn slices(&self) -> &IoSlices {
        &self.slices
    }

    /// A new request: an input and an output buffer object attached to the
    /// program's channel. Requests can be reused; several may be in flight.
    pub fn request(&self) -> Result<Request<'_>> {
        let w = &self.program.workload;
        let dbc = self.activation.dbc_id;
        let mut input = self.dev.create_bo(w.input_len() as u64)?;
        input.attach(dbc, Direction::ToDevice, &[self.slices.input])?;
        let mut output = self.dev.create_bo(w.output_len() as u64)?;
        output.attach(dbc, Direction::FromDevice, &[self.slices.output])?;
        Ok(Request {
            program: self,
            input,
            output,
            effective_input: Vec::new(),
            output_checked: 0,
        })
    }

    fn teardown(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        // Try every step; report the first failure.
        let deactivated = self.dev.deactivate(&self.activation);
        let unloaded = self.dev.unload_elf(self.elf_id);
        let constants = self
            .constants_id
            .map_or(Ok(()), |c| self.dev.unload_constants(c));
        deactivated.and(unloaded).and(constants)
    }

    /// Deactivates the network and unloads the image and the constants.
    pub fn unload(mut self) -> Result<()> {
        self.teardown()
    }
}

impl Drop for LoadedProgram {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// One request of a loaded program: an input and an output buffer object.
#[derive(Debug)]
pub struct Request<'p> {
    program: &'p LoadedProgram,
    input: Bo,
    output: Bo,
    /// The input the device computes on for the last submission.
    effective_input: Vec<i8>,
    /// Output bytes the last submission copies back.
    output_checked: usize,
}

impl Request<'_> {
    /// The input buffer object.
    pub fn input_bo(&self) -> &Bo {
        &self.input
    }

    /// The output buffer object.
    pub fn output_bo(&self) -> &Bo {
        &self.output
    }

    /// Writes the input vector into the input buffer object. Do not call
    /// while the request is in flight.
    pub fn set_input(&mut self, input: &[i8]) -> Result<()> {
        let want = self.program.program.workload.input_len();
        if input.len() != want {
            return Err(WorkloadError::InputLen {
                expected: want,
                actual: input.len(),
            }
            .into());
        }
        for (d, s) in self.input.bytes_mut()?.iter_mut().zip(input) {
            *d = *s as u8;
        }
        Ok(())
    }

    /// The input vector currently in the input buffer object.
    pub fn input(&self) -> Result<Vec<i8>> {
        Ok(self.input.bytes()?.iter().map(|&b| b as i8).collect())
    }

    /// Queues the request: EXECUTE_BO of `[input, output]` on the channel.
    pub fn submit(&mut self) -> Result<()> {
        self.submit_inner(None)
    }

    /// Queues the request with PARTIAL_EXECUTE_BO: only the first
    /// `input_bytes` of the input go to the device (the inference then
    /// uses what earlier requests left in device memory for the rest, zero
    /// after activation) and only the first `output_bytes` of the output
    /// come back. [`Request::check`] accounts for both.
    pub fn submit_partial(&mut self, input_bytes: usize, output_bytes: usize) -> Result<()> {
        let w = &self.program.program.workload;
        if input_bytes > w.input_len() || output_bytes > w.output_len() {
            return Err(Error::invalid(format!(
                "partial execute of {input_bytes} input / {output_bytes} output bytes, the \
                 network has {} / {}",
                w.input_len(),
                w.output_len()
            )));
        }
        self.submit_inner(Some((input_bytes, output_bytes)))
    }

    fn submit_inner(&mut self, partial: Option<(usize, usize)>) -> Result<()> {
        let prog = self.program;
        let w = &prog.program.workload;
        let (fresh, out) = partial.unwrap_or((w.input_len(), w.output_len()));
        let mut device = prog
            .device_input
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let effective = merge_input(&device, &self.input.bytes()?[..fresh]);
        let dbc = prog.activation.dbc_id;
        match partial {
            None => prog.dev.execute(dbc, &[&self.input, &self.output])?,
            Some(_) => prog.dev.partial_execute(
                dbc,
                &[(&self.input, fresh as u64), (&self.output, out as u64)],
            )?,
        }
        *device = effective.clone();
        self.effective_input = effective;
        self.output_checked = out;
        Ok(())
    }

    /// Waits for the output (WAIT_BO); `None` is the driver's default
    /// timeout.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<()> {
        self.output.wait(timeout)
    }

    /// The output vector; valid after [`Request::wait`] returned.
    pub fn output(&self) -> Result<Vec<i8>> {
        Ok(self.output.bytes()?.iter().map(|&b| b as i8).collect())
    }

    /// The part of the output vector the last submission copied back (all
    /// of it unless it was a partial execute).
    pub fn received_output(&self) -> Result<Vec<i8>> {
        let mut v = self.output()?;
        v.truncate(self.output_checked);
        Ok(v)
    }

    /// The input the device computed on in the last submission: the input
    /// buffer object's bytes, or for a partial execute its fresh bytes
    /// followed by what device memory held.
    pub fn effective_input(&self) -> &[i8] {
        &self.effective_input
    }

    /// Compares the output with the CPU reference of the last submission's
    /// (effective) input; after a partial execute only the bytes that were
    /// copied back are compared. Returns those bytes.
    pub fn check(&self) -> Result<Vec<i8>> {
        if self.effective_input.is_empty() {
            return Err(Error::invalid(
                "check of a request that was never submitted",
            ));
        }
        let input = self.effective_input.clone();
        let mut expected = self.program.program.reference(&input)?;
        expected.truncate(self.output_checked);
        let actual = self.received_output()?;
        if actual != expected {
            return Err(Error::OutputMismatch {
                input,
                expected,
                actual,
            });
        }
        Ok(actual)
    }

    /// One inference: set the input, submit, wait, read the output.
    pub fn run(&mut self, input: &[i8], timeout: Option<Duration>) -> Result<Vec<i8>> {
        self.set_input(input)?;
        self.submit()?;
        self.wait(timeout)?;
        self.output()
    }

    /// Like [`Request::run`], then checks the output against the CPU
    /// reference ([`Error::OutputMismatch`] when it differs).
    pub fn run_checked(&mut self, input: &[i8], timeout: Option<Duration>) -> Result<Vec<i8>> {
        self.run(input, timeout)?;
        self.check()
    }
}

/// What the device computes on: the `fresh` bytes just transferred,
/// followed by what device memory held beyond them.
fn merge_input(device: &[i8], fresh: &[u8]) -> Vec<i8> {
    let mut v = device.to_vec();
    for (d, s) in v.iter_mut().zip(fresh) {
        *d = *s as i8;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uapi;

    fn act() -> ActivateResponse {
        ActivateResponse {
            virtual_channel_id: 3,
            ddr_base: 0x1_3000_0000,
            dynamic_ddr_base: 0x1_3800_0000,
            mcid_base: 0x20_3000_0000,
            mcid_base_dma_cmd: 0x20_3000_0000,
            nsp_mask: 1,
            ..Default::default()
        }
    }

    #[test]
    fn example_is_the_worked_example() {
        let p = Program::example();
        let w = p.workload();
        assert_eq!(w.to_string(), "16 -> 8 (relu) -> 4");
        assert_eq!(p.constants().len(), 208);
        assert_eq!(
            (
                w.input_offset,
                w.output_offset,
                w.doorbell_offset,
                w.done_sem
            ),
            (0, 0x1000, 0, 0)
        );
        let l = &w.layers;
        assert_eq!((l[0].weights_offset, l[0].bias_offset), (0, 128));
        assert_eq!((l[1].weights_offset, l[1].bias_offset), (160, 192));
        assert_eq!((l[0].multiplier, l[0].shift), (1, 4));
        assert_eq!((l[1].multiplier, l[1].shift), (3, 2));
        // deterministic
        assert_eq!(Program::example(), p);
    }

    #[test]
    fn elf_carries_the_section() {
        let p = Program::example();
        let section = elf::find_section(p.elf(), "qaic_emu_workload")
            .unwrap()
            .unwrap();
        assert_eq!(section, &p.workload().encode().unwrap()[..]);
        assert_eq!(
            elf::find_section(p.elf(), ".text").unwrap(),
            Some(&TEXT[..])
        );
        assert_eq!(u16::from_le_bytes([p.elf()[18], p.elf()[19]]), 164);
        let again = Program::from_elf("x", p.elf().to_vec(), p.constants().to_vec()).unwrap();
        assert_eq!(again.workload(), p.workload());
        assert_eq!(again.elf(), p.elf());
    }

    #[test]
    fn from_elf_refuses_images_without_a_valid_workload() {
        let plain = plain_elf();
        assert_eq!(elf::find_section(&plain, ".text").unwrap(), Some(&TEXT[..]));
        assert_eq!(
            Program::from_elf("x", plain, vec![]),
            Err(WorkloadError::NoSection)
        );
        let p = Program::example();
        assert!(matches!(
            Program::from_elf("x", p.elf().to_vec(), vec![0; 10]),
            Err(WorkloadError::ConstantsTooShort { need: 208, .. })
        ));
        assert!(matches!(
            Program::from_elf("x", vec![0; 100], vec![]),
            Err(WorkloadError::Elf(_))
        ));
    }

    #[test]
    fn slices_follow_workload_rst() {
        let mut w = Program::example().workload().clone();
        w.input_offset = 0x40;
        w.doorbell_offset = 0x80;
        w.done_sem = 5;
        let s = io_slices(&w, &act()).unwrap();

        let i = s.input.to_uapi(16).unwrap();
        assert_eq!((i.offset, i.size), (0, 16));
        assert_eq!(i.dev_addr, 0x1_3000_0040);
        assert_eq!((i.db_addr, i.db_len), (0x20_3000_0080, 32));
        for sem in [i.sem0, i.sem1, i.sem2, i.sem3] {
            assert_eq!(sem, uapi::qaic_sem::default(), "input semaphores are NOP");
        }

        let o = s.output.to_uapi(4).unwrap();
        assert_eq!((o.offset, o.size), (0, 4));
        assert_eq!(o.dev_addr, 0x1_3000_1000);
        assert_eq!((o.db_addr, o.db_data, o.db_len), (0, 0, 0));
        let sem = |val, index, presync, cmd| uapi::qaic_sem {
            val,
            index,
            presync,
            cmd,
            flags: 0,
            pad: 0,
        };
        assert_eq!(o.sem0, sem(1, 5, 1, 5), "pre-sync WAIT_GT_EQ 1");
        assert_eq!(o.sem1, sem(0, 5, 0, 3), "post-sync DEC");
        assert_eq!(o.sem2, uapi::qaic_sem::default());
        assert_eq!(o.sem3, uapi::qaic_sem::default());
    }

    #[test]
    fn partial_inputs_keep_the_device_bytes() {
        let device = [1i8, 2, 3, 4];
        assert_eq!(merge_input(&device, &[]), vec![1, 2, 3, 4]);
        assert_eq!(merge_input(&device, &[0xff, 9]), vec![-1, 9, 3, 4]);
        assert_eq!(merge_input(&device, &[5, 6, 7, 0x80]), vec![5, 6, 7, -128]);
    }

    #[test]
    fn generated_mlps_are_valid_and_useful() {
        let p = Program::mlp(&[64, 32, 16, 10], 1).unwrap();
        assert_eq!(
            p.workload().to_string(),
            "64 -> 32 (relu) -> 16 (relu) -> 10"
        );
        assert_eq!(p.name(), "qaic-mlp-64x32x16x10");
        let mut rng = Rng::new(9);
        let mut distinct = std::collections::HashSet::new();
        let mut saturated = 0;
        for _ in 0..50 {
            let mut x = vec![0i8; 64];
            rng.fill_i8(&mut x);
            let y = p.reference(&x).unwrap();
            saturated += y.iter().filter(|&&v| v == 127 || v == -128).count();
            distinct.insert(y);
        }
        assert_eq!(distinct.len(), 50, "outputs depend on the inputs");
        assert!(saturated < 100, "{saturated} of 500 outputs saturated");
        // the largest shape the format allows
        let big = Program::mlp(&[4096, 4096], 2).unwrap();
        assert_eq!(big.workload().output_offset, 0x1000);
        assert!(matches!(
            Program::mlp(&[5000, 2], 0),
            Err(WorkloadError::Layer {
                field: "in_features",
                ..
            })
        ));
        assert_eq!(
            Program::mlp(&[3], 0).err(),
            Some(WorkloadError::LayerCount(0))
        );
        assert_eq!(Program::mlp(&[1, 1], 0).unwrap().workload().output_len(), 1);
        // the output region is placed after the input
        let p = Program::mlp(&[4095, 2], 0).unwrap();
        assert_eq!(p.workload().output_offset, 0x1000);
    }

    #[test]
    fn loading_reports_device_errors_without_panicking() {
        // /dev/null is not an accel node: the first LOAD command fails.
        let dev = Device::open("/dev/null").unwrap();
        let e = Program::example().load(&dev).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOTTY));
        let e = Program::example()
            .with_name(&"n".repeat(64))
            .load(&dev)
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
}
