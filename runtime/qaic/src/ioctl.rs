// SPDX-License-Identifier: MIT OR Apache-2.0
//! The only module with `unsafe` code: raw `ioctl(2)`, `mmap(2)` and
//! `munmap(2)`.
//!
//! Every function here is safe to call because it builds the ioctl argument
//! itself: the request number is tied to the argument type, and every user
//! pointer handed to the kernel is derived from a Rust slice whose length
//! bounds what the kernel may write. Arguments the kernel only *reads*
//! through (attach, execute) may carry a caller-chosen count; a count larger
//! than the slice makes the kernel read past it or fail with `EFAULT`, but
//! can never make it write into this process.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use crate::error::Errno;
use crate::uapi::{self, *};

/// Argument structures without embedded pointers, with their request number.
pub(crate) trait PlainArg: Copy {
    const REQUEST: u32;
}
impl PlainArg for qaic_create_bo {
    const REQUEST: u32 = uapi::DRM_IOCTL_QAIC_CREATE_BO;
}
impl PlainArg for qaic_mmap_bo {
    const REQUEST: u32 = uapi::DRM_IOCTL_QAIC_MMAP_BO;
}
impl PlainArg for qaic_wait {
    const REQUEST: u32 = uapi::DRM_IOCTL_QAIC_WAIT_BO;
}
impl PlainArg for qaic_detach_slice {
    const REQUEST: u32 = uapi::DRM_IOCTL_QAIC_DETACH_SLICE_BO;
}
impl PlainArg for drm_gem_close {
    const REQUEST: u32 = uapi::DRM_IOCTL_GEM_CLOSE;
}

/// Exports a GEM handle as a dma-buf file descriptor.
pub(crate) fn prime_handle_to_fd(
    fd: BorrowedFd<'_>,
    handle: u32,
    flags: u32,
) -> Result<OwnedFd, Errno> {
    let mut arg = drm_prime_handle {
        handle,
        flags,
        fd: -1,
    };
    // SAFETY: PRIME_HANDLE_TO_FD takes a `drm_prime_handle`, which holds no pointers.
    unsafe { raw(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut arg)? };
    if arg.fd < 0 {
        return Err(Errno(libc::EBADF));
    }
    // SAFETY: on success the kernel installed a new descriptor `arg.fd` in this process for the
    // caller, so nothing else owns it yet.
    Ok(unsafe { OwnedFd::from_raw_fd(arg.fd) })
}

/// Imports a dma-buf file descriptor as a GEM handle.
pub(crate) fn prime_fd_to_handle(fd: BorrowedFd<'_>, dmabuf: BorrowedFd<'_>) -> Result<u32, Errno> {
    let mut arg = drm_prime_handle {
        handle: 0,
        flags: 0,
        fd: dmabuf.as_raw_fd(),
    };
    // SAFETY: PRIME_FD_TO_HANDLE takes a `drm_prime_handle`, which holds no pointers; the
    // descriptor is only borrowed for the call.
    unsafe { raw(fd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &mut arg)? };
    Ok(arg.handle)
}

/// Issues `ioctl(fd, request, arg)`, retrying on `EINTR`.
///
/// # Safety
/// `request` must be an ioctl whose argument is a `T` (the kernel copies
/// `_IOC_SIZE(request) == size_of::<T>()` bytes in and out), and every user
/// pointer inside `*arg` must be valid for what the ioctl does with it.
unsafe fn raw<T>(fd: BorrowedFd<'_>, request: u32, arg: &mut T) -> Result<(), Errno> {
    debug_assert_eq!(
        ((request >> 16) & 0x3fff) as usize,
        std::mem::size_of::<T>()
    );
    loop {
        // SAFETY: the caller guarantees that `request` takes a `T` and that the pointers inside
        // it are valid; `arg` is a live, exclusive reference for the duration of the call and
        // `fd` is an open descriptor borrowed for the call.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg as *mut T) };
        if rc == 0 {
            return Ok(());
        }
        let errno = Errno::last();
        if errno.0 != libc::EINTR {
            return Err(errno);
        }
    }
}

/// Ioctls whose argument holds no pointer.
pub(crate) fn plain<T: PlainArg>(fd: BorrowedFd<'_>, arg: &mut T) -> Result<(), Errno> {
    // SAFETY: `T::REQUEST` is the request number that takes a `T` (see the impls above), and a
    // `PlainArg` contains no user pointers.
    unsafe { raw(fd, T::REQUEST, arg) }
}

/// Result of a MANAGE call: the kernel copies `len`/`count` back even on
/// failure.
pub(crate) struct ManageOut {
    pub result: Result<(), Errno>,
    pub len: u32,
    pub count: u32,
}

/// `DRM_IOCTL_QAIC_MANAGE` on a full-size buffer: the kernel writes at most
/// 4096 bytes of response into `buf`.
pub(crate) fn manage(
    fd: BorrowedFd<'_>,
    buf: &mut [u8; QAIC_MANAGE_MAX_MSG_LENGTH],
    len: u32,
    count: u32,
) -> ManageOut {
    let mut msg = qaic_manage_msg {
        len,
        count,
        data: buf.as_mut_ptr() as u64,
    };
    // SAFETY: MANAGE takes a `qaic_manage_msg`; `data` points to `buf`, which is writable for
    // the 4096 bytes the kernel may read or write (it never writes more than
    // QAIC_MANAGE_MAX_MSG_LENGTH), and `buf` is exclusively borrowed for the call. DMA_XFER
    // transactions inside carry addresses the kernel only reads.
    let result = unsafe { raw(fd, DRM_IOCTL_QAIC_MANAGE, &mut msg) };
    ManageOut {
        result,
        len: msg.len,
        count: msg.count,
    }
}

fn slice_ptr<T>(s: &[T]) -> u64 {
    if s.is_empty() {
        0
    } else {
        s.as_ptr() as u64
    }
}

/// `DRM_IOCTL_QAIC_ATTACH_SLICE_BO`; `data` is 0 when `entries` is empty.
pub(crate) fn attach_slice(
    fd: BorrowedFd<'_>,
    hdr: qaic_attach_slice_hdr,
    entries: &[qaic_attach_slice_entry],
) -> Result<(), Errno> {
    let mut arg = qaic_attach_slice {
        hdr,
        data: slice_ptr(entries),
    };
    // SAFETY: ATTACH_SLICE_BO takes a `qaic_attach_slice` and only reads the entries through
    // `data`, which points to `entries` (borrowed for the call) or is 0.
    unsafe { raw(fd, DRM_IOCTL_QAIC_ATTACH_SLICE_BO, &mut arg) }
}

/// `DRM_IOCTL_QAIC_EXECUTE_BO`.
pub(crate) fn execute(
    fd: BorrowedFd<'_>,
    count: u32,
    dbc_id: u32,
    entries: &[qaic_execute_entry],
) -> Result<(), Errno> {
    let mut arg = qaic_execute {
        hdr: qaic_execute_hdr { count, dbc_id },
        data: slice_ptr(entries),
    };
    // SAFETY: EXECUTE_BO takes a `qaic_execute` and only reads entries through `data`, which
    // points to `entries` (borrowed for the call) or is 0.
    unsafe { raw(fd, DRM_IOCTL_QAIC_EXECUTE_BO, &mut arg) }
}

/// `DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO`.
pub(crate) fn partial_execute(
    fd: BorrowedFd<'_>,
    count: u32,
    dbc_id: u32,
    entries: &[qaic_partial_execute_entry],
) -> Result<(), Errno> {
    let mut arg = qaic_execute {
        hdr: qaic_execute_hdr { count, dbc_id },
        data: slice_ptr(entries),
    };
    // SAFETY: PARTIAL_EXECUTE_BO takes a `qaic_execute` and only reads partial entries through
    // `data`, which points to `entries` (borrowed for the call) or is 0.
    unsafe { raw(fd, DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO, &mut arg) }
}

/// `DRM_IOCTL_QAIC_PERF_STATS_BO`: the kernel fills exactly `entries.len()`
/// entries (the count is taken from the slice, at most `u16::MAX`).
pub(crate) fn perf_stats(
    fd: BorrowedFd<'_>,
    dbc_id: u32,
    entries: &mut [qaic_perf_stats_entry],
) -> Result<(), Errno> {
    let count = u16::try_from(entries.len()).map_err(|_| Errno(libc::EINVAL))?;
    let data = if entries.is_empty() {
        0
    } else {
        entries.as_mut_ptr() as u64
    };
    let mut arg = qaic_perf_stats {
        hdr: qaic_perf_stats_hdr {
            count,
            pad: 0,
            dbc_id,
        },
        data,
    };
    // SAFETY: PERF_STATS_BO takes a `qaic_perf_stats` and reads and writes `count` entries at
    // `data`, which is exactly `entries` (exclusively borrowed for the call).
    unsafe { raw(fd, DRM_IOCTL_QAIC_PERF_STATS_BO, &mut arg) }
}

/// What `DRM_IOCTL_VERSION` reports.
pub(crate) struct VersionOut {
    pub major: i32,
    pub minor: i32,
    pub patch: i32,
    pub name: String,
    pub date: String,
    pub desc: String,
}

/// `DRM_IOCTL_VERSION` with 128-byte string buffers.
pub(crate) fn version(fd: BorrowedFd<'_>) -> Result<VersionOut, Errno> {
    let mut name = [0u8; 128];
    let mut date = [0u8; 128];
    let mut desc = [0u8; 128];
    let mut arg = drm_version {
        version_major: 0,
        version_minor: 0,
        version_patchlevel: 0,
        name_len: name.len(),
        name: name.as_mut_ptr(),
        date_len: date.len(),
        date: date.as_mut_ptr(),
        desc_len: desc.len(),
        desc: desc.as_mut_ptr(),
    };
    // SAFETY: VERSION takes a `drm_version`; each string pointer refers to a local buffer of
    // exactly the length given next to it, and the kernel writes at most that many bytes.
    unsafe { raw(fd, DRM_IOCTL_VERSION, &mut arg)? };
    let text = |buf: &[u8], len: usize| {
        let b = &buf[..len.min(buf.len())];
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    };
    Ok(VersionOut {
        major: arg.version_major,
        minor: arg.version_minor,
        patch: arg.version_patchlevel,
        name: text(&name, arg.name_len),
        date: text(&date, arg.date_len),
        desc: text(&desc, arg.desc_len),
    })
}

/// A shared, read-write memory mapping of a buffer object.
///
/// The memory is shared with the device: it may change while the buffer
/// object is queued for execution. Callers must only access it while the
/// object is idle (before submitting it and after the wait for it returned).
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this object; access goes through `&self` /
// `&mut self`, so Rust's aliasing rules serialize it like for a `Box<[u8]>`.
unsafe impl Send for Mapping {}
// SAFETY: shared access only hands out `&[u8]`, which is fine from several threads.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` at the fake `offset` returned by MMAP_BO.
    pub(crate) fn new(fd: BorrowedFd<'_>, offset: u64, len: usize) -> Result<Mapping, Errno> {
        if len == 0 {
            return Err(Errno(libc::EINVAL));
        }
        let off = libc::off_t::try_from(offset).map_err(|_| Errno(libc::EOVERFLOW))?;
        // SAFETY: a fresh shared mapping chosen by the kernel (addr NULL) cannot overlap any
        // existing Rust object; the arguments are plain values.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(Errno(libc::EFAULT))?;
        Ok(Mapping { ptr, len })
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The mapped bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is a live mapping of `len` readable bytes until `drop`, and the
        // returned borrow cannot outlive `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The mapped bytes, writable.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, plus the mapping is writable and `&mut self` guarantees no
        // other borrow of it exists in this process.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping created by `Mapping::new` that no borrow
        // refers to any more (`drop` has `&mut self`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}
