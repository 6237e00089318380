// SPDX-License-Identifier: MIT OR Apache-2.0
//! The errno values each call may legally return, from the uapi
//! specification (validation tables of every ioctl, the MANAGE error
//! summary), the DRM core, and the documented differences of qaic_rs
//! (`Documentation/driver.rst`). Anything else is a finding.

use libc::*;

/// A call the fuzzer makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Call {
    /// DRM_IOCTL_QAIC_MANAGE.
    Manage,
    /// DRM_IOCTL_QAIC_CREATE_BO.
    CreateBo,
    /// DRM_IOCTL_QAIC_MMAP_BO.
    MmapBo,
    /// mmap(2) of a buffer object's fake offset.
    Mmap,
    /// DRM_IOCTL_QAIC_ATTACH_SLICE_BO.
    Attach,
    /// DRM_IOCTL_QAIC_EXECUTE_BO.
    Execute,
    /// DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO.
    PartialExecute,
    /// DRM_IOCTL_QAIC_WAIT_BO.
    Wait,
    /// DRM_IOCTL_QAIC_PERF_STATS_BO.
    PerfStats,
    /// DRM_IOCTL_QAIC_DETACH_SLICE_BO.
    Detach,
    /// DRM_IOCTL_GEM_CLOSE.
    GemClose,
    /// DRM_IOCTL_PRIME_HANDLE_TO_FD.
    PrimeExport,
    /// DRM_IOCTL_PRIME_FD_TO_HANDLE.
    PrimeImport,
    /// open(2) of the accel node.
    Open,
}

impl Call {
    /// Every call, in report order.
    #[cfg(test)]
    pub const ALL: [Call; 14] = [
        Call::Manage,
        Call::CreateBo,
        Call::MmapBo,
        Call::Mmap,
        Call::Attach,
        Call::Execute,
        Call::PartialExecute,
        Call::Wait,
        Call::PerfStats,
        Call::Detach,
        Call::GemClose,
        Call::PrimeExport,
        Call::PrimeImport,
        Call::Open,
    ];

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Call::Manage => "MANAGE",
            Call::CreateBo => "CREATE_BO",
            Call::MmapBo => "MMAP_BO",
            Call::Mmap => "mmap",
            Call::Attach => "ATTACH_SLICE_BO",
            Call::Execute => "EXECUTE_BO",
            Call::PartialExecute => "PARTIAL_EXECUTE_BO",
            Call::Wait => "WAIT_BO",
            Call::PerfStats => "PERF_STATS_BO",
            Call::Detach => "DETACH_SLICE_BO",
            Call::GemClose => "GEM_CLOSE",
            Call::PrimeExport => "PRIME_HANDLE_TO_FD",
            Call::PrimeImport => "PRIME_FD_TO_HANDLE",
            Call::Open => "open",
        }
    }

    /// The errnos this call may return.
    pub fn legal(self) -> &'static [i32] {
        match self {
            // control-protocol.md §5.3-§6; EINTR for interrupted waits; EOVERFLOW, which the
            // specification does not list, is what both drivers return for a DMA transfer whose
            // page-rounded end passes 2^64 (address 2^64 - 17, size 1)
            Call::Manage => &[
                EINVAL, ENODEV, EFAULT, ENOSPC, ENOMEM, EPERM, ETIMEDOUT, EIO, EPIPE, EAGAIN,
                ECANCELED, EINTR, EOVERFLOW,
            ],
            Call::CreateBo => &[EINVAL, ENODEV, ENOMEM],
            Call::MmapBo => &[ENOENT, ENODEV, EINVAL, ENOMEM],
            // DRM core: unknown offset EINVAL, another file's object EACCES, longer than the
            // object EINVAL; imported objects EINVAL; offset + length past 2^64 EOVERFLOW (mm core)
            Call::Mmap => &[EINVAL, EACCES, ENOMEM, ENODEV, EPERM, EOVERFLOW],
            Call::Attach => &[EINVAL, ENODEV, EFAULT, ENOMEM, ENOENT, EINTR, EPIPE, ENOSPC],
            Call::Execute | Call::PartialExecute => &[
                EINVAL, EFAULT, ENOMEM, EOVERFLOW, ENODEV, EPERM, EPIPE, EINTR, ENOENT, EAGAIN,
            ],
            // EIO: qaic_rs reports a non-zero status in a response (driver.rst, differences)
            Call::Wait => &[EINVAL, ENODEV, EPERM, EPIPE, ENOENT, ETIMEDOUT, EINTR, EIO],
            Call::PerfStats => &[ENODEV, EINVAL, EFAULT, ENOMEM, ENOENT],
            Call::Detach => &[EINVAL, ENODEV, ENOENT, EINTR, EBUSY],
            // DRM core: unknown handle
            Call::GemClose => &[EINVAL],
            Call::PrimeExport => &[ENOENT, EINVAL, EMFILE, ENOMEM, EOPNOTSUPP],
            Call::PrimeImport => &[EBADF, EINVAL, ENOMEM, ENOENT, EMFILE],
            Call::Open => &[ENODEV, EACCES, ENOMEM, EMFILE, ENFILE],
        }
    }
}

/// Symbolic name of an errno.
pub fn name(e: i32) -> String {
    qaic::Errno(e)
        .name()
        .map_or_else(|| format!("errno {e}"), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_has_a_name_and_errnos() {
        for c in Call::ALL {
            assert!(!c.name().is_empty());
            assert!(!c.legal().is_empty());
        }
        assert!(Call::Wait.legal().contains(&ETIMEDOUT));
        assert!(!Call::CreateBo.legal().contains(&EFAULT));
        assert_eq!(name(EINVAL), "EINVAL");
        assert_eq!(name(9999), "errno 9999");
    }
}
