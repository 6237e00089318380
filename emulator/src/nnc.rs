// SPDX-License-Identifier: MIT OR Apache-2.0
//! NNC command protocol v17 (the payload of control-protocol passthrough transactions), device
//! side. Layouts are this crate's own encoding of the public protocol description
//! (`nnc-command-protocol.md`): every command starts with a `u32 type`, responses use
//! `type + 1`, all structures are packed little-endian with sizes that are multiples of 8.
//!
//! Implemented here: STATUS (13/14) with the complete device-info payload the open runtime's
//! gates check (info format 12, metadata 1.0, command protocol 17.0, AIC100 hardware version),
//! and program management ([`Qsm`]): LOAD_CONSTANTS (1), LOAD_CONSTANTS_EX (15),
//! LOAD_CONSTANTS_PAYLOAD (16), LOAD_ELF (3), UNLOAD_CONSTANTS (5), UNLOAD_ELF (7), ACTIVATE
//! (9, with the SETUP_VC transaction of the same message) and DEACTIVATE (11, with TEARDOWN_VC).
//! Every other command is answered with its response type and `NNC_STATUS_UNDEFINED_REQUEST`.

use crate::dbc::{self, Program};
use crate::wire::{u32_at, u64_at, Writer};
use crate::workload::{self, Workload};
use log::{debug, info, warn};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Command ids used here.
pub mod id {
    /// STATUS request.
    pub const STATUS_REQ: u32 = 13;
    /// STATUS response.
    pub const STATUS_RESP: u32 = 14;
    /// Legacy one-shot constants load.
    pub const LOAD_CONSTANTS_REQ: u32 = 1;
    /// Answer to every constants load.
    pub const LOAD_CONSTANTS_RESP: u32 = 2;
    /// Load a network ELF.
    pub const LOAD_ELF_REQ: u32 = 3;
    /// Answer to LOAD_ELF.
    pub const LOAD_ELF_RESP: u32 = 4;
    /// Unload constants.
    pub const UNLOAD_CONSTANTS_REQ: u32 = 5;
    /// Unload a network.
    pub const UNLOAD_ELF_REQ: u32 = 7;
    /// Activate a network.
    pub const ACTIVATE_REQ: u32 = 9;
    /// Answer to ACTIVATE.
    pub const ACTIVATE_RESP: u32 = 10;
    /// Deactivate a network.
    pub const DEACTIVATE_REQ: u32 = 11;
    /// Announce constants by descriptor.
    pub const LOAD_CONSTANTS_EX_REQ: u32 = 15;
    /// One part of announced constants.
    pub const LOAD_CONSTANTS_PAYLOAD_REQ: u32 = 16;
}

/// Versions and identity reported by the emulated QSM firmware.
pub mod consts {
    /// Device-info payload format version (runtime requires >= 12).
    pub const INFO_FORMAT_VERSION: u8 = 12;
    /// NNC command protocol version.
    pub const NNC_PROTO_MAJOR: u16 = 17;
    /// NNC command protocol minor version.
    pub const NNC_PROTO_MINOR: u16 = 0;
    /// Network metadata version.
    pub const META_MAJOR: u16 = 1;
    /// Network metadata minor version.
    pub const META_MINOR: u16 = 0;
    /// Hardware version: major 1 (AIC100) in the upper 16 bits.
    pub const HW_VERSION: u32 = 0x0001_0000;
    /// Firmware version reported (major, minor, patch, build).
    pub const FW_VERSION: [u8; 4] = [1, 20, 0, 1];
    /// Number of virtual channels (DMA bridge channels).
    pub const NUM_VC: u8 = 16;
    /// Number of NSPs.
    pub const NUM_NSP: u8 = 16;
    /// Device DRAM in MiB.
    pub const DRAM_MB: u32 = 16 * 1024;
}

/// NNC status codes used here.
pub mod status {
    /// Success.
    pub const SUCCESS: i32 = 0;
    /// General error (a DMA transfer the command needs is missing or has the wrong size).
    pub const ERROR: i32 = -1;
    /// The request id is not defined (or not implemented by this device).
    pub const UNDEFINED_REQUEST: i32 = -3;
    /// Memory resource exhausted.
    pub const MEM_ALLOC_ERROR: i32 = -4;
    /// The network or its workload section is malformed, or constants do not fit it.
    pub const METADATA_ERROR: i32 = -5;
    /// Invalid parameter (sizes, offsets, incomplete constants, initial state).
    pub const PARAMETER_ERROR: i32 = -6;
    /// Object of another user, or still in use.
    pub const OPERATION_NOT_PERMITTED: i32 = -9;
    /// Unknown id (never loaded, or already unloaded).
    pub const RESOURCE_NOT_FOUND: i32 = -11;
    /// No DMA bridge channel for the activation.
    pub const VC_ALLOC_ERROR: i32 = -14;
    /// Command shorter than its structure.
    pub const CMD_LENGTH_ERROR: i32 = -17;
}

/// Largest constants accepted.
pub const MAX_CONSTANTS: u64 = 256 << 20;

/// Size of the STATUS response (type + status + 496-byte device info).
pub const STATUS_RESP_LEN: usize = 504;
/// Size of the device-info payload.
pub const DEVICE_INFO_LEN: usize = 496;

/// Dynamic values that go into the device-info payload.
#[derive(Debug, Clone, Default)]
pub struct DeviceSnapshot {
    /// Device serial number string.
    pub serial: String,
    /// Virtual channels (DBCs) currently assigned.
    pub vc_in_use: u8,
    /// Bytes held in emulated device memory.
    pub dram_used: u64,
    /// Loaded constants.
    pub loaded_constants: u32,
    /// Constants used by an activation.
    pub constants_in_use: u32,
    /// Loaded networks.
    pub loaded_networks: u8,
    /// Active networks.
    pub active_networks: u8,
}

/// Encode the 496-byte device-info payload (header 8 + device data 320 + NSP data 168).
pub fn device_info(s: &DeviceSnapshot) -> Vec<u8> {
    use consts::*;
    let mut w = Writer::new();
    // header
    w.u8(INFO_FORMAT_VERSION).zeros(7);
    // device data
    for v in FW_VERSION {
        w.u8(v);
    }
    w.cstr("qaic-rs-emu.1.20.0.1", 38)
        .cstr("qaic-rs emulated QSM", 38)
        .cstr("AIC100-EMU", 16)
        .u32(HW_VERSION)
        .cstr(&s.serial, 16)
        .cstr(&format!("EMUBRD-{}", s.serial), 32)
        .u32(0); // compiler version
                 // resource info (40)
    let used_mb = s.dram_used.div_ceil(1 << 20).min(DRAM_MB as u64) as u32;
    w.u32(DRAM_MB)
        .u32(DRAM_MB - used_mb)
        .u32(0)
        .u8(NUM_VC)
        .u8(NUM_VC.saturating_sub(s.vc_in_use))
        .u8(NUM_NSP)
        .u8(NUM_NSP)
        .u32(3072)
        .u32(3072)
        .u32(32 * 16)
        .u32(32 * 16)
        .u8(32)
        .u8(0)
        .zeros(6);
    // performance info (56)
    w.u32(1_450_000_000)
        .u32(2_133_000_000)
        .u32(1_000_000_000)
        .u32(1_000_000_000)
        .u32(500_000_000)
        .u32(0)
        .u64(400_000_000_000_000)
        .u64(136_000_000_000)
        .u64(0)
        .u64(0);
    w.u32(s.loaded_constants)
        .u32(s.constants_in_use)
        .u8(s.loaded_networks)
        .u8(s.active_networks)
        .u16(META_MAJOR)
        .u16(META_MINOR)
        .u16(NNC_PROTO_MAJOR)
        .u16(NNC_PROTO_MINOR)
        .cstr("sbl.bin", 24)
        .u8(0) // need reset to retire pages
        .u8(0)
        .u32(1) // PVS image version
        .u64((1 << NUM_NSP) - 1) // NSP page mask
        .u64(0) // QTS time offset
        .u32(0) // retired pages
        .u8(1) // SKU type
        .u8(0) // complex id
        .zeros(2);
    // NSP data (168)
    for v in FW_VERSION {
        w.u8(v);
    }
    w.u32(0)
        .cstr("qaic-rs-emu-nsp.1.20.0.1", 64)
        .cstr("qaic-rs emulated NSP", 48)
        .cstr("AIC100-EMU", 48);
    debug_assert_eq!(w.len(), DEVICE_INFO_LEN);
    w.buf
}

/// Handle one NNC command (the passthrough payload after the 8-byte transaction header).
/// Returns the response payload, padded to a multiple of 8.
pub fn handle(req: &[u8], snap: &DeviceSnapshot) -> Vec<u8> {
    let ty = u32_at(req, 0);
    let mut w = Writer::new();
    match ty {
        Some(id::STATUS_REQ) => {
            info!(target: "nnc", "STATUS_REQ (info type {}) -> STATUS_RESP", req.get(4).copied().unwrap_or(0));
            w.u32(id::STATUS_RESP)
                .i32(status::SUCCESS)
                .bytes(&device_info(snap));
        }
        _ => {
            let t = ty.unwrap_or(0);
            info!(target: "nnc", "command {t} ({} bytes): undefined request", req.len());
            debug!(target: "nnc", "request bytes {:02x?}", &req[..req.len().min(32)]);
            w.u32(t.wrapping_add(1)).i32(status::UNDEFINED_REQUEST);
        }
    }
    while !w.len().is_multiple_of(8) {
        w.u8(0);
    }
    w.buf
}

/// What a passthrough command may use from, and report to, the rest of its message.
#[derive(Default)]
pub struct MsgCtx {
    /// User handle of the message.
    pub handle: u32,
    /// DMA transfer data of the message, by tag (taken by the command that names the tag).
    pub data: BTreeMap<u32, Vec<u8>>,
    /// DBC set up by a SETUP_VC (ACTIVATE_TO_DEV) transaction of the message.
    pub vc: Option<usize>,
    /// The DBC of `vc` was claimed by a successful NNC ACTIVATE.
    pub vc_claimed: bool,
    /// An NNC ACTIVATE of the message failed (the SETUP_VC answer must fail too).
    pub activate_failed: bool,
    /// Workloads to bind to DBCs (activations made by the message).
    pub bind: Vec<(usize, Option<Program>)>,
    /// DBCs whose activation ended with TEARDOWN_VC (answer with DEACTIVATE_FROM_DEV).
    pub teardown: Vec<usize>,
}

#[derive(Debug)]
struct Constants {
    handle: u32,
    name: String,
    data: Vec<u8>,
    loaded: u64,
}

#[derive(Debug)]
struct Network {
    handle: u32,
    name: String,
    workload: Option<Arc<Workload>>,
}

#[derive(Debug, Clone, Copy)]
struct Activation {
    handle: u32,
    dbc: usize,
    elf_id: u32,
    constants_id: u32,
}

/// Program management state of the emulated QSM: constants, networks, activations.
#[derive(Debug, Default)]
pub struct Qsm {
    next_id: u32,
    constants: BTreeMap<u32, Constants>,
    networks: BTreeMap<u32, Network>,
    activations: BTreeMap<u32, Activation>,
}

fn name_at(req: &[u8], off: usize) -> String {
    let b = req.get(off..off + 64).unwrap_or(&[]);
    let e = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..e]).into_owned()
}

fn load_resp(ty: u32, id: u32, st: i32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(ty).u32(if st == 0 { id } else { 0 }).i32(st).u32(0);
    w.buf
}

fn status_resp(ty: u32, st: i32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(ty).i32(st);
    w.buf
}

impl Qsm {
    fn new_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    /// Forget everything (device reset).
    pub fn reset(&mut self) {
        *self = Qsm {
            next_id: self.next_id,
            ..Default::default()
        };
    }

    /// Counters for the device info.
    pub fn fill(&self, s: &mut DeviceSnapshot) {
        s.loaded_constants = self.constants.len() as u32;
        s.constants_in_use = self
            .constants
            .keys()
            .filter(|id| self.activations.values().any(|a| a.constants_id == **id))
            .count() as u32;
        s.loaded_networks = self.networks.len().min(255) as u8;
        s.active_networks = self.activations.len().min(255) as u8;
    }

    /// The activation on `dbc` ends without a command (TERMINATE, channel released).
    pub fn dbc_released(&mut self, dbc: usize) {
        self.activations.retain(|id, a| {
            if a.dbc == dbc {
                info!(target: "nnc", "activation {id} on DBC {dbc} ends with its channel");
            }
            a.dbc != dbc
        });
    }

    /// TERMINATE of `handle`: drop its activations, networks and constants.
    pub fn terminate(&mut self, handle: u32) {
        let n = (
            self.activations.len(),
            self.networks.len(),
            self.constants.len(),
        );
        self.activations.retain(|_, a| a.handle != handle);
        self.networks.retain(|_, e| e.handle != handle);
        self.constants.retain(|_, c| c.handle != handle);
        info!(target: "nnc", "TERMINATE handle {handle}: dropped {} activations, {} networks, {} constants",
            n.0 - self.activations.len(), n.1 - self.networks.len(), n.2 - self.constants.len());
    }

    /// Handle one NNC command (passthrough payload); the answer is padded to 8 bytes.
    pub fn command(&mut self, req: &[u8], ctx: &mut MsgCtx, snap: &DeviceSnapshot) -> Vec<u8> {
        let ty = u32_at(req, 0).unwrap_or(0);
        let mut r = match ty {
            id::LOAD_CONSTANTS_REQ => self.load_constants(req, ctx),
            id::LOAD_CONSTANTS_EX_REQ => self.load_constants_ex(req, ctx),
            id::LOAD_CONSTANTS_PAYLOAD_REQ => self.load_constants_payload(req, ctx),
            id::LOAD_ELF_REQ => self.load_elf(req, ctx),
            id::UNLOAD_CONSTANTS_REQ | id::UNLOAD_ELF_REQ => self.unload(ty, req, ctx),
            id::ACTIVATE_REQ => self.activate(req, ctx),
            id::DEACTIVATE_REQ => self.deactivate(req, ctx),
            _ => return handle(req, snap),
        };
        while r.len() % 8 != 0 {
            r.push(0);
        }
        r
    }

    fn take_data(ctx: &mut MsgCtx, tag: u32, len: u64, what: &str) -> Result<Vec<u8>, i32> {
        match ctx.data.remove(&tag) {
            Some(d) if d.len() as u64 == len => Ok(d),
            Some(d) => {
                warn!(target: "nnc", "{what}: DMA transfer with tag {tag} holds {} bytes, the command says {len}", d.len());
                Err(status::ERROR)
            }
            None => {
                warn!(target: "nnc", "{what}: no DMA transfer with tag {tag} in the message");
                Err(status::ERROR)
            }
        }
    }

    fn load_constants(&mut self, req: &[u8], ctx: &mut MsgCtx) -> Vec<u8> {
        let ty = id::LOAD_CONSTANTS_RESP;
        if req.len() < 88 {
            return load_resp(ty, 0, status::CMD_LENGTH_ERROR);
        }
        let (tag, len) = (u32_at(req, 8).unwrap(), u64_at(req, 16).unwrap());
        if len == 0 || len > MAX_CONSTANTS {
            return load_resp(ty, 0, status::PARAMETER_ERROR);
        }
        let data = match Self::take_data(ctx, tag, len, "LOAD_CONSTANTS") {
            Ok(d) => d,
            Err(e) => return load_resp(ty, 0, e),
        };
        let id = self.new_id();
        let name = name_at(req, 24);
        info!(target: "nnc", "LOAD_CONSTANTS '{name}': {len} bytes -> constants {id}");
        self.constants.insert(
            id,
            Constants {
                handle: ctx.handle,
                name,
                data,
                loaded: len,
            },
        );
        load_resp(ty, id, 0)
    }

    fn load_constants_ex(&mut self, req: &[u8], ctx: &mut MsgCtx) -> Vec<u8> {
        let ty = id::LOAD_CONSTANTS_RESP;
        let dlen = u32_at(req, 72).unwrap_or(0) as usize;
        if req.len() < 80 + 24 || dlen < 24 || req.len() < 80 + dlen {
            return load_resp(ty, 0, status::CMD_LENGTH_ERROR);
        }
        let (st, dy) = (u64_at(req, 80).unwrap(), u64_at(req, 88).unwrap());
        let Some(total) = st.checked_add(dy).filter(|&t| t > 0) else {
            return load_resp(ty, 0, status::PARAMETER_ERROR);
        };
        if total > MAX_CONSTANTS {
            return load_resp(ty, 0, status::MEM_ALLOC_ERROR);
        }
        let id = self.new_id();
        let name = name_at(req, 8);
        info!(target: "nnc", "LOAD_CONSTANTS_EX '{name}': static {st} + dynamic {dy} bytes -> constants {id}");
        self.constants.insert(
            id,
            Constants {
                handle: ctx.handle,
                name,
                data: vec![0; total as usize],
                loaded: 0,
            },
        );
        load_resp(ty, id, 0)
    }

    fn load_constants_payload(&mut self, req: &[u8], ctx: &mut MsgCtx) -> Vec<u8> {
        let ty = id::LOAD_CONSTANTS_RESP;
        if req.len() < 32 {
            return load_resp(ty, 0, status::CMD_LENGTH_ERROR);
        }
        let tag = u32_at(req, 8).unwrap();
        let cid = u32_at(req, 12).unwrap();
        let (len, off) = (u64_at(req, 16).unwrap(), u64_at(req, 24).unwrap());
        let handle = ctx.handle;
        let Some(c) = self.constants.get_mut(&cid) else {
            return load_resp(ty, 0, status::RESOURCE_NOT_FOUND);
        };
        if c.handle != handle {
            return load_resp(ty, 0, status::OPERATION_NOT_PERMITTED);
        }
        if len == 0 || off.checked_add(len).is_none_or(|e| e > c.data.len() as u64) {
            return load_resp(ty, 0, status::PARAMETER_ERROR);
        }
        let data = match Self::take_data(ctx, tag, len, "LOAD_CONSTANTS_PAYLOAD") {
            Ok(d) => d,
            Err(e) => return load_resp(ty, 0, e),
        };
        c.data[off as usize..(off + len) as usize].copy_from_slice(&data);
        c.loaded += len;
        info!(target: "nnc", "LOAD_CONSTANTS_PAYLOAD constants {cid} '{}': {len} bytes at {off} ({} of {} loaded)",
            c.name, c.loaded.min(c.data.len() as u64), c.data.len());
        load_resp(ty, cid, 0)
    }

    fn load_elf(&mut self, req: &[u8], ctx: &mut MsgCtx) -> Vec<u8> {
        let ty = id::LOAD_ELF_RESP;
        if req.len() < 96 {
            return load_resp(ty, 0, status::CMD_LENGTH_ERROR);
        }
        let tag = u32_at(req, 4).unwrap();
        let len = u64_at(req, 80).unwrap();
        let name = name_at(req, 16);
        if len == 0 {
            return load_resp(ty, 0, status::PARAMETER_ERROR);
        }
        let elf = match Self::take_data(ctx, tag, len, "LOAD_ELF") {
            Ok(d) => d,
            Err(e) => return load_resp(ty, 0, e),
        };
        let workload = match workload::elf_section(&elf, workload::SECTION) {
            Ok(None) => None,
            Ok(Some(sec)) => match Workload::parse(sec) {
                Ok(w) => Some(Arc::new(w)),
                Err(e) => {
                    warn!(target: "nnc", "LOAD_ELF '{name}': workload section refused: {e}");
                    return load_resp(ty, 0, status::METADATA_ERROR);
                }
            },
            Err(e) => {
                warn!(target: "nnc", "LOAD_ELF '{name}': {e}");
                return load_resp(ty, 0, status::METADATA_ERROR);
            }
        };
        let id = self.new_id();
        match &workload {
            Some(w) => {
                info!(target: "nnc", "LOAD_ELF '{name}': {len} bytes, workload {} layers {} -> {} -> network {id}",
                w.layers.len(), w.input_len(), w.output_len())
            }
            None => {
                info!(target: "nnc", "LOAD_ELF '{name}': {len} bytes without a workload section -> network {id}")
            }
        }
        self.networks.insert(
            id,
            Network {
                handle: ctx.handle,
                name,
                workload,
            },
        );
        load_resp(ty, id, 0)
    }

    fn unload(&mut self, ty: u32, req: &[u8], ctx: &mut MsgCtx) -> Vec<u8> {
        let rty = ty + 1;
        let Some(oid) = u32_at(req, 4) else {
            return status_resp(rty, status::CMD_LENGTH_ERROR);
        };
        let elf = ty == id::UNLOAD_ELF_REQ;
        let owner = if elf {
            self.networks.get(&oid).map(|n| n.handle)
        } else {
            self.constants.get(&oid).map(|c| c.handle)
        };
        let st = match owner {
            None => status::RESOURCE_NOT_FOUND,
            Some(h) if h != ctx.handle => status::OPERATION_NOT_PERMITTED,
            Some(_)
                if self.activations.values().any(|a| {
                    if elf {
                        a.elf_id == oid
                    } else {
                        a.constants_id == oid
                    }
                }) =>
            {
                status::OPERATION_NOT_PERMITTED
            }
            Some(_) => {
                if elf {
                    self.networks.remove(&oid);
                } else {
                    self.constants.remove(&oid);
                }
                0
            }
        };
        info!(target: "nnc", "UNLOAD_{} {oid}: status {st}", if elf { "ELF" } else { "CONSTANTS" });
        status_resp(rty, st)
    }

    fn activate(&mut self, req: &[u8], ctx: &mut MsgCtx) -> Vec<u8> {
        let (st, resp) = self.try_activate(req, ctx);
        if st != 0 {
            ctx.activate_failed = true;
            warn!(target: "nnc", "ACTIVATE failed: status {st}");
            let mut w = Writer::new();
            w.u32(id::ACTIVATE_RESP).i32(st).zeros(80);
            return w.buf;
        }
        resp
    }

    fn try_activate(&mut self, req: &[u8], ctx: &mut MsgCtx) -> (i32, Vec<u8>) {
        if req.len() < 48 {
            return (status::CMD_LENGTH_ERROR, vec![]);
        }
        let cid = u32_at(req, 8).unwrap();
        let eid = u32_at(req, 12).unwrap();
        let vc_setup = u32_at(req, 24).unwrap();
        let state = u32_at(req, 32).unwrap() as i32;
        let Some(net) = self.networks.get(&eid) else {
            return (status::RESOURCE_NOT_FOUND, vec![]);
        };
        if net.handle != ctx.handle {
            return (status::OPERATION_NOT_PERMITTED, vec![]);
        }
        let consts = if cid == 0 {
            None
        } else {
            match self.constants.get(&cid) {
                None => return (status::RESOURCE_NOT_FOUND, vec![]),
                Some(c) if c.handle != ctx.handle => {
                    return (status::OPERATION_NOT_PERMITTED, vec![])
                }
                Some(c) if c.loaded < c.data.len() as u64 => {
                    warn!(target: "nnc", "ACTIVATE: constants {cid} incomplete ({} of {} bytes)", c.loaded, c.data.len());
                    return (status::PARAMETER_ERROR, vec![]);
                }
                Some(c) => Some(c),
            }
        };
        if !(0..=2).contains(&state) {
            return (status::PARAMETER_ERROR, vec![]);
        }
        let program = match &net.workload {
            None => None,
            Some(w) => {
                let data: &[u8] = consts.map_or(&[], |c| &c.data);
                if let Err(e) = w.check_constants(data) {
                    warn!(target: "nnc", "ACTIVATE network {eid} with constants {cid}: {e}");
                    return (status::METADATA_ERROR, vec![]);
                }
                Some(Program {
                    workload: w.clone(),
                    constants: Arc::new(data.to_vec()),
                })
            }
        };
        if vc_setup != 1 || ctx.vc.is_none() || ctx.vc_claimed {
            warn!(target: "nnc", "ACTIVATE: opt_vc_setup {vc_setup} and no unclaimed SETUP_VC in the message");
            return (status::VC_ALLOC_ERROR, vec![]);
        }
        let dbc = ctx.vc.unwrap();
        ctx.vc_claimed = true;
        let aid = self.new_id();
        self.activations.insert(
            aid,
            Activation {
                handle: ctx.handle,
                dbc,
                elf_id: eid,
                constants_id: cid,
            },
        );
        ctx.bind.push((dbc, program));
        let ddr = dbc::DDR_BASE + dbc as u64 * dbc::WINDOW;
        let mcid = dbc::MCID_BASE + dbc as u64 * dbc::WINDOW;
        info!(target: "nnc", "ACTIVATE network {eid} '{}' constants {cid} -> activation {aid} on DBC {dbc}, ddr {ddr:#x} mcid {mcid:#x}",
            self.networks[&eid].name);
        let mut w = Writer::new();
        w.u32(id::ACTIVATE_RESP)
            .i32(0)
            .u32(aid)
            .u32(dbc as u32)
            .u64(ddr)
            .u64(ddr + workload::IO_LIMIT)
            .u64(mcid)
            .u64(mcid)
            .u32(0) // dma type
            .u32(0) // pc mask
            .u64(0) // NSP polling address
            .u32(0)
            .u32(0)
            .u64(0) // command doorbell
            .u8(0)
            .u8(0)
            .u32(1) // NSP mask
            .zeros(2);
        debug_assert_eq!(w.len(), 88);
        (0, w.buf)
    }

    fn deactivate(&mut self, req: &[u8], ctx: &mut MsgCtx) -> Vec<u8> {
        let rty = id::DEACTIVATE_REQ + 1;
        let (Some(aid), Some(teardown)) = (u32_at(req, 4), u32_at(req, 8)) else {
            return status_resp(rty, status::CMD_LENGTH_ERROR);
        };
        let st = match self.activations.get(&aid) {
            None => status::RESOURCE_NOT_FOUND,
            Some(a) if a.handle != ctx.handle => status::OPERATION_NOT_PERMITTED,
            Some(a) => {
                let dbc = a.dbc;
                self.activations.remove(&aid);
                if teardown == 1 {
                    ctx.teardown.push(dbc);
                } else {
                    ctx.bind.push((dbc, None));
                }
                info!(target: "nnc", "DEACTIVATE activation {aid} (DBC {dbc}, teardown {teardown})");
                0
            }
        };
        if st != 0 {
            warn!(target: "nnc", "DEACTIVATE {aid}: status {st}");
        }
        status_resp(rty, st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{u16_at, u32_at};

    #[test]
    fn nnc_status_response_is_504_bytes_and_passes_the_runtime_version_gates() {
        let r = handle(
            &[13, 0, 0, 0, 0, 0, 0, 0],
            &DeviceSnapshot {
                serial: "S1".into(),
                ..Default::default()
            },
        );
        assert_eq!(r.len(), STATUS_RESP_LEN);
        assert_eq!(u32_at(&r, 0), Some(14));
        assert_eq!(u32_at(&r, 4), Some(0));
        let info = &r[8..];
        assert!(info[0] >= 12, "format version");
        let dev = &info[8..];
        // Offsets inside the packed device data.
        assert_eq!(u32_at(dev, 96).unwrap() >> 16, 1, "AIC100 hardware major");
        assert_eq!(u16_at(dev, 258), Some(1), "metadata major");
        assert_eq!(u16_at(dev, 260), Some(0), "metadata minor");
        assert_eq!(u16_at(dev, 262), Some(17), "command protocol major");
        assert_eq!(u16_at(dev, 264), Some(0), "command protocol minor");
        assert_eq!(&dev[100..103], b"S1\0", "serial");
        assert_eq!(&dev[266..274], b"sbl.bin\0", "SBL image name");
    }

    #[test]
    fn nnc_unknown_commands_get_undefined_request_status() {
        for t in [1u32, 3, 9, 11, 32, 999] {
            let mut req = t.to_le_bytes().to_vec();
            req.resize(16, 0);
            let r = handle(&req, &DeviceSnapshot::default());
            assert_eq!(r.len(), 8);
            assert_eq!(u32_at(&r, 0), Some(t + 1));
            assert_eq!(u32_at(&r, 4), Some(status::UNDEFINED_REQUEST as u32));
        }
        let r = handle(&[], &DeviceSnapshot::default());
        assert_eq!(u32_at(&r, 4), Some(status::UNDEFINED_REQUEST as u32));
    }

    #[test]
    fn nnc_status_reports_vc_usage() {
        let r = handle(
            &13u32.to_le_bytes(),
            &DeviceSnapshot {
                vc_in_use: 3,
                ..Default::default()
            },
        );
        let res = &r[8 + 8 + 152..];
        assert_eq!(res[12], 16, "vcTotal");
        assert_eq!(res[13], 13, "vcFree");
    }
}
