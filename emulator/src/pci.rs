// SPDX-License-Identifier: MIT OR Apache-2.0
//! PCI configuration space of the emulated AIC100 function.
//!
//! 4 KiB (PCIe extended) config space: 17cb:a100, class 0x120000 (processing accelerator),
//! three 64-bit non-prefetchable memory BARs (BAR0 4 KiB MHI, BAR2 2 MiB DMA bridge, BAR4 64 KiB),
//! an MSI capability (64-bit address, 32 vectors, or 1 with `--single-msi`) and a PCI Express
//! endpoint capability. Writes are filtered through a per-byte write mask; BAR sizing works
//! because the size bits are read-only zero.

/// Vendor id (Qualcomm).
pub const VENDOR_ID: u16 = 0x17cb;
/// Device id (AIC100).
pub const DEVICE_ID: u16 = 0xa100;
/// Config space size.
pub const CFG_SIZE: usize = 4096;
/// BAR sizes by slot (0 = slot unused / upper half of a 64-bit BAR).
pub const BAR_SIZES: [u64; 6] = [4096, 0, 2 << 20, 0, 64 << 10, 0];
/// MSI capability offset.
pub const MSI_CAP: usize = 0x50;
/// PCI Express capability offset.
pub const PCIE_CAP: usize = 0x70;
/// MSI vectors advertised in normal mode.
pub const MSI_VECTORS: u32 = 32;

/// Config space contents plus write mask.
pub struct PciConfig {
    data: [u8; CFG_SIZE],
    wmask: [u8; CFG_SIZE],
    /// Number of MSI vectors advertised (32, or 1 with `--single-msi`).
    pub msi_vectors: u32,
}

fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

impl PciConfig {
    /// Build the power-on config space.
    pub fn new(single_msi: bool) -> Self {
        let mut d = [0u8; CFG_SIZE];
        let mut w = [0u8; CFG_SIZE];
        put16(&mut d, 0x00, VENDOR_ID);
        put16(&mut d, 0x02, DEVICE_ID);
        put16(&mut w, 0x04, 0x0546); // command: MEM, MASTER, PERR, SERR, INTx disable
        put16(&mut d, 0x06, 0x0010); // status: capabilities list
        d[0x08] = 0x02; // revision
        d[0x09] = 0x00; // prog-if
        d[0x0a] = 0x00; // subclass
        d[0x0b] = 0x12; // base class: processing accelerator
        w[0x0c] = 0xff; // cache line size
        for (slot, &size) in BAR_SIZES.iter().enumerate() {
            if size == 0 {
                continue;
            }
            let off = 0x10 + slot * 4;
            put32(&mut d, off, 0x4); // 64-bit memory, non-prefetchable
            put32(&mut w, off, !(size as u32 - 1) & !0xf);
            put32(&mut w, off + 4, 0xffff_ffff);
        }
        put16(&mut d, 0x2c, VENDOR_ID); // subsystem vendor
        put16(&mut d, 0x2e, DEVICE_ID); // subsystem id
        d[0x34] = MSI_CAP as u8;
        w[0x3c] = 0xff; // interrupt line
        d[0x3d] = 0; // no INTx: MSI only

        // MSI: 64-bit capable, Multiple Message Capable = log2(vectors), per-vector masking off.
        let msi_vectors = if single_msi { 1 } else { MSI_VECTORS };
        let mmc = msi_vectors.trailing_zeros() as u16;
        d[MSI_CAP] = 0x05;
        d[MSI_CAP + 1] = PCIE_CAP as u8;
        put16(&mut d, MSI_CAP + 2, 0x0080 | (mmc << 1));
        put16(&mut w, MSI_CAP + 2, 0x0071); // enable + multiple message enable
        put32(&mut w, MSI_CAP + 4, 0xffff_fffc);
        put32(&mut w, MSI_CAP + 8, 0xffff_ffff);
        put16(&mut w, MSI_CAP + 12, 0xffff);

        // PCI Express capability v2, endpoint, Gen4 x8.
        d[PCIE_CAP] = 0x10;
        d[PCIE_CAP + 1] = 0x00; // end of list
        put16(&mut d, PCIE_CAP + 0x02, 0x0002);
        put32(&mut d, PCIE_CAP + 0x04, 0x0000_8001); // DevCap: MPS 256, role-based errors
        put16(&mut d, PCIE_CAP + 0x08, 0x2810); // DevCtl
        put16(&mut w, PCIE_CAP + 0x08, 0x7fff);
        put32(&mut d, PCIE_CAP + 0x0c, 0x0000_0084); // LinkCap: 16 GT/s, x8
        put16(&mut w, PCIE_CAP + 0x10, 0x0fff); // LinkCtl
        put16(&mut d, PCIE_CAP + 0x12, 0x0084); // LinkSta: 16 GT/s, x8
        put32(&mut d, PCIE_CAP + 0x24, 0x0000_0010); // DevCap2
        put16(&mut w, PCIE_CAP + 0x28, 0xffff); // DevCtl2
        put32(&mut d, PCIE_CAP + 0x2c, 0x0000_001e); // LinkCap2: 2.5..16 GT/s
        PciConfig {
            data: d,
            wmask: w,
            msi_vectors,
        }
    }

    /// Read `buf.len()` bytes at `off`; bytes beyond the space read as zero.
    pub fn read(&self, off: usize, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.data.get(off + i).copied().unwrap_or(0);
        }
    }

    /// Write through the write mask; bytes beyond the space are ignored.
    pub fn write(&mut self, off: usize, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let o = off + i;
            if o < CFG_SIZE {
                let m = self.wmask[o];
                self.data[o] = (self.data[o] & !m) | (b & m);
            }
        }
    }

    /// MSI control word.
    pub fn msi_control(&self) -> u16 {
        u16::from_le_bytes([self.data[MSI_CAP + 2], self.data[MSI_CAP + 3]])
    }

    /// Number of MSI vectors the host enabled (0 when MSI is disabled).
    pub fn msi_enabled_vectors(&self) -> u32 {
        let c = self.msi_control();
        if c & 1 == 0 {
            0
        } else {
            1 << ((c >> 4) & 7)
        }
    }

    /// True when the host enabled bus mastering (the device may DMA).
    pub fn bus_master(&self) -> bool {
        self.data[0x04] & 0x4 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd32(c: &PciConfig, off: usize) -> u32 {
        let mut b = [0u8; 4];
        c.read(off, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn config_space_identity_and_class() {
        let c = PciConfig::new(false);
        assert_eq!(rd32(&c, 0), 0xa100_17cb);
        assert_eq!(rd32(&c, 8) >> 8, 0x12_0000);
        assert_eq!(rd32(&c, 0x2c), 0xa100_17cb);
    }

    #[test]
    fn bars_are_64bit_memory_of_the_real_sizes() {
        let mut c = PciConfig::new(false);
        for (slot, size) in [(0usize, 4096u64), (2, 2 << 20), (4, 64 << 10)] {
            let off = 0x10 + slot * 4;
            assert_eq!(rd32(&c, off) & 0xf, 0x4, "BAR{slot} 64-bit memory");
            c.write(off, &0xffff_ffffu32.to_le_bytes());
            c.write(off + 4, &0xffff_ffffu32.to_le_bytes());
            let lo = rd32(&c, off) as u64 & !0xf;
            let hi = rd32(&c, off + 4) as u64;
            let mask = (hi << 32) | lo;
            assert_eq!((!mask).wrapping_add(1), size, "BAR{slot} size");
        }
    }

    #[test]
    fn msi_capability_advertises_32_vectors_or_one_in_single_msi_mode() {
        let c = PciConfig::new(false);
        assert_eq!(rd32(&c, 0x34) & 0xff, MSI_CAP as u32);
        assert_eq!(c.data[MSI_CAP], 0x05);
        assert_eq!((c.msi_control() >> 1) & 7, 5);
        assert_ne!(c.msi_control() & 0x80, 0, "64-bit address capable");
        let s = PciConfig::new(true);
        assert_eq!((s.msi_control() >> 1) & 7, 0);
        assert_eq!(s.msi_vectors, 1);
    }

    #[test]
    fn msi_enable_and_multiple_message_enable_are_writable() {
        let mut c = PciConfig::new(false);
        assert_eq!(c.msi_enabled_vectors(), 0);
        c.write(MSI_CAP + 2, &0x00dbu16.to_le_bytes()); // what Linux writes for 17 of 32
        assert_eq!(c.msi_enabled_vectors(), 32);
        assert_eq!((c.msi_control() >> 1) & 7, 5, "MMC is read-only");
    }

    #[test]
    fn pcie_capability_is_linked_after_msi() {
        let c = PciConfig::new(false);
        assert_eq!(c.data[MSI_CAP + 1] as usize, PCIE_CAP);
        assert_eq!(c.data[PCIE_CAP], 0x10);
        assert_eq!(c.data[PCIE_CAP + 2] & 0xf, 2, "capability version 2");
        assert_eq!((c.data[PCIE_CAP + 2] >> 4) & 0xf, 0, "PCIe endpoint");
    }
}
