// SPDX-License-Identifier: MIT OR Apache-2.0
//! Error type of the runtime.

use std::fmt;
use std::path::PathBuf;

use crate::manage::ManageResponse;
use crate::nnc::{NncCommand, NncStatus};
use crate::uapi;
use crate::workload::WorkloadError;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An `errno` value returned by the kernel.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// The symbolic name (`"EINVAL"`), if it is one the driver is known to return.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::EINTR => "EINTR",
            libc::EIO => "EIO",
            libc::ENXIO => "ENXIO",
            libc::EBADF => "EBADF",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EBUSY => "EBUSY",
            libc::ENODEV => "ENODEV",
            libc::EINVAL => "EINVAL",
            libc::ENOTTY => "ENOTTY",
            libc::ENOSPC => "ENOSPC",
            libc::EPIPE => "EPIPE",
            libc::ERANGE => "ERANGE",
            libc::EOVERFLOW => "EOVERFLOW",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            libc::ETIMEDOUT => "ETIMEDOUT",
            libc::ECANCELED => "ECANCELED",
            512 => "ERESTARTSYS",
            _ => return None,
        })
    }

    /// The errno of the calling thread's last failed libc call.
    pub(crate) fn last() -> Errno {
        Errno(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = std::io::Error::from_raw_os_error(self.0).to_string();
        let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
        match self.name() {
            Some(name) => write!(f, "{name} ({text})"),
            None => write!(f, "errno {} ({text})", self.0),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

/// The ioctl (or other system call) that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ioctl {
    /// `DRM_IOCTL_QAIC_MANAGE`
    Manage,
    /// `DRM_IOCTL_QAIC_CREATE_BO`
    CreateBo,
    /// `DRM_IOCTL_QAIC_MMAP_BO`
    MmapBo,
    /// `DRM_IOCTL_QAIC_ATTACH_SLICE_BO`
    AttachSliceBo,
    /// `DRM_IOCTL_QAIC_EXECUTE_BO`
    ExecuteBo,
    /// `DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO`
    PartialExecuteBo,
    /// `DRM_IOCTL_QAIC_WAIT_BO`
    WaitBo,
    /// `DRM_IOCTL_QAIC_PERF_STATS_BO`
    PerfStatsBo,
    /// `DRM_IOCTL_QAIC_DETACH_SLICE_BO`
    DetachSliceBo,
    /// `DRM_IOCTL_GEM_CLOSE`
    GemClose,
    /// `DRM_IOCTL_VERSION`
    Version,
    /// `DRM_IOCTL_PRIME_HANDLE_TO_FD`
    PrimeHandleToFd,
    /// `DRM_IOCTL_PRIME_FD_TO_HANDLE`
    PrimeFdToHandle,
    /// `mmap(2)` of a buffer object
    Mmap,
}

impl Ioctl {
    /// The ioctl's name as spelled in the C header.
    pub fn name(self) -> &'static str {
        match self {
            Ioctl::Manage => "DRM_IOCTL_QAIC_MANAGE",
            Ioctl::CreateBo => "DRM_IOCTL_QAIC_CREATE_BO",
            Ioctl::MmapBo => "DRM_IOCTL_QAIC_MMAP_BO",
            Ioctl::AttachSliceBo => "DRM_IOCTL_QAIC_ATTACH_SLICE_BO",
            Ioctl::ExecuteBo => "DRM_IOCTL_QAIC_EXECUTE_BO",
            Ioctl::PartialExecuteBo => "DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO",
            Ioctl::WaitBo => "DRM_IOCTL_QAIC_WAIT_BO",
            Ioctl::PerfStatsBo => "DRM_IOCTL_QAIC_PERF_STATS_BO",
            Ioctl::DetachSliceBo => "DRM_IOCTL_QAIC_DETACH_SLICE_BO",
            Ioctl::GemClose => "DRM_IOCTL_GEM_CLOSE",
            Ioctl::Version => "DRM_IOCTL_VERSION",
            Ioctl::PrimeHandleToFd => "DRM_IOCTL_PRIME_HANDLE_TO_FD",
            Ioctl::PrimeFdToHandle => "DRM_IOCTL_PRIME_FD_TO_HANDLE",
            Ioctl::Mmap => "mmap",
        }
    }

    /// The request number passed to `ioctl(2)` (`None` for [`Ioctl::Mmap`]).
    pub fn request(self) -> Option<u32> {
        Some(match self {
            Ioctl::Manage => uapi::DRM_IOCTL_QAIC_MANAGE,
            Ioctl::CreateBo => uapi::DRM_IOCTL_QAIC_CREATE_BO,
            Ioctl::MmapBo => uapi::DRM_IOCTL_QAIC_MMAP_BO,
            Ioctl::AttachSliceBo => uapi::DRM_IOCTL_QAIC_ATTACH_SLICE_BO,
            Ioctl::ExecuteBo => uapi::DRM_IOCTL_QAIC_EXECUTE_BO,
            Ioctl::PartialExecuteBo => uapi::DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO,
            Ioctl::WaitBo => uapi::DRM_IOCTL_QAIC_WAIT_BO,
            Ioctl::PerfStatsBo => uapi::DRM_IOCTL_QAIC_PERF_STATS_BO,
            Ioctl::DetachSliceBo => uapi::DRM_IOCTL_QAIC_DETACH_SLICE_BO,
            Ioctl::GemClose => uapi::DRM_IOCTL_GEM_CLOSE,
            Ioctl::Version => uapi::DRM_IOCTL_VERSION,
            Ioctl::PrimeHandleToFd => uapi::DRM_IOCTL_PRIME_HANDLE_TO_FD,
            Ioctl::PrimeFdToHandle => uapi::DRM_IOCTL_PRIME_FD_TO_HANDLE,
            Ioctl::Mmap => return None,
        })
    }
}

impl fmt::Display for Ioctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kernel rejected an ioctl (or `mmap`).
    #[error("{ioctl} failed: {errno}")]
    Ioctl {
        /// Which call failed.
        ioctl: Ioctl,
        /// The error number the kernel returned.
        errno: Errno,
    },
    /// MANAGE returned `ECANCELED`: the device answered but reported a
    /// non-zero status in an activate, deactivate or status transaction.
    /// The decoded answer is kept because the driver copies it back anyway.
    #[error("DRM_IOCTL_QAIC_MANAGE failed: the device refused a transaction (ECANCELED)")]
    ManageCanceled {
        /// The device's answer.
        response: Box<ManageResponse>,
    },
    /// Opening a device node failed.
    #[error("cannot open {}: {errno}", path.display())]
    Open {
        /// The node.
        path: PathBuf,
        /// The error number.
        errno: Errno,
    },
    /// Reading the device list from sysfs failed.
    #[error("sysfs {}: {source}", path.display())]
    Sysfs {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The request was rejected by this crate before reaching the kernel.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The device's answer could not be decoded.
    #[error("malformed answer from the device: {0}")]
    Protocol(String),
    /// A firmware (NNC) command completed with a non-zero status.
    #[error("{command} failed on the device: {status}")]
    Nnc {
        /// The command.
        command: NncCommand,
        /// The status it returned.
        status: NncStatus,
    },
    /// No matching device was found.
    #[error("no device: {0}")]
    NoDevice(String),
    /// The device does not offer what was asked for.
    #[error("not supported by this device: {0}")]
    Unsupported(String),
    /// A workload, its network image or its constants break the rules of
    /// the compute stand-in's format (`Documentation/workload.rst`).
    #[error("workload: {0}")]
    Workload(#[from] WorkloadError),
    /// The device computed a different output than the CPU reference.
    #[error("output {actual:?} differs from the CPU reference {expected:?} (input {input:?})")]
    OutputMismatch {
        /// The input of the request.
        input: Vec<i8>,
        /// What the CPU reference computed.
        expected: Vec<i8>,
        /// What the device returned.
        actual: Vec<i8>,
    },
}

impl Error {
    /// The kernel error number, when the error came from a system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Ioctl { errno, .. } | Error::Open { errno, .. } => Some(errno.0),
            Error::ManageCanceled { .. } => Some(libc::ECANCELED),
            Error::Sysfs { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The ioctl that failed, if any.
    pub fn ioctl(&self) -> Option<Ioctl> {
        match self {
            Error::Ioctl { ioctl, .. } => Some(*ioctl),
            Error::ManageCanceled { .. } => Some(Ioctl::Manage),
            _ => None,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
    }

    pub(crate) fn protocol(msg: impl Into<String>) -> Error {
        Error::Protocol(msg.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_display_has_name_and_text() {
        let s = Errno(libc::ENODEV).to_string();
        assert!(s.starts_with("ENODEV ("), "{s}");
        assert!(!s.contains("os error"), "{s}");
        assert_eq!(format!("{:?}", Errno(libc::EINVAL)), "EINVAL");
        assert_eq!(Errno(512).name(), Some("ERESTARTSYS"));
        assert_eq!(Errno(4000).name(), None);
    }

    #[test]
    fn error_carries_errno_and_ioctl() {
        let e = Error::Ioctl {
            ioctl: Ioctl::WaitBo,
            errno: Errno(libc::ETIMEDOUT),
        };
        assert_eq!(e.errno(), Some(libc::ETIMEDOUT));
        assert_eq!(e.ioctl(), Some(Ioctl::WaitBo));
        assert_eq!(
            e.to_string(),
            format!("DRM_IOCTL_QAIC_WAIT_BO failed: {}", Errno(libc::ETIMEDOUT))
        );
        assert_eq!(Error::invalid("x").errno(), None);
    }

    #[test]
    fn workload_errors_and_mismatches() {
        let e: Error = WorkloadError::NoSection.into();
        assert_eq!(
            e.to_string(),
            "workload: the ELF has no qaic_emu_workload section"
        );
        assert_eq!((e.errno(), e.ioctl()), (None, None));
        let e = Error::OutputMismatch {
            input: vec![1, 2],
            expected: vec![3],
            actual: vec![-4],
        };
        assert_eq!(
            e.to_string(),
            "output [-4] differs from the CPU reference [3] (input [1, 2])"
        );
    }

    #[test]
    fn ioctl_requests() {
        assert_eq!(Ioctl::Manage.request(), Some(0xc010_6440));
        assert_eq!(Ioctl::DetachSliceBo.request(), Some(0x4008_6448));
        assert_eq!(Ioctl::Mmap.request(), None);
        assert_eq!(Ioctl::ExecuteBo.to_string(), "DRM_IOCTL_QAIC_EXECUTE_BO");
    }
}
