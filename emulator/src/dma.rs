// SPDX-License-Identifier: MIT OR Apache-2.0
//! Device DMA into host memory.
//!
//! The device reaches host memory only through [`Dma`]. The vfio-user implementation,
//! [`MappedDma`], keeps the table of regions QEMU handed over with `DMA_MAP` (guest RAM as a
//! shared memfd, or 4 KiB IOVA pages with a vIOMMU) and refuses every access that is not fully
//! inside mapped memory: the device never writes outside what the host mapped. Tests use
//! [`FakeDma`], a sparse byte-addressed memory.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::os::fd::AsRawFd;

/// A refused DMA access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaFault {
    /// Bus address of the access.
    pub addr: u64,
    /// Length of the access.
    pub len: usize,
    /// True for a device write (host memory would have been modified).
    pub write: bool,
}

impl fmt::Display for DmaFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DMA {} of {} bytes at {:#x} outside host-mapped memory",
            if self.write { "write" } else { "read" },
            self.len,
            self.addr
        )
    }
}

/// Host memory as seen by the device.
pub trait Dma: Send {
    /// Copy `buf.len()` bytes from bus address `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaFault>;
    /// Copy `data` to bus address `addr`.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaFault>;

    /// Read `len` bytes into a new vector.
    fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>, DmaFault> {
        let mut v = vec![0u8; len];
        self.read(addr, &mut v)?;
        Ok(v)
    }
    /// Read a little-endian u32.
    fn read_u32(&self, addr: u64) -> Result<u32, DmaFault> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    /// Read a little-endian u64.
    fn read_u64(&self, addr: u64) -> Result<u64, DmaFault> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    /// Write a little-endian u32.
    fn write_u32(&mut self, addr: u64, v: u32) -> Result<(), DmaFault> {
        self.write(addr, &v.to_le_bytes())
    }
    /// Write a little-endian u64.
    fn write_u64(&mut self, addr: u64, v: u64) -> Result<(), DmaFault> {
        self.write(addr, &v.to_le_bytes())
    }
}

struct Mapping {
    iova: u64,
    size: u64,
    host: *mut u8, // null when QEMU passed no fd (not reachable by the device)
    writable: bool,
}

// SAFETY: the pointers refer to MAP_SHARED mappings owned by this table; every access goes
// through the table's bounds checks while the owner holds the device lock.
unsafe impl Send for Mapping {}

/// DMA through the memfd regions QEMU passes with `DMA_MAP`.
#[derive(Default)]
pub struct MappedDma {
    /// Sorted by `iova`, never overlapping (a new mapping replaces what it overlaps), so that a
    /// lookup is a binary search: with a vIOMMU there is one mapping per 4 KiB page, thousands.
    maps: Vec<Mapping>,
}

impl MappedDma {
    /// Empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a mapping (from `DMA_MAP`). Without an fd the range is recorded but not accessible.
    pub fn map(
        &mut self,
        iova: u64,
        size: u64,
        offset: u64,
        fd: Option<&File>,
        writable: bool,
    ) -> std::io::Result<()> {
        if size == 0 || iova.checked_add(size).is_none() {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        // A new mapping replaces whatever overlapped it.
        self.unmap(iova, size);
        let mut host = std::ptr::null_mut();
        if let Some(f) = fd {
            let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
            // SAFETY: plain mmap of a file descriptor QEMU handed to us; result checked.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size as usize,
                    prot,
                    libc::MAP_SHARED,
                    f.as_raw_fd(),
                    offset as libc::off_t,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            host = p as *mut u8;
        }
        let at = self.maps.partition_point(|m| m.iova < iova);
        self.maps.insert(
            at,
            Mapping {
                iova,
                size,
                host,
                writable,
            },
        );
        Ok(())
    }

    /// Remove every mapping that overlaps `[iova, iova + size)`; `size == 0` removes all.
    pub fn unmap(&mut self, iova: u64, size: u64) {
        let end = iova.saturating_add(size);
        self.maps.retain(|m| {
            let hit = size == 0 || (m.iova < end && iova < m.iova + m.size);
            if hit && !m.host.is_null() {
                // SAFETY: unmapping a mapping this table created.
                unsafe { libc::munmap(m.host as *mut libc::c_void, m.size as usize) };
            }
            !hit
        });
    }

    /// Number of mappings.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// True when nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// Resolve `[addr, addr+len)` into host pointers, piece by piece (an access may span
    /// adjacent mappings, e.g. 4 KiB vIOMMU pages).
    fn pieces(
        &self,
        addr: u64,
        len: usize,
        write: bool,
    ) -> Result<Vec<(*mut u8, usize)>, DmaFault> {
        let fault = DmaFault { addr, len, write };
        let mut out = Vec::new();
        let mut cur = addr;
        let end = addr.checked_add(len as u64).ok_or(fault)?;
        while cur < end {
            // The first mapping that ends after `cur`; it holds `cur` unless `cur` is in a hole.
            let i = self.maps.partition_point(|m| m.iova + m.size <= cur);
            let m = self.maps.get(i).filter(|m| cur >= m.iova).ok_or(fault)?;
            if m.host.is_null() || (write && !m.writable) {
                return Err(fault);
            }
            let n = (end.min(m.iova + m.size) - cur) as usize;
            // SAFETY: cur - m.iova < m.size, inside the mapping.
            out.push((unsafe { m.host.add((cur - m.iova) as usize) }, n));
            cur += n as u64;
        }
        Ok(out)
    }
}

impl Drop for MappedDma {
    fn drop(&mut self) {
        self.unmap(0, 0);
    }
}

impl Dma for MappedDma {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let mut off = 0;
        for (p, n) in self.pieces(addr, buf.len(), false)? {
            // SAFETY: p..p+n lies inside a live mapping (checked by pieces()).
            unsafe { std::ptr::copy_nonoverlapping(p, buf[off..].as_mut_ptr(), n) };
            off += n;
        }
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaFault> {
        let mut off = 0;
        for (p, n) in self.pieces(addr, data.len(), true)? {
            // SAFETY: p..p+n lies inside a live writable mapping (checked by pieces()).
            unsafe { std::ptr::copy_nonoverlapping(data[off..].as_ptr(), p, n) };
            off += n;
        }
        Ok(())
    }
}

/// Sparse fake host memory for tests: only ranges added with [`FakeDma::add_region`] exist.
#[derive(Default, Clone)]
pub struct FakeDma {
    regions: BTreeMap<u64, Vec<u8>>,
}

impl FakeDma {
    /// No memory at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make `[base, base+size)` accessible (zero filled).
    pub fn add_region(&mut self, base: u64, size: usize) {
        self.regions.insert(base, vec![0; size]);
    }

    fn locate(&self, addr: u64, len: usize) -> Option<(u64, usize)> {
        let (&base, mem) = self.regions.range(..=addr).next_back()?;
        let off = (addr - base) as usize;
        if off.checked_add(len)? <= mem.len() {
            Some((base, off))
        } else {
            None
        }
    }
}

impl Dma for FakeDma {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let fault = DmaFault {
            addr,
            len: buf.len(),
            write: false,
        };
        let (base, off) = self.locate(addr, buf.len()).ok_or(fault)?;
        buf.copy_from_slice(&self.regions[&base][off..off + buf.len()]);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaFault> {
        let fault = DmaFault {
            addr,
            len: data.len(),
            write: true,
        };
        let (base, off) = self.locate(addr, data.len()).ok_or(fault)?;
        self.regions.get_mut(&base).unwrap()[off..off + data.len()].copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd(size: usize) -> File {
        // SAFETY: memfd_create with a static name; result checked.
        let fd = unsafe { libc::memfd_create(c"dma-test".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: fd is a fresh memfd.
        assert_eq!(unsafe { libc::ftruncate(fd, size as libc::off_t) }, 0);
        use std::os::fd::FromRawFd;
        // SAFETY: we own fd.
        unsafe { File::from_raw_fd(fd) }
    }

    #[test]
    fn mapped_dma_spans_adjacent_pages_and_refuses_holes() {
        let f = memfd(0x3000);
        let mut d = MappedDma::new();
        // Two adjacent 4 KiB IOVA pages backed by non-adjacent file pages, like a vIOMMU.
        d.map(0x10000, 0x1000, 0x2000, Some(&f), true).unwrap();
        d.map(0x11000, 0x1000, 0x0000, Some(&f), true).unwrap();
        let data: Vec<u8> = (0..32u8).collect();
        d.write(0x10ff0, &data).unwrap();
        let mut back = [0u8; 32];
        d.read(0x10ff0, &mut back).unwrap();
        assert_eq!(&back[..], &data[..]);
        // A range running past the second page is refused and nothing is written.
        assert!(d.write(0x11ff8, &[1u8; 16]).is_err());
        assert!(d.read(0x0fff0, &mut back).is_err());
        d.unmap(0x11000, 0x1000);
        assert!(d.read(0x10ff0, &mut back).is_err());
        assert!(d.read(0x10000, &mut back).is_ok());
    }

    #[test]
    fn many_page_mappings_resolve_in_any_order() {
        // 64 IOVA pages with holes between groups of four, mapped in a scrambled order, each
        // backed by a file page of its own: every byte lands in its own page's file page.
        let f = memfd(64 * 0x1000);
        let mut d = MappedDma::new();
        let iova = |k: u64| 0x100_0000 + (k + k / 4) * 0x1000;
        for k in (0..64u64).map(|k| (k * 37) % 64) {
            d.map(iova(k), 0x1000, (63 - k) * 0x1000, Some(&f), true)
                .unwrap();
        }
        assert_eq!(d.len(), 64);
        for k in 0..64u64 {
            d.write_u64(iova(k) + 8, k).unwrap();
        }
        for k in 0..64u64 {
            assert_eq!(d.read_u64(iova(k) + 8), Ok(k));
            let mut b = [0u8; 8];
            // SAFETY: reading back through an independent mapping of the same memfd.
            let n = unsafe {
                libc::pread(
                    std::os::fd::AsRawFd::as_raw_fd(&f),
                    b.as_mut_ptr().cast(),
                    8,
                    ((63 - k) * 0x1000 + 8) as libc::off_t,
                )
            };
            assert_eq!(n, 8);
            assert_eq!(u64::from_le_bytes(b), k);
        }
        // a group of four adjacent pages reads as one range; the hole after it faults
        let mut four = vec![0u8; 4 * 0x1000];
        assert!(d.read(iova(4), &mut four).is_ok());
        assert!(d.read(iova(4), &mut vec![0u8; 4 * 0x1000 + 1]).is_err());
        assert!(d.read_u32(iova(3) + 0x1000).is_err());
        assert!(d.read_u32(0).is_err());
        assert!(d.read_u32(u64::MAX - 3).is_err());
    }

    #[test]
    fn read_only_mappings_refuse_device_writes() {
        let f = memfd(0x1000);
        let mut d = MappedDma::new();
        d.map(0x1000, 0x1000, 0, Some(&f), false).unwrap();
        assert!(d.write(0x1000, &[1]).is_err());
        assert!(d.read_u32(0x1000).is_ok());
        d.map(0x3000, 0x1000, 0, None, true).unwrap();
        assert!(
            d.read_u32(0x3000).is_err(),
            "fd-less mappings are not reachable"
        );
    }

    #[test]
    fn fake_dma_refuses_accesses_outside_regions() {
        let mut d = FakeDma::new();
        d.add_region(0x1000, 0x100);
        assert!(d.write_u64(0x10f8, 7).is_ok());
        assert_eq!(d.read_u64(0x10f8), Ok(7));
        assert!(d.write_u64(0x10fc, 7).is_err());
        assert!(d.read_u32(0xffc).is_err());
    }
}
