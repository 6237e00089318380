// SPDX-License-Identifier: MIT OR Apache-2.0
//! Rust mirror of `uapi/qaic_accel.h`: constants, ioctl request numbers and
//! `#[repr(C)]` structures with the exact sizes and member offsets of the C
//! header (checked at compile time below, against the numbers of the uapi
//! specification).
//!
//! These types are plain data. The safe API of this crate builds them for
//! you; they are public so that tests and tools can talk to the driver at
//! the lowest level (for example to send deliberately invalid requests).

#![allow(non_camel_case_types)]

use core::mem::{offset_of, size_of};

/// Size of the MANAGE transaction buffer (and its maximum payload).
pub const QAIC_MANAGE_MAX_MSG_LENGTH: usize = 4096;
/// Maximum number of transactions the driver accepts in one MANAGE call.
pub const QAIC_MANAGE_MAX_TRANSACTIONS: u32 = 512;
/// Number of DMA bridge channels of an AIC100.
pub const QAIC_DBC_COUNT: u32 = 16;

/// `qaic_sem.flags` bit: wait for host-to-device DMA first.
pub const QAIC_SEM_INSYNCFENCE: u8 = 2;
/// `qaic_sem.flags` bit: wait for device-to-host DMA first.
pub const QAIC_SEM_OUTSYNCFENCE: u8 = 1;

/// Semaphore command: nothing.
pub const QAIC_SEM_NOP: u8 = 0;
/// Semaphore command: set to `val`.
pub const QAIC_SEM_INIT: u8 = 1;
/// Semaphore command: increment.
pub const QAIC_SEM_INC: u8 = 2;
/// Semaphore command: decrement.
pub const QAIC_SEM_DEC: u8 = 3;
/// Semaphore command: wait until equal to `val`.
pub const QAIC_SEM_WAIT_EQUAL: u8 = 4;
/// Semaphore command: wait until greater than or equal to `val`.
pub const QAIC_SEM_WAIT_GT_EQ: u8 = 5;
/// Semaphore command: wait until greater than zero, then decrement.
pub const QAIC_SEM_WAIT_GT_0: u8 = 6;

/// Transaction type codes (`qaic_manage_trans_hdr.type`).
pub mod trans {
    /// Unused value.
    pub const UNDEFINED: u32 = 0;
    /// Passthrough command from user space.
    pub const PASSTHROUGH_FROM_USR: u32 = 1;
    /// Defined by the protocol, never used.
    pub const PASSTHROUGH_TO_USR: u32 = 2;
    /// Passthrough answer from the device.
    pub const PASSTHROUGH_FROM_DEV: u32 = 3;
    /// Passthrough as sent on the wire.
    pub const PASSTHROUGH_TO_DEV: u32 = 4;
    /// DMA transfer of user memory.
    pub const DMA_XFER_FROM_USR: u32 = 5;
    /// DMA transfer as sent on the wire.
    pub const DMA_XFER_TO_DEV: u32 = 6;
    /// Activate (set up a DMA bridge channel) from user space.
    pub const ACTIVATE_FROM_USR: u32 = 7;
    /// Activate answer from the device.
    pub const ACTIVATE_FROM_DEV: u32 = 8;
    /// Activate as sent on the wire.
    pub const ACTIVATE_TO_DEV: u32 = 9;
    /// Deactivate (release a DMA bridge channel) from user space.
    pub const DEACTIVATE_FROM_USR: u32 = 10;
    /// Deactivate answer from the device (consumed by the driver).
    pub const DEACTIVATE_FROM_DEV: u32 = 11;
    /// Status (protocol version) query from user space.
    pub const STATUS_FROM_USR: u32 = 12;
    /// Defined by the protocol, never used.
    pub const STATUS_TO_USR: u32 = 13;
    /// Status answer from the device.
    pub const STATUS_FROM_DEV: u32 = 14;
    /// Status query as sent on the wire.
    pub const STATUS_TO_DEV: u32 = 15;
    /// Terminate answer (driver internal).
    pub const TERMINATE_FROM_DEV: u32 = 16;
    /// Terminate request (driver internal).
    pub const TERMINATE_TO_DEV: u32 = 17;
    /// DMA continuation request (driver internal).
    pub const DMA_XFER_CONT: u32 = 18;
    /// Defined by the protocol, not used by Linux 7.3.
    pub const VALIDATE_PARTITION_FROM_DEV: u32 = 19;
    /// Defined by the protocol, not used by Linux 7.3.
    pub const VALIDATE_PARTITION_TO_DEV: u32 = 20;
}

/// Common prefix of every MANAGE transaction.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_manage_trans_hdr {
    /// Transaction type, see [`trans`].
    pub type_: u32,
    /// Length of the whole transaction including this header.
    pub len: u32,
}

/// DMA transfer of user memory to the device.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_manage_trans_dma_xfer {
    /// Header, type [`trans::DMA_XFER_FROM_USR`], len 32.
    pub hdr: qaic_manage_trans_hdr,
    /// Caller chosen tag referenced by firmware commands.
    pub tag: u32,
    /// Padding.
    pub pad: u32,
    /// User virtual address.
    pub addr: u64,
    /// Number of bytes.
    pub size: u64,
}

/// Request for a DMA bridge channel.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_manage_trans_activate_to_dev {
    /// Header, type [`trans::ACTIVATE_FROM_USR`], len 24.
    pub hdr: qaic_manage_trans_hdr,
    /// Queue depth in elements (non-zero).
    pub queue_size: u32,
    /// Ignored by the driver.
    pub eventfd: u32,
    /// Passed to the device.
    pub options: u32,
    /// Must be zero.
    pub pad: u32,
}

/// Answer to an activate request.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_manage_trans_activate_from_dev {
    /// Header, type [`trans::ACTIVATE_FROM_DEV`].
    pub hdr: qaic_manage_trans_hdr,
    /// Zero on success.
    pub status: u32,
    /// Assigned channel.
    pub dbc_id: u32,
    /// Device specific.
    pub options: u64,
}

/// Release of a DMA bridge channel.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_manage_trans_deactivate {
    /// Header, type [`trans::DEACTIVATE_FROM_USR`], len 16.
    pub hdr: qaic_manage_trans_hdr,
    /// Channel to release.
    pub dbc_id: u32,
    /// Must be zero.
    pub pad: u32,
}

/// Control protocol version query.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_manage_trans_status_to_dev {
    /// Header, type [`trans::STATUS_FROM_USR`], len 8.
    pub hdr: qaic_manage_trans_hdr,
}

/// Answer to a version query.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_manage_trans_status_from_dev {
    /// Header, type [`trans::STATUS_FROM_DEV`].
    pub hdr: qaic_manage_trans_hdr,
    /// Control protocol major version.
    pub major: u16,
    /// Control protocol minor version.
    pub minor: u16,
    /// Zero on success.
    pub status: u32,
    /// Bit 0: the device uses CRCs.
    pub status_flags: u64,
}

/// Argument of `DRM_IOCTL_QAIC_MANAGE`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_manage_msg {
    /// Bytes of transactions (in) / of the answer (out).
    pub len: u32,
    /// Number of transactions (in) / in the answer (out).
    pub count: u32,
    /// User pointer to a [`QAIC_MANAGE_MAX_MSG_LENGTH`] byte buffer.
    pub data: u64,
}

/// Argument of `DRM_IOCTL_QAIC_CREATE_BO`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_create_bo {
    /// Requested size in bytes.
    pub size: u64,
    /// Returned GEM handle.
    pub handle: u32,
    /// Must be zero.
    pub pad: u32,
}

/// Argument of `DRM_IOCTL_QAIC_MMAP_BO`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_mmap_bo {
    /// GEM handle.
    pub handle: u32,
    /// Padding.
    pub pad: u32,
    /// Returned fake offset for `mmap()`.
    pub offset: u64,
}

/// One semaphore operation of a slice.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_sem {
    /// 12-bit operand.
    pub val: u16,
    /// 5-bit semaphore index.
    pub index: u8,
    /// 1 = before the transfer, 0 = after.
    pub presync: u8,
    /// One of the `QAIC_SEM_*` commands.
    pub cmd: u8,
    /// `QAIC_SEM_INSYNCFENCE` / `QAIC_SEM_OUTSYNCFENCE`.
    pub flags: u8,
    /// Must be zero.
    pub pad: u16,
}

/// One slice of a buffer object.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_attach_slice_entry {
    /// Bytes moved by the slice.
    pub size: u64,
    /// Semaphore operation 0.
    pub sem0: qaic_sem,
    /// Semaphore operation 1.
    pub sem1: qaic_sem,
    /// Semaphore operation 2.
    pub sem2: qaic_sem,
    /// Semaphore operation 3.
    pub sem3: qaic_sem,
    /// Device address.
    pub dev_addr: u64,
    /// Doorbell device address.
    pub db_addr: u64,
    /// Doorbell value.
    pub db_data: u32,
    /// Doorbell width in bits (0, 8, 16, 32).
    pub db_len: u32,
    /// Offset of the slice in the buffer object.
    pub offset: u64,
}

/// Header of an attach request.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_attach_slice_hdr {
    /// Number of slices.
    pub count: u32,
    /// Channel.
    pub dbc_id: u32,
    /// GEM handle.
    pub handle: u32,
    /// 1 = to device, 2 = from device.
    pub dir: u32,
    /// Ignored.
    pub size: u64,
}

/// Argument of `DRM_IOCTL_QAIC_ATTACH_SLICE_BO`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_attach_slice {
    /// Header.
    pub hdr: qaic_attach_slice_hdr,
    /// User pointer to `hdr.count` entries.
    pub data: u64,
}

/// Entry of `DRM_IOCTL_QAIC_EXECUTE_BO`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_execute_entry {
    /// GEM handle.
    pub handle: u32,
    /// Direction (ignored by the driver).
    pub dir: u32,
}

/// Entry of `DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_partial_execute_entry {
    /// GEM handle.
    pub handle: u32,
    /// Direction (ignored by the driver).
    pub dir: u32,
    /// Bytes of the object that take part in data transfers.
    pub resize: u64,
}

/// Header of an execute request.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_execute_hdr {
    /// Number of entries.
    pub count: u32,
    /// Channel.
    pub dbc_id: u32,
}

/// Argument of the EXECUTE_BO and PARTIAL_EXECUTE_BO ioctls.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_execute {
    /// Header.
    pub hdr: qaic_execute_hdr,
    /// User pointer to the entries.
    pub data: u64,
}

/// Argument of `DRM_IOCTL_QAIC_WAIT_BO`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_wait {
    /// GEM handle.
    pub handle: u32,
    /// Milliseconds, 0 = driver default.
    pub timeout: u32,
    /// Channel.
    pub dbc_id: u32,
    /// Must be zero.
    pub pad: u32,
}

/// Header of a statistics request.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_perf_stats_hdr {
    /// Number of entries.
    pub count: u16,
    /// Padding.
    pub pad: u16,
    /// Channel.
    pub dbc_id: u32,
}

/// Argument of `DRM_IOCTL_QAIC_PERF_STATS_BO`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_perf_stats {
    /// Header.
    pub hdr: qaic_perf_stats_hdr,
    /// User pointer to the entries.
    pub data: u64,
}

/// Statistics of one buffer object.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_perf_stats_entry {
    /// GEM handle (in).
    pub handle: u32,
    /// Queue elements pending before the submission.
    pub queue_level_before: u32,
    /// Queue elements of the submission.
    pub num_queue_element: u32,
    /// Driver submit time in µs.
    pub submit_latency_us: u32,
    /// Device time in µs (0 if not completed).
    pub device_latency_us: u32,
    /// Padding.
    pub pad: u32,
}

/// Argument of `DRM_IOCTL_QAIC_DETACH_SLICE_BO`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct qaic_detach_slice {
    /// GEM handle.
    pub handle: u32,
    /// Must be zero.
    pub pad: u32,
}

/// Argument of the generic `DRM_IOCTL_GEM_CLOSE`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct drm_gem_close {
    /// GEM handle to release.
    pub handle: u32,
    /// Must be zero.
    pub pad: u32,
}

/// Argument of the generic `DRM_IOCTL_PRIME_HANDLE_TO_FD` and
/// `DRM_IOCTL_PRIME_FD_TO_HANDLE`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct drm_prime_handle {
    /// GEM handle (in for export, out for import).
    pub handle: u32,
    /// Export flags: `DRM_CLOEXEC`, `DRM_RDWR`.
    pub flags: u32,
    /// dma-buf file descriptor (out for export, in for import).
    pub fd: i32,
}

/// `DRM_CLOEXEC` export flag (= `O_CLOEXEC`).
pub const DRM_CLOEXEC: u32 = 0o2000000;
/// `DRM_RDWR` export flag (= `O_RDWR`).
pub const DRM_RDWR: u32 = 0o2;

/// Argument of the generic `DRM_IOCTL_VERSION`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct drm_version {
    /// Major version.
    pub version_major: i32,
    /// Minor version.
    pub version_minor: i32,
    /// Patch level.
    pub version_patchlevel: i32,
    /// Length of the name buffer (in) / of the name (out).
    pub name_len: usize,
    /// Name buffer.
    pub name: *mut u8,
    /// Length of the date buffer.
    pub date_len: usize,
    /// Date buffer.
    pub date: *mut u8,
    /// Length of the description buffer.
    pub desc_len: usize,
    /// Description buffer.
    pub desc: *mut u8,
}

// ---- ioctl request numbers ------------------------------------------------------------------

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
/// `_IOC_WRITE`: user space writes the argument (the kernel reads it).
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`: the kernel writes the argument back.
pub const IOC_READ: u32 = 2;

/// Encodes an ioctl request number like the kernel's `_IOC()` macro
/// (asm-generic layout used by x86 and arm64).
pub const fn ioc(dir: u32, ty: u8, nr: u32, size: usize) -> u32 {
    assert!(size < (1 << IOC_SIZEBITS));
    (dir << IOC_DIRSHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

/// The DRM ioctl type character.
pub const DRM_IOCTL_BASE: u8 = b'd';
/// First driver-specific DRM ioctl number.
pub const DRM_COMMAND_BASE: u32 = 0x40;

/// Driver-relative ioctl numbers.
pub const DRM_QAIC_MANAGE: u32 = 0x00;
/// See [`DRM_QAIC_MANAGE`].
pub const DRM_QAIC_CREATE_BO: u32 = 0x01;
/// See [`DRM_QAIC_MANAGE`].
pub const DRM_QAIC_MMAP_BO: u32 = 0x02;
/// See [`DRM_QAIC_MANAGE`].
pub const DRM_QAIC_ATTACH_SLICE_BO: u32 = 0x03;
/// See [`DRM_QAIC_MANAGE`].
pub const DRM_QAIC_EXECUTE_BO: u32 = 0x04;
/// See [`DRM_QAIC_MANAGE`].
pub const DRM_QAIC_PARTIAL_EXECUTE_BO: u32 = 0x05;
/// See [`DRM_QAIC_MANAGE`].
pub const DRM_QAIC_WAIT_BO: u32 = 0x06;
/// See [`DRM_QAIC_MANAGE`].
pub const DRM_QAIC_PERF_STATS_BO: u32 = 0x07;
/// See [`DRM_QAIC_MANAGE`].
pub const DRM_QAIC_DETACH_SLICE_BO: u32 = 0x08;

const fn drm_iowr(nr: u32, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, DRM_IOCTL_BASE, nr, size)
}
const fn drm_iow(nr: u32, size: usize) -> u32 {
    ioc(IOC_WRITE, DRM_IOCTL_BASE, nr, size)
}

/// `DRM_IOCTL_QAIC_MANAGE`.
pub const DRM_IOCTL_QAIC_MANAGE: u32 = drm_iowr(
    DRM_COMMAND_BASE + DRM_QAIC_MANAGE,
    size_of::<qaic_manage_msg>(),
);
/// `DRM_IOCTL_QAIC_CREATE_BO`.
pub const DRM_IOCTL_QAIC_CREATE_BO: u32 = drm_iowr(
    DRM_COMMAND_BASE + DRM_QAIC_CREATE_BO,
    size_of::<qaic_create_bo>(),
);
/// `DRM_IOCTL_QAIC_MMAP_BO`.
pub const DRM_IOCTL_QAIC_MMAP_BO: u32 = drm_iowr(
    DRM_COMMAND_BASE + DRM_QAIC_MMAP_BO,
    size_of::<qaic_mmap_bo>(),
);
/// `DRM_IOCTL_QAIC_ATTACH_SLICE_BO`.
pub const DRM_IOCTL_QAIC_ATTACH_SLICE_BO: u32 = drm_iow(
    DRM_COMMAND_BASE + DRM_QAIC_ATTACH_SLICE_BO,
    size_of::<qaic_attach_slice>(),
);
/// `DRM_IOCTL_QAIC_EXECUTE_BO`.
pub const DRM_IOCTL_QAIC_EXECUTE_BO: u32 = drm_iow(
    DRM_COMMAND_BASE + DRM_QAIC_EXECUTE_BO,
    size_of::<qaic_execute>(),
);
/// `DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO`.
pub const DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO: u32 = drm_iow(
    DRM_COMMAND_BASE + DRM_QAIC_PARTIAL_EXECUTE_BO,
    size_of::<qaic_execute>(),
);
/// `DRM_IOCTL_QAIC_WAIT_BO`.
pub const DRM_IOCTL_QAIC_WAIT_BO: u32 =
    drm_iow(DRM_COMMAND_BASE + DRM_QAIC_WAIT_BO, size_of::<qaic_wait>());
/// `DRM_IOCTL_QAIC_PERF_STATS_BO`.
pub const DRM_IOCTL_QAIC_PERF_STATS_BO: u32 = drm_iowr(
    DRM_COMMAND_BASE + DRM_QAIC_PERF_STATS_BO,
    size_of::<qaic_perf_stats>(),
);
/// `DRM_IOCTL_QAIC_DETACH_SLICE_BO`.
pub const DRM_IOCTL_QAIC_DETACH_SLICE_BO: u32 = drm_iow(
    DRM_COMMAND_BASE + DRM_QAIC_DETACH_SLICE_BO,
    size_of::<qaic_detach_slice>(),
);
/// Generic `DRM_IOCTL_GEM_CLOSE` (nr 0x09).
pub const DRM_IOCTL_GEM_CLOSE: u32 = drm_iow(0x09, size_of::<drm_gem_close>());
/// Generic `DRM_IOCTL_VERSION` (nr 0x00).
pub const DRM_IOCTL_VERSION: u32 = drm_iowr(0x00, size_of::<drm_version>());
/// Generic `DRM_IOCTL_PRIME_HANDLE_TO_FD` (nr 0x2d).
pub const DRM_IOCTL_PRIME_HANDLE_TO_FD: u32 = drm_iowr(0x2d, size_of::<drm_prime_handle>());
/// Generic `DRM_IOCTL_PRIME_FD_TO_HANDLE` (nr 0x2e).
pub const DRM_IOCTL_PRIME_FD_TO_HANDLE: u32 = drm_iowr(0x2e, size_of::<drm_prime_handle>());

// ---- layout assertions (numbers from the uapi specification, x86-64) -------------------------

macro_rules! layout {
    ($t:ty, $size:expr $(, $field:ident @ $off:expr)* $(,)?) => {
        const _: () = assert!(size_of::<$t>() == $size);
        $(const _: () = assert!(offset_of!($t, $field) == $off);)*
    };
}

layout!(qaic_manage_trans_hdr, 8, type_ @ 0, len @ 4);
layout!(qaic_manage_trans_dma_xfer, 32, hdr @ 0, tag @ 8, pad @ 12, addr @ 16, size @ 24);
layout!(qaic_manage_trans_activate_to_dev, 24, hdr @ 0, queue_size @ 8, eventfd @ 12, options @ 16, pad @ 20);
layout!(qaic_manage_trans_activate_from_dev, 24, hdr @ 0, status @ 8, dbc_id @ 12, options @ 16);
layout!(qaic_manage_trans_deactivate, 16, hdr @ 0, dbc_id @ 8, pad @ 12);
layout!(qaic_manage_trans_status_to_dev, 8, hdr @ 0);
layout!(qaic_manage_trans_status_from_dev, 24, hdr @ 0, major @ 8, minor @ 10, status @ 12, status_flags @ 16);
layout!(qaic_manage_msg, 16, len @ 0, count @ 4, data @ 8);
layout!(qaic_create_bo, 16, size @ 0, handle @ 8, pad @ 12);
layout!(qaic_mmap_bo, 16, handle @ 0, pad @ 4, offset @ 8);
layout!(qaic_sem, 8, val @ 0, index @ 2, presync @ 3, cmd @ 4, flags @ 5, pad @ 6);
layout!(
    qaic_attach_slice_entry, 72,
    size @ 0, sem0 @ 8, sem1 @ 16, sem2 @ 24, sem3 @ 32, dev_addr @ 40, db_addr @ 48,
    db_data @ 56, db_len @ 60, offset @ 64,
);
layout!(qaic_attach_slice_hdr, 24, count @ 0, dbc_id @ 4, handle @ 8, dir @ 12, size @ 16);
layout!(qaic_attach_slice, 32, hdr @ 0, data @ 24);
layout!(qaic_execute_entry, 8, handle @ 0, dir @ 4);
layout!(qaic_partial_execute_entry, 16, handle @ 0, dir @ 4, resize @ 8);
layout!(qaic_execute_hdr, 8, count @ 0, dbc_id @ 4);
layout!(qaic_execute, 16, hdr @ 0, data @ 8);
layout!(qaic_wait, 16, handle @ 0, timeout @ 4, dbc_id @ 8, pad @ 12);
layout!(qaic_perf_stats_hdr, 8, count @ 0, pad @ 2, dbc_id @ 4);
layout!(qaic_perf_stats, 16, hdr @ 0, data @ 8);
layout!(
    qaic_perf_stats_entry, 24,
    handle @ 0, queue_level_before @ 4, num_queue_element @ 8, submit_latency_us @ 12,
    device_latency_us @ 16, pad @ 20,
);
layout!(qaic_detach_slice, 8, handle @ 0, pad @ 4);
layout!(drm_gem_close, 8, handle @ 0, pad @ 4);
layout!(drm_prime_handle, 12, handle @ 0, flags @ 4, fd @ 8);

#[cfg(test)]
mod tests {
    use super::*;

    /// Encoded request values from the ioctl table of the uapi specification.
    #[test]
    fn ioctl_numbers_match_spec() {
        assert_eq!(DRM_IOCTL_QAIC_MANAGE, 0xc010_6440);
        assert_eq!(DRM_IOCTL_QAIC_CREATE_BO, 0xc010_6441);
        assert_eq!(DRM_IOCTL_QAIC_MMAP_BO, 0xc010_6442);
        assert_eq!(DRM_IOCTL_QAIC_ATTACH_SLICE_BO, 0x4020_6443);
        assert_eq!(DRM_IOCTL_QAIC_EXECUTE_BO, 0x4010_6444);
        assert_eq!(DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO, 0x4010_6445);
        assert_eq!(DRM_IOCTL_QAIC_WAIT_BO, 0x4010_6446);
        assert_eq!(DRM_IOCTL_QAIC_PERF_STATS_BO, 0xc010_6447);
        assert_eq!(DRM_IOCTL_QAIC_DETACH_SLICE_BO, 0x4008_6448);
    }

    #[test]
    fn generic_drm_ioctl_numbers() {
        assert_eq!(DRM_IOCTL_GEM_CLOSE, 0x4008_6409);
        assert_eq!(DRM_IOCTL_PRIME_HANDLE_TO_FD, 0xc00c_642d);
        assert_eq!(DRM_IOCTL_PRIME_FD_TO_HANDLE, 0xc00c_642e);
        assert_eq!(DRM_CLOEXEC, libc::O_CLOEXEC as u32);
        assert_eq!(DRM_RDWR, libc::O_RDWR as u32);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(DRM_IOCTL_VERSION, 0xc040_6400);
    }

    #[test]
    fn ioc_fields() {
        // direction in bits 31:30, size in 29:16, type in 15:8, number in 7:0
        let v = ioc(IOC_READ, b'x', 0x12, 0x345);
        assert_eq!(v >> 30, IOC_READ);
        assert_eq!((v >> 16) & 0x3fff, 0x345);
        assert_eq!((v >> 8) & 0xff, u32::from(b'x'));
        assert_eq!(v & 0xff, 0x12);
    }

    /// Every numeric `#define` of the project's C header has the same value
    /// here, so the Rust mirror cannot drift from `uapi/qaic_accel.h`.
    #[test]
    fn constants_match_c_header() {
        let header = include_str!("../../../uapi/qaic_accel.h");
        let rust: &[(&str, u32)] = &[
            ("QAIC_SEM_INSYNCFENCE", QAIC_SEM_INSYNCFENCE.into()),
            ("QAIC_SEM_OUTSYNCFENCE", QAIC_SEM_OUTSYNCFENCE.into()),
            ("QAIC_SEM_NOP", QAIC_SEM_NOP.into()),
            ("QAIC_SEM_INIT", QAIC_SEM_INIT.into()),
            ("QAIC_SEM_INC", QAIC_SEM_INC.into()),
            ("QAIC_SEM_DEC", QAIC_SEM_DEC.into()),
            ("QAIC_SEM_WAIT_EQUAL", QAIC_SEM_WAIT_EQUAL.into()),
            ("QAIC_SEM_WAIT_GT_EQ", QAIC_SEM_WAIT_GT_EQ.into()),
            ("QAIC_SEM_WAIT_GT_0", QAIC_SEM_WAIT_GT_0.into()),
            ("QAIC_TRANS_UNDEFINED", trans::UNDEFINED),
            (
                "QAIC_TRANS_PASSTHROUGH_FROM_USR",
                trans::PASSTHROUGH_FROM_USR,
            ),
            ("QAIC_TRANS_PASSTHROUGH_TO_USR", trans::PASSTHROUGH_TO_USR),
            (
                "QAIC_TRANS_PASSTHROUGH_FROM_DEV",
                trans::PASSTHROUGH_FROM_DEV,
            ),
            ("QAIC_TRANS_PASSTHROUGH_TO_DEV", trans::PASSTHROUGH_TO_DEV),
            ("QAIC_TRANS_DMA_XFER_FROM_USR", trans::DMA_XFER_FROM_USR),
            ("QAIC_TRANS_DMA_XFER_TO_DEV", trans::DMA_XFER_TO_DEV),
            ("QAIC_TRANS_ACTIVATE_FROM_USR", trans::ACTIVATE_FROM_USR),
            ("QAIC_TRANS_ACTIVATE_FROM_DEV", trans::ACTIVATE_FROM_DEV),
            ("QAIC_TRANS_ACTIVATE_TO_DEV", trans::ACTIVATE_TO_DEV),
            ("QAIC_TRANS_DEACTIVATE_FROM_USR", trans::DEACTIVATE_FROM_USR),
            ("QAIC_TRANS_DEACTIVATE_FROM_DEV", trans::DEACTIVATE_FROM_DEV),
            ("QAIC_TRANS_STATUS_FROM_USR", trans::STATUS_FROM_USR),
            ("QAIC_TRANS_STATUS_TO_USR", trans::STATUS_TO_USR),
            ("QAIC_TRANS_STATUS_FROM_DEV", trans::STATUS_FROM_DEV),
            ("QAIC_TRANS_STATUS_TO_DEV", trans::STATUS_TO_DEV),
            ("QAIC_TRANS_TERMINATE_FROM_DEV", trans::TERMINATE_FROM_DEV),
            ("QAIC_TRANS_TERMINATE_TO_DEV", trans::TERMINATE_TO_DEV),
            ("QAIC_TRANS_DMA_XFER_CONT", trans::DMA_XFER_CONT),
            (
                "QAIC_TRANS_VALIDATE_PARTITION_FROM_DEV",
                trans::VALIDATE_PARTITION_FROM_DEV,
            ),
            (
                "QAIC_TRANS_VALIDATE_PARTITION_TO_DEV",
                trans::VALIDATE_PARTITION_TO_DEV,
            ),
            ("DRM_QAIC_MANAGE", DRM_QAIC_MANAGE),
            ("DRM_QAIC_CREATE_BO", DRM_QAIC_CREATE_BO),
            ("DRM_QAIC_MMAP_BO", DRM_QAIC_MMAP_BO),
            ("DRM_QAIC_ATTACH_SLICE_BO", DRM_QAIC_ATTACH_SLICE_BO),
            ("DRM_QAIC_EXECUTE_BO", DRM_QAIC_EXECUTE_BO),
            ("DRM_QAIC_PARTIAL_EXECUTE_BO", DRM_QAIC_PARTIAL_EXECUTE_BO),
            ("DRM_QAIC_WAIT_BO", DRM_QAIC_WAIT_BO),
            ("DRM_QAIC_PERF_STATS_BO", DRM_QAIC_PERF_STATS_BO),
            ("DRM_QAIC_DETACH_SLICE_BO", DRM_QAIC_DETACH_SLICE_BO),
        ];
        let mut seen = 0;
        for line in header.lines() {
            let mut w = line.split_whitespace();
            let (Some("#define"), Some(name), Some(value)) = (w.next(), w.next(), w.next()) else {
                continue;
            };
            let parsed = match value.strip_prefix("0x") {
                Some(h) => u32::from_str_radix(h, 16),
                None => value.parse::<u32>(),
            };
            let Ok(v) = parsed else { continue };
            let (_, mine) = rust
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("{name} has no Rust counterpart"));
            assert_eq!(*mine, v, "{name}");
            seen += 1;
        }
        assert_eq!(seen, rust.len(), "every constant appears in the header");
        assert!(header.contains("#define QAIC_MANAGE_MAX_MSG_LENGTH SZ_4K"));
    }

    #[test]
    fn semaphore_and_limit_constants() {
        assert_eq!(
            [
                QAIC_SEM_NOP,
                QAIC_SEM_INIT,
                QAIC_SEM_INC,
                QAIC_SEM_DEC,
                QAIC_SEM_WAIT_EQUAL,
                QAIC_SEM_WAIT_GT_EQ,
                QAIC_SEM_WAIT_GT_0
            ],
            [0, 1, 2, 3, 4, 5, 6]
        );
        assert_eq!((QAIC_SEM_INSYNCFENCE, QAIC_SEM_OUTSYNCFENCE), (2, 1));
        assert_eq!(QAIC_MANAGE_MAX_MSG_LENGTH, 4096);
        assert_eq!(
            QAIC_MANAGE_MAX_TRANSACTIONS as usize,
            QAIC_MANAGE_MAX_MSG_LENGTH / 8
        );
        assert_eq!(trans::VALIDATE_PARTITION_TO_DEV, 20);
        assert_eq!(trans::STATUS_FROM_DEV, 14);
    }
}
