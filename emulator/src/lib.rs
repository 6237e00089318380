// SPDX-License-Identifier: MIT OR Apache-2.0
//! Emulated Qualcomm Cloud AI 100 (AIC100) PCIe function for QEMU's vfio-user client.
//!
//! The crate is the device model ([`device`]: MHI, BHI, rings, boot stages and services) plus
//! the protocol pieces it speaks ([`sahara`], [`control`], [`nnc`]), the project-generated
//! firmware images ([`firmware`]), PCI config space ([`pci`]), DMA into host memory ([`dma`]),
//! and the vfio-user server glue ([`server`]). See `Documentation/emulator.rst`.
#![warn(missing_docs)]

pub mod bench;
pub mod control;
pub mod dbc;
pub mod device;
pub mod dma;
pub mod faults;
pub mod firmware;
pub mod logging;
pub mod mhi;
pub mod nnc;
pub mod pci;
pub mod sahara;
pub mod server;
pub mod ssr;
pub mod wire;
pub mod workload;
