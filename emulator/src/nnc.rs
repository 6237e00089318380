// SPDX-License-Identifier: MIT OR Apache-2.0
//! NNC command protocol v17 (the payload of control-protocol passthrough transactions), device
//! side. Layouts are this crate's own encoding of the public protocol description
//! (`nnc-command-protocol.md`): every command starts with a `u32 type`, responses use
//! `type + 1`, all structures are packed little-endian with sizes that are multiples of 8.
//!
//! Implemented here: STATUS (13/14) with the complete device-info payload the open runtime's
//! gates check (info format 12, metadata 1.0, command protocol 17.0, AIC100 hardware version).
//! Every other command is answered with its response type and `NNC_STATUS_UNDEFINED_REQUEST`.

use crate::wire::{u32_at, Writer};
use log::{debug, info};

/// Command ids used here.
pub mod id {
    /// STATUS request.
    pub const STATUS_REQ: u32 = 13;
    /// STATUS response.
    pub const STATUS_RESP: u32 = 14;
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
    /// The request id is not defined (or not implemented by this device).
    pub const UNDEFINED_REQUEST: i32 = -3;
}

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
    w.u32(0) // loaded constants
        .u32(0) // constants in use
        .u8(0) // loaded networks
        .u8(0) // active networks
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
