// SPDX-License-Identifier: MIT OR Apache-2.0
//! Safe userspace runtime for the Qualcomm Cloud AI 100 (AIC100) accelerator.
//!
//! The crate talks to `/dev/accel/accel<N>` through the driver's uapi
//! (`uapi/qaic_accel.h`) and works the same on the upstream C driver (`qaic`)
//! and on qaic-rs (`qaic_rs`). It covers:
//!
//! * enumeration through sysfs ([`sysfs`]) and opening a node ([`Device`]);
//! * MANAGE messages ([`manage`]): passthrough, DMA transfer of user memory,
//!   activate/deactivate of DMA bridge channels, protocol status;
//! * the firmware's NNC command protocol v17 inside passthroughs ([`nnc`]):
//!   device information, loading/unloading constants and network images,
//!   activation and deactivation;
//! * buffer objects ([`Bo`]): creation, zero-copy access through `mmap`,
//!   slicing for the DMA bridge ([`Slice`], [`Sem`], doorbells), execution,
//!   partial execution, waiting with a timeout and performance statistics;
//! * programs for the emulated card's compute stand-in ([`program`],
//!   [`workload`], [`elf`]): a quantized int8 MLP in an ELF network image,
//!   loaded, activated and run through the real commands and ioctls, with
//!   a CPU reference to check the device's results.
//!
//! Errors are an [`Error`] that carries the failing ioctl and its `errno`.
//! All `unsafe` code lives in one private module (`ioctl`).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use qaic::{Device, Direction, Slice};
//!
//! # fn main() -> qaic::Result<()> {
//! // First Cloud AI 100 in the system.
//! let found = qaic::sysfs::aic100_devices()?;
//! let dev = found.first().expect("no AIC100").open()?;
//!
//! // What the firmware says about itself.
//! let info = dev.device_info()?;
//! println!("firmware {} on {}", info.fw_version, info.fw_variant);
//!
//! // Load and activate a network (image bytes come from a compiler).
//! let elf = std::fs::read("network.elf").expect("read network");
//! let net = dev.load_elf("network", &elf, &Default::default())?;
//! let act = dev.activate(net, None, qaic::DEFAULT_QUEUE_SIZE, qaic::nnc::ActivationState::Ready)?;
//!
//! // One input and one output buffer, each a single slice at device
//! // addresses chosen by the network's I/O description.
//! let base = act.response.ddr_base;
//! let mut input = dev.create_bo(4096)?;
//! let mut output = dev.create_bo(4096)?;
//! input.attach(act.dbc_id, Direction::ToDevice, &[Slice::new(0, 4096, base)])?;
//! output.attach(act.dbc_id, Direction::FromDevice, &[Slice::new(0, 4096, base + 0x1000)])?;
//!
//! input.bytes_mut()?.fill(1);
//! dev.execute(act.dbc_id, &[&input, &output])?;
//! output.wait(Some(Duration::from_secs(5)))?;
//! println!("first output byte: {}", output.bytes()?[0]);
//!
//! drop((input, output));
//! dev.deactivate(&act)?;
//! dev.unload_elf(net)?;
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod bo;
pub mod device;
pub mod elf;
pub mod error;
mod ioctl;
pub mod manage;
pub mod nnc;
pub mod program;
pub mod sysfs;
pub mod uapi;
mod wire;
pub mod workload;

pub use bo::{Bo, Direction, DoorbellWidth, PerfStats, Sem, SemCmd, Slice};
pub use device::{
    Activation, ConstantsId, Device, DriverVersion, ElfId, LoadElfOptions, DEFAULT_QUEUE_SIZE,
};
pub use error::{Errno, Error, Ioctl, Result};
pub use manage::{ManageMsg, ManageResponse, Transaction};
pub use program::{LoadedProgram, Program, Request};
pub use workload::{Workload, WorkloadError};
