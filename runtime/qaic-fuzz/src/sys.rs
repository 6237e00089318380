// SPDX-License-Identifier: MIT OR Apache-2.0
//! The fuzzer's only `unsafe` code: ioctls with caller-chosen user pointers,
//! `mmap(2)` of buffer objects, and the memory those pointers point into.
//!
//! The fuzzer hands the kernel hostile pointers on purpose. What keeps that
//! sound is that every pointer embedded in an ioctl argument is a
//! [`UserPtr`], which only this module builds, and each one is either
//!
//! * inside a thread's [`Scratch`] area, which ends at a `PROT_NONE` guard
//!   page: whatever the kernel writes from such a pointer lands in the
//!   scratch area (which no Rust reference ever covers) or faults at the
//!   guard, never in other memory of this process; or
//! * one of the [`Hostile`] addresses, where any kernel access faults: null
//!   and low addresses, a hole left by `munmap`, a `PROT_NONE` page, a
//!   read-only page (reads succeed, writes fault), a kernel address and a
//!   non-canonical one.
//!
//! Addresses in DMA transfer transactions are plain `u64`s: the drivers
//! only pin those pages for reading and the device only reads them.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use qaic::uapi::{self, *};

/// `errno` of a failed call.
pub type Errno = i32;

fn last_errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

const PAGE: usize = 4096;

/// Anonymous private mapping with `prot`, `len` bytes.
fn map_anon(len: usize, prot: i32) -> *mut u8 {
    // SAFETY: a fresh mapping chosen by the kernel (addr NULL) overlaps nothing that exists.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(p != libc::MAP_FAILED, "mmap of {len} bytes failed");
    p.cast()
}

/// A user pointer placed in an ioctl argument; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserPtr(u64);

impl UserPtr {
    /// The address.
    pub fn addr(self) -> u64 {
        self.0
    }
}

/// Kinds of addresses where every access (or every write) faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostileKind {
    /// 0.
    Null,
    /// A low address below `mmap_min_addr`.
    Low,
    /// A page no mapping covers.
    Unmapped,
    /// A mapped page without any access.
    ProtNone,
    /// A read-only page of zeros: the kernel can read, not write.
    ReadOnly,
    /// An address in the kernel's direct map.
    Kernel,
    /// A non-canonical address.
    NonCanonical,
}

/// Process-wide hostile addresses.
pub struct Hostile {
    unmapped: u64,
    prot_none: u64,
    read_only: u64,
}

impl Hostile {
    /// Finds an unmapped page and sets up the `PROT_NONE` page and the
    /// read-only page.
    pub fn new() -> Hostile {
        // A hole punched into a mapping would be reused by later mappings (thread stacks,
        // scratch areas). Far below where mmap places things (top-down from below the stack)
        // and above the program and its heap, nothing gets mapped: take a page there that
        // mincore() reports as unmapped.
        let mut unmapped = 0x1000_0000_0000u64;
        let mut vec = 0u8;
        loop {
            // SAFETY: mincore only inspects the page tables of the range; `vec` has room for
            // the one page asked about.
            let rc = unsafe { libc::mincore(unmapped as *mut libc::c_void, PAGE, &mut vec) };
            if rc != 0 && last_errno() == libc::ENOMEM {
                break;
            }
            unmapped += 0x1_0000_0000;
        }
        let prot_none = map_anon(PAGE, libc::PROT_NONE);
        let ro = map_anon(PAGE, libc::PROT_READ);
        Hostile {
            unmapped,
            prot_none: prot_none as u64,
            read_only: ro as u64,
        }
    }

    /// The address of a kind, `offset` bytes in (kept below a page for the
    /// mapped kinds).
    pub fn ptr(&self, kind: HostileKind, offset: u64) -> UserPtr {
        let o = offset % PAGE as u64;
        UserPtr(match kind {
            HostileKind::Null => 0,
            HostileKind::Low => 0x10 + (o & 0xff0),
            HostileKind::Unmapped => self.unmapped + o,
            HostileKind::ProtNone => self.prot_none + o,
            HostileKind::ReadOnly => self.read_only + o,
            HostileKind::Kernel => 0xffff_8880_0000_0000 + o,
            HostileKind::NonCanonical => 0x8000_0000_0000_0000 + o,
        })
    }

    /// Where a DMA transfer may point: the hostile addresses as plain values.
    pub fn addr(&self, kind: HostileKind) -> u64 {
        self.ptr(kind, 0).0
    }
}

impl Default for Hostile {
    fn default() -> Self {
        Self::new()
    }
}

/// A per-thread scratch area of [`Scratch::SIZE`] bytes followed by a
/// `PROT_NONE` guard page. Arguments the kernel reads or writes through a
/// pointer are placed at its end.
pub struct Scratch {
    base: *mut u8,
}

// SAFETY: the area is plain memory owned by this object and only touched through `&mut self`
// (or by the kernel during an ioctl of the owning thread).
unsafe impl Send for Scratch {}

impl Scratch {
    /// Usable bytes.
    pub const SIZE: usize = 64 * 1024;

    /// Maps the area and its guard page.
    pub fn new() -> Scratch {
        let base = map_anon(Self::SIZE + PAGE, libc::PROT_READ | libc::PROT_WRITE);
        // SAFETY: changes the protection of the last page of the mapping just made.
        let rc =
            unsafe { libc::mprotect(base.wrapping_add(Self::SIZE).cast(), PAGE, libc::PROT_NONE) };
        assert_eq!(rc, 0, "mprotect");
        Scratch { base }
    }

    /// Copies `bytes` so that a region of `room` bytes (at least
    /// `bytes.len()`, at most [`Scratch::SIZE`]) starting with them ends
    /// exactly at the guard page, and returns its start. The rest of the
    /// region is zeroed. With `room == bytes.len()` any access past the
    /// bytes faults.
    pub fn place(&mut self, bytes: &[u8], room: usize) -> UserPtr {
        let room = room.clamp(bytes.len(), Self::SIZE);
        let start = Self::SIZE - room;
        // SAFETY: `start + room == SIZE`, so the written range lies within the RW area, which
        // `&mut self` gives exclusive access to and no Rust reference covers.
        unsafe {
            let p = self.base.add(start);
            std::ptr::write_bytes(p, 0, room);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        }
        UserPtr(self.base as u64 + start as u64)
    }

    /// Reads `len` bytes at `ptr` back (e.g. what the kernel wrote there);
    /// empty when `ptr` is not in the area.
    pub fn read(&self, ptr: UserPtr, len: usize) -> Vec<u8> {
        let base = self.base as u64;
        if ptr.0 < base || ptr.0 > base + Self::SIZE as u64 {
            return Vec::new();
        }
        let off = (ptr.0 - base) as usize;
        let len = len.min(Self::SIZE - off);
        let mut v = vec![0u8; len];
        // SAFETY: `off + len <= SIZE`: the range is inside the RW area; no ioctl of this thread
        // is running (we hold `&self` of the thread's scratch).
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(off), v.as_mut_ptr(), len) };
        v
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: unmaps the area and guard made in `new`; nothing refers to them any more.
        unsafe { libc::munmap(self.base.cast(), Self::SIZE + PAGE) };
    }
}

/// Issues `ioctl(fd, request, arg)`, retrying on `EINTR`.
///
/// # Safety
/// `T` must be the argument type of `request` and every pointer inside it a
/// [`UserPtr`] (see the module documentation).
unsafe fn raw<T>(fd: BorrowedFd<'_>, request: u32, arg: &mut T) -> Result<(), Errno> {
    debug_assert_eq!(
        ((request >> 16) & 0x3fff) as usize,
        std::mem::size_of::<T>()
    );
    loop {
        // SAFETY: by the caller's guarantee; `arg` is exclusively borrowed for the call.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg as *mut T) };
        if rc == 0 {
            return Ok(());
        }
        let e = last_errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// MANAGE: returns the result and the `len`/`count` the kernel copied back.
pub fn manage(
    fd: BorrowedFd<'_>,
    len: u32,
    count: u32,
    data: UserPtr,
) -> (Result<(), Errno>, u32, u32) {
    let mut m = qaic_manage_msg {
        len,
        count,
        data: data.0,
    };
    // SAFETY: MANAGE takes a `qaic_manage_msg`; `data` is a `UserPtr`.
    let r = unsafe { raw(fd, uapi::DRM_IOCTL_QAIC_MANAGE, &mut m) };
    (r, m.len, m.count)
}

/// CREATE_BO.
pub fn create_bo(fd: BorrowedFd<'_>, arg: &mut qaic_create_bo) -> Result<(), Errno> {
    // SAFETY: no pointer inside.
    unsafe { raw(fd, uapi::DRM_IOCTL_QAIC_CREATE_BO, arg) }
}

/// MMAP_BO.
pub fn mmap_bo(fd: BorrowedFd<'_>, arg: &mut qaic_mmap_bo) -> Result<(), Errno> {
    // SAFETY: no pointer inside.
    unsafe { raw(fd, uapi::DRM_IOCTL_QAIC_MMAP_BO, arg) }
}

/// WAIT_BO.
pub fn wait_bo(fd: BorrowedFd<'_>, arg: &mut qaic_wait) -> Result<(), Errno> {
    // SAFETY: no pointer inside.
    unsafe { raw(fd, uapi::DRM_IOCTL_QAIC_WAIT_BO, arg) }
}

/// DETACH_SLICE_BO.
pub fn detach(fd: BorrowedFd<'_>, arg: &mut qaic_detach_slice) -> Result<(), Errno> {
    // SAFETY: no pointer inside.
    unsafe { raw(fd, uapi::DRM_IOCTL_QAIC_DETACH_SLICE_BO, arg) }
}

/// GEM_CLOSE.
pub fn gem_close(fd: BorrowedFd<'_>, handle: u32, pad: u32) -> Result<(), Errno> {
    let mut a = drm_gem_close { handle, pad };
    // SAFETY: no pointer inside.
    unsafe { raw(fd, uapi::DRM_IOCTL_GEM_CLOSE, &mut a) }
}

/// ATTACH_SLICE_BO; the kernel reads `hdr.count` entries at `data`.
pub fn attach(fd: BorrowedFd<'_>, hdr: qaic_attach_slice_hdr, data: UserPtr) -> Result<(), Errno> {
    let mut a = qaic_attach_slice { hdr, data: data.0 };
    // SAFETY: ATTACH_SLICE_BO takes a `qaic_attach_slice`; `data` is a `UserPtr`.
    unsafe { raw(fd, uapi::DRM_IOCTL_QAIC_ATTACH_SLICE_BO, &mut a) }
}

/// EXECUTE_BO or PARTIAL_EXECUTE_BO; the kernel reads `count` entries at `data`.
pub fn execute(
    fd: BorrowedFd<'_>,
    partial: bool,
    count: u32,
    dbc_id: u32,
    data: UserPtr,
) -> Result<(), Errno> {
    let mut a = qaic_execute {
        hdr: qaic_execute_hdr { count, dbc_id },
        data: data.0,
    };
    let req = if partial {
        uapi::DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO
    } else {
        uapi::DRM_IOCTL_QAIC_EXECUTE_BO
    };
    // SAFETY: both requests take a `qaic_execute`; `data` is a `UserPtr`.
    unsafe { raw(fd, req, &mut a) }
}

/// PERF_STATS_BO; the kernel reads and writes `count` entries at `data`.
pub fn perf_stats(
    fd: BorrowedFd<'_>,
    count: u16,
    pad: u16,
    dbc_id: u32,
    data: UserPtr,
) -> Result<(), Errno> {
    let mut a = qaic_perf_stats {
        hdr: qaic_perf_stats_hdr { count, pad, dbc_id },
        data: data.0,
    };
    // SAFETY: PERF_STATS_BO takes a `qaic_perf_stats`; `data` is a `UserPtr`.
    unsafe { raw(fd, uapi::DRM_IOCTL_QAIC_PERF_STATS_BO, &mut a) }
}

/// PRIME_HANDLE_TO_FD: the dma-buf.
pub fn prime_export(fd: BorrowedFd<'_>, handle: u32, flags: u32) -> Result<OwnedFd, Errno> {
    let mut a = drm_prime_handle {
        handle,
        flags,
        fd: -1,
    };
    // SAFETY: no pointer inside.
    unsafe { raw(fd, uapi::DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut a)? };
    if a.fd < 0 {
        return Err(libc::EBADF);
    }
    // SAFETY: on success the kernel installed the new descriptor `a.fd` for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(a.fd) })
}

/// PRIME_FD_TO_HANDLE: the new handle.
pub fn prime_import(fd: BorrowedFd<'_>, dmabuf: i32) -> Result<u32, Errno> {
    let mut a = drm_prime_handle {
        handle: 0,
        flags: 0,
        fd: dmabuf,
    };
    // SAFETY: no pointer inside; a wrong descriptor number only makes the kernel fail.
    unsafe { raw(fd, uapi::DRM_IOCTL_PRIME_FD_TO_HANDLE, &mut a)? };
    Ok(a.handle)
}

/// A shared mapping of a buffer object.
pub struct Map {
    ptr: *mut u8,
    len: usize,
}

impl Map {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, offset)`.
    pub fn new(fd: BorrowedFd<'_>, offset: u64, len: usize) -> Result<Map, Errno> {
        if len == 0 {
            return Err(libc::EINVAL);
        }
        // SAFETY: a fresh shared mapping chosen by the kernel overlaps nothing that exists.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(last_errno());
        }
        Ok(Map { ptr: p.cast(), len })
    }

    /// Writes `v` to the first and last byte and reads them back. The DRM
    /// core refuses a mapping longer than the object, so both bytes are
    /// backed by it.
    pub fn touch(&mut self, v: u8) -> bool {
        // SAFETY: both offsets are inside the mapping; volatile accesses, since the memory is
        // shared with the device.
        unsafe {
            let last = self.ptr.add(self.len - 1);
            std::ptr::write_volatile(self.ptr, v);
            std::ptr::write_volatile(last, v);
            std::ptr::read_volatile(self.ptr) == v && std::ptr::read_volatile(last) == v
        }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`; no reference into it exists.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// `setgid` + `setgroups([])` + `setuid`: drop root for good.
pub fn drop_privileges(uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: plain system calls without pointers (setgroups with an empty list).
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(last_errno());
        }
        if libc::setgid(gid) != 0 {
            return Err(last_errno());
        }
        if libc::setuid(uid) != 0 {
            return Err(last_errno());
        }
    }
    Ok(())
}

/// Effective user id.
pub fn geteuid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::geteuid() }
}

/// How a child started by [`in_child`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    /// It called `_exit` with this status.
    Exited(i32),
    /// A signal ended it (e.g. SIGBUS on a mapping whose pages are gone).
    Signaled(i32),
    /// `fork(2)` failed with this errno.
    ForkFailed(Errno),
}

/// Runs `f` in a forked child and returns how the child ended; the child's
/// exit status is what `f` returns. The child shares this process's shared
/// mappings (buffer objects), so `f` can touch them without risking this
/// process. `f` must not allocate or take locks: another thread of this
/// process may have held them at the fork.
pub fn in_child(f: impl FnOnce() -> i32) -> ChildEnd {
    // SAFETY: fork(2) has no memory-safety preconditions; the child below only runs `f` (which
    // the caller keeps free of allocation and locks) and `_exit`s without unwinding.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return ChildEnd::ForkFailed(last_errno());
    }
    if pid == 0 {
        let code = f();
        // SAFETY: `_exit` ends the child at once; nothing of the parent's state is run.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid `int` for the kernel to write.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && last_errno() != libc::EINTR {
            return ChildEnd::ForkFailed(last_errno());
        }
    }
    if libc::WIFSIGNALED(status) {
        ChildEnd::Signaled(libc::WTERMSIG(status))
    } else {
        ChildEnd::Exited(libc::WEXITSTATUS(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_child_reports_exit_status_and_signal() {
        assert_eq!(in_child(|| 7), ChildEnd::Exited(7));
        assert_eq!(in_child(|| 0), ChildEnd::Exited(0));
        let end = in_child(|| {
            // Rust's runtime handles SIGBUS (stack overflow detection) and ignores a raised one:
            // the default action, as for a fault on a mapping without pages.
            // SAFETY: signal(2) with SIG_DFL and raise(3) have no memory-safety preconditions.
            unsafe {
                libc::signal(libc::SIGBUS, libc::SIG_DFL);
                libc::raise(libc::SIGBUS);
            }
            0
        });
        assert_eq!(end, ChildEnd::Signaled(libc::SIGBUS));
    }
}
