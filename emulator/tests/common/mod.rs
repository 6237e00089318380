// SPDX-License-Identifier: MIT OR Apache-2.0
//! A fake MHI host for driving the device model without QEMU: it performs the host side of
//! the sequences in `mhi.md` (BHI load, READY, MMIO init, M0, channel START, TRE queueing,
//! event ring consumption) through the same register/DMA interface the vfio-user server uses.

#![allow(dead_code)]

use aic100_emu::device::{Device, Irq, Options};
use aic100_emu::dma::{Dma, FakeDma};
use aic100_emu::firmware;
use aic100_emu::mhi::{bhi, pkt, reg, Element, TRE_CHAIN, TRE_IEOT};
use std::collections::HashMap;

/// Records raised MSI vectors.
#[derive(Default)]
pub struct RecIrq {
    pub raised: Vec<u32>,
}

impl Irq for RecIrq {
    fn raise(&mut self, vector: u32) -> bool {
        self.raised.push(vector);
        true
    }
}

pub type Dev = Device<FakeDma, RecIrq>;

pub const CTX: u64 = 0x1000_0000; // channel contexts
pub const ECTX: u64 = 0x1000_2000; // event context
pub const CCTX: u64 = 0x1000_2100; // command context
pub const ER: u64 = 0x1000_3000; // event ring, 32 elements
pub const CR: u64 = 0x1000_4000; // command ring, 128 elements
pub const RINGS: u64 = 0x1001_0000; // channel rings, 0x1000 apart
pub const DATA: u64 = 0x2000_0000; // data buffers (bump allocated)
pub const DATA_SIZE: usize = 8 << 20;
pub const IMG: u64 = 0x3000_0000;

pub struct Host {
    pub dev: Dev,
    er_rp: u64,
    er_wp: u64,
    cmd_wp: u64,
    chan_wp: [u64; 128],
    chan_rp: [u64; 128],
    chan_len: [u64; 128],
    next_buf: u64,
    dl_bufs: HashMap<u64, u64>,
    /// Events seen, in order.
    pub events: Vec<Element>,
}

pub fn opts() -> Options {
    Options {
        sbl_boot_delay: std::time::Duration::ZERO,
        amss_boot_delay: std::time::Duration::ZERO,
        ..Options::default()
    }
}

impl Host {
    pub fn new() -> Self {
        Self::with_options(opts())
    }

    pub fn with_options(o: Options) -> Self {
        let mut dma = FakeDma::new();
        dma.add_region(CTX, 0x10_0000);
        dma.add_region(RINGS, 0x10_0000);
        dma.add_region(DATA, DATA_SIZE);
        let mut dev = Device::new(o, dma, RecIrq::default());
        dev.pci.write(4, &[0x06, 0x00]); // memory space + bus master, as the host's probe does
        Host {
            dev,
            er_rp: ER,
            er_wp: ER,
            cmd_wp: CR,
            chan_wp: [0; 128],
            chan_rp: [0; 128],
            chan_len: [0; 128],
            next_buf: DATA,
            dl_bufs: HashMap::new(),
            events: Vec::new(),
        }
    }

    pub fn r32(&mut self, off: u32) -> u32 {
        self.dev.mmio_read(0, off as u64, 4) as u32
    }

    pub fn w32(&mut self, off: u32, v: u32) {
        self.dev.mmio_write(0, off as u64, 4, v as u64);
    }

    pub fn w64(&mut self, lo: u32, v: u64) {
        self.w32(lo + 4, (v >> 32) as u32);
        self.w32(lo, v as u32);
    }

    pub fn bhi(&mut self) -> u32 {
        self.r32(reg::BHIOFF)
    }

    pub fn ee(&mut self) -> u32 {
        let b = self.bhi();
        self.r32(b + bhi::EXECENV)
    }

    pub fn mhi_state(&mut self) -> u32 {
        (self.r32(reg::MHISTATUS) >> 8) & 0xff
    }

    pub fn alloc(&mut self, len: usize) -> u64 {
        let a = self.next_buf;
        self.next_buf += (len as u64).div_ceil(64) * 64 + 64;
        assert!(
            self.next_buf < DATA + DATA_SIZE as u64,
            "fake host out of buffer memory"
        );
        a
    }

    /// BHI image download of `img` (host side of mhi.md §3.2). Returns BHI STATUS.
    pub fn bhi_load(&mut self, img: &[u8]) -> u32 {
        self.dev.dma.add_region(IMG, img.len());
        self.dev.dma.write(IMG, img).unwrap();
        let b = self.bhi();
        self.w32(b + bhi::INTVEC, 0);
        self.w32(b + bhi::STATUS, 0);
        self.w32(b + bhi::IMGADDR_HIGH, (IMG >> 32) as u32);
        self.w32(b + bhi::IMGADDR_LOW, IMG as u32);
        self.w32(b + bhi::IMGSIZE, img.len() as u32);
        self.w32(b + bhi::IMGTXDB, 0x1234_5678);
        self.dev.run_all();
        self.r32(b + bhi::STATUS)
    }

    /// Program contexts and registers, grant event slots, request M0 (mhi.md §7.1 steps 6-9).
    pub fn init_mmio_and_m0(&mut self) {
        assert_eq!(self.r32(reg::MHICTRL) & 2, 0, "MHICTRL.RESET clear");
        assert_eq!(self.r32(reg::MHISTATUS) & 1, 1, "READY bit set");
        let d = &mut self.dev.dma;
        // event context
        d.write_u32(ECTX, 0).unwrap();
        d.write_u32(ECTX + 4, 1).unwrap();
        d.write_u32(ECTX + 8, 0).unwrap();
        d.write_u64(ECTX + 12, ER).unwrap();
        d.write_u64(ECTX + 20, 512).unwrap();
        d.write_u64(ECTX + 28, ER).unwrap();
        d.write_u64(ECTX + 36, ER).unwrap();
        // command context
        d.write_u64(CCTX + 12, CR).unwrap();
        d.write_u64(CCTX + 20, 2048).unwrap();
        d.write_u64(CCTX + 28, CR).unwrap();
        d.write_u64(CCTX + 36, CR).unwrap();
        self.er_rp = ER;
        self.cmd_wp = CR;
        let _ = self.r32(reg::CHDBOFF);
        let _ = self.r32(reg::ERDBOFF);
        self.w64(0x58, CTX);
        self.w64(0x60, ECTX);
        self.w64(0x68, CCTX);
        self.w64(0x80, 0);
        self.w64(0x98, 0);
        self.w64(0x88, u64::MAX - 1);
        self.w64(0xa0, u64::MAX - 1);
        let cfg = self.r32(reg::MHICFG);
        self.w32(reg::MHICFG, (cfg & !0x00ff_0000) | (1 << 16));
        let cfg = self.r32(reg::MHICFG);
        self.w32(reg::MHICFG, cfg & !0xff00_0000);
        self.er_wp = ER + 512 - 16;
        self.dev.dma.write_u64(ECTX + 36, self.er_wp).unwrap();
        let erdb = self.r32(reg::ERDBOFF);
        self.w64(erdb, self.er_wp);
        let c = self.r32(reg::MHICTRL);
        self.w32(reg::MHICTRL, (c & !0xff00) | (2 << 8));
        self.dev.run_all();
    }

    /// Consume new events (host side of mhi.md §5.4); returns them.
    pub fn poll_events(&mut self) -> Vec<Element> {
        self.dev.run_all();
        let dev_rp = self.dev.dma.read_u64(ECTX + 28).unwrap();
        let mut out = Vec::new();
        while self.er_rp != dev_rp {
            let mut b = [0u8; 16];
            self.dev.dma.read(self.er_rp, &mut b).unwrap();
            out.push(Element::from_bytes(&b));
            self.er_rp = if self.er_rp + 16 == ER + 512 {
                ER
            } else {
                self.er_rp + 16
            };
            self.er_wp = if self.er_wp + 16 == ER + 512 {
                ER
            } else {
                self.er_wp + 16
            };
        }
        if !out.is_empty() {
            self.dev.dma.write_u64(ECTX + 36, self.er_wp).unwrap();
            let erdb = self.r32(reg::ERDBOFF);
            self.w64(erdb, self.er_wp);
            self.dev.run_all();
        }
        self.events.extend(out.iter().copied());
        out
    }

    /// Queue a command and return the element address.
    pub fn command(&mut self, kind: u32, ch: u32) -> u64 {
        let at = self.cmd_wp;
        self.dev
            .dma
            .write(at, &Element::command(kind, ch).to_bytes())
            .unwrap();
        self.cmd_wp = if at + 16 == CR + 2048 { CR } else { at + 16 };
        self.dev.dma.write_u64(CCTX + 36, self.cmd_wp).unwrap();
        let wp = self.cmd_wp;
        self.w64(reg::CRDB_LOWER, wp);
        at
    }

    /// Prepare and START channel `ch` (mhi.md §6.1); returns the completion code.
    pub fn start_channel(&mut self, ch: usize, elements: u64) -> u32 {
        let ring = RINGS + ch as u64 * 0x1000;
        let len = elements * 16;
        let c = CTX + ch as u64 * 44;
        let d = &mut self.dev.dma;
        d.write_u32(c, 1 | (2 << 8)).unwrap();
        d.write_u32(c + 4, if ch.is_multiple_of(2) { 1 } else { 2 })
            .unwrap();
        d.write_u32(c + 8, 0).unwrap();
        d.write_u64(c + 12, ring).unwrap();
        d.write_u64(c + 20, len).unwrap();
        d.write_u64(c + 28, ring).unwrap();
        d.write_u64(c + 36, ring).unwrap();
        self.chan_wp[ch] = ring;
        self.chan_rp[ch] = ring;
        self.chan_len[ch] = len;
        let at = self.command(pkt::START_CHAN, ch as u32);
        let ev = self.poll_events();
        let done = ev
            .iter()
            .find(|e| e.kind() == pkt::CMD_COMPLETION && e.ptr == at)
            .expect("START completion");
        done.d0 >> 24
    }

    fn ring_next(&self, ch: usize, p: u64) -> u64 {
        let base = RINGS + ch as u64 * 0x1000;
        if p + 16 == base + self.chan_len[ch] {
            base
        } else {
            p + 16
        }
    }

    /// Queue one UL message split into TREs of at most `max_tre` bytes (CHAIN on all but the
    /// last, EOT on the last); returns the TRE addresses.
    pub fn send_ul(&mut self, ch: usize, msg: &[u8], max_tre: usize) -> Vec<u64> {
        let mut tres = Vec::new();
        let chunks: Vec<&[u8]> = if msg.is_empty() {
            vec![&[][..]]
        } else {
            msg.chunks(max_tre).collect()
        };
        let n = chunks.len();
        for (i, c) in chunks.into_iter().enumerate() {
            let buf = self.alloc(c.len().max(1));
            self.dev.dma.write(buf, c).unwrap();
            let flags = if i + 1 == n { TRE_IEOT } else { TRE_CHAIN };
            let at = self.chan_wp[ch];
            self.dev
                .dma
                .write(at, &Element::tre(buf, c.len() as u32, flags).to_bytes())
                .unwrap();
            self.chan_wp[ch] = self.ring_next(ch, at);
            tres.push(at);
        }
        let chdb = self.r32(reg::CHDBOFF);
        let wp = self.chan_wp[ch];
        self.w64(chdb + 8 * ch as u32, wp);
        tres
    }

    /// Post one empty DL buffer of `len` bytes; returns (TRE address, buffer address).
    pub fn post_dl(&mut self, ch: usize, len: usize) -> (u64, u64) {
        let buf = self.alloc(len);
        let at = self.chan_wp[ch];
        self.dev
            .dma
            .write(at, &Element::tre(buf, len as u32, TRE_IEOT).to_bytes())
            .unwrap();
        self.chan_wp[ch] = self.ring_next(ch, at);
        self.dl_bufs.insert(at, buf);
        let chdb = self.r32(reg::CHDBOFF);
        let wp = self.chan_wp[ch];
        self.w64(chdb + 8 * ch as u32, wp);
        (at, buf)
    }

    /// Post a DL buffer and wait for one message on `ch`; returns its bytes.
    pub fn recv_dl(&mut self, ch: usize, len: usize) -> Option<Vec<u8>> {
        let (tre, buf) = self.post_dl(ch, len);
        self.wait_dl(ch, tre, buf)
    }

    pub fn wait_dl(&mut self, ch: usize, tre: u64, buf: u64) -> Option<Vec<u8>> {
        let ev = self.poll_events();
        let e = ev
            .iter()
            .chain(self.events.iter())
            .find(|e| e.kind() == pkt::TX_EVENT && e.chid() == ch as u32 && e.ptr == tre)?;
        assert_eq!(e.d0 >> 24, 2, "DL completion code EOT");
        let n = (e.d0 & 0xffff) as usize;
        Some(self.dev.dma.read_vec(buf, n).unwrap())
    }

    /// Cold boot up to SBL + M0 with the generated SBL image.
    pub fn boot_to_sbl(&mut self) {
        let st = self.bhi_load(&firmware::generated_image(firmware::SBL_ID));
        assert_eq!(st >> 30, 2, "BHI success");
        assert_eq!(self.ee(), 1, "EE SBL after BHI");
        self.init_mmio_and_m0();
        let ev = self.poll_events();
        assert!(ev
            .iter()
            .any(|e| e.kind() == pkt::EE_EVENT && e.d0 >> 24 == 1));
    }

    /// Host side of Sahara for the AIC100 table with the generated images (or `files`).
    /// Returns the image ids the device asked for.
    pub fn serve_sahara(&mut self, files: &dyn Fn(u32) -> Option<Vec<u8>>) -> Vec<u32> {
        assert_eq!(self.start_channel(2, 32), 1);
        assert_eq!(self.start_channel(3, 32), 1);
        let mut requested = Vec::new();
        let mut active: Option<(u32, Vec<u8>)> = None;
        for _ in 0..200 {
            let Some(p) = self.recv_dl(3, 0xffff) else {
                break;
            };
            let cmd = u32::from_le_bytes(p[0..4].try_into().unwrap());
            let f = |o: usize| u32::from_le_bytes(p[o..o + 4].try_into().unwrap());
            match cmd {
                1 => {
                    assert_eq!(p.len(), 0x30);
                    assert_eq!(f(8), 2, "HELLO version");
                    let mut r = vec![0u8; 0x30];
                    for (o, v) in [(0, 2u32), (4, 0x30), (8, 2), (12, 2), (16, 0), (20, f(20))] {
                        r[o..o + 4].copy_from_slice(&v.to_le_bytes());
                    }
                    self.send_ul(2, &r, 0xffff);
                }
                3 => {
                    assert_eq!(p.len(), 0x14);
                    let (id, off, len) = (f(8), f(12) as usize, f(16) as usize);
                    assert!(len <= 0x80000);
                    if active.as_ref().map(|a| a.0) != Some(id) {
                        requested.push(id);
                        match files(id) {
                            Some(img) => active = Some((id, img)),
                            None => {
                                self.send_ul(2, &[7, 0, 0, 0, 8, 0, 0, 0], 0xffff);
                                continue;
                            }
                        }
                    }
                    let img = &active.as_ref().unwrap().1;
                    if off + len > img.len() {
                        self.send_ul(2, &[7, 0, 0, 0, 8, 0, 0, 0], 0xffff);
                        continue;
                    }
                    let data = img[off..off + len].to_vec();
                    self.send_ul(2, &data, 0xffff);
                }
                4 => {
                    assert_eq!(p.len(), 0x10);
                    active = None;
                    if f(12) == 0 {
                        self.send_ul(2, &[5, 0, 0, 0, 8, 0, 0, 0], 0xffff);
                    }
                }
                6 => {
                    if f(8) == 1 {
                        break;
                    }
                }
                other => panic!("unexpected Sahara command {other:#x}"),
            }
        }
        requested
    }

    /// Cold boot all the way to mission mode with the generated images.
    pub fn boot_to_amss(&mut self) {
        self.boot_to_sbl();
        let ids = self.serve_sahara(&|id| Some(firmware::generated_image(id)));
        assert_eq!(ids, firmware::AIC100_SAHARA_IDS.to_vec());
        self.poll_events();
        assert!(
            self.events
                .iter()
                .any(|e| e.kind() == pkt::EE_EVENT && e.d0 >> 24 == 2),
            "EE AMSS event"
        );
        assert_eq!(self.ee(), 2);
        assert_eq!(self.start_channel(10, 128), 1);
        assert_eq!(self.start_channel(11, 128), 1);
    }

    /// Send one control request and receive the response, in whichever posted DL buffer the
    /// device used (None if no response came).
    pub fn control(&mut self, msg: &[u8]) -> Option<Vec<u8>> {
        self.post_dl(11, 4096);
        self.send_ul(10, msg, 4064);
        self.recv_any_dl(11)
    }

    /// The first DL completion on `ch` among the newly polled events.
    pub fn recv_any_dl(&mut self, ch: usize) -> Option<Vec<u8>> {
        let ev = self.poll_events();
        let e = ev
            .iter()
            .find(|e| e.kind() == pkt::TX_EVENT && e.chid() == ch as u32)?;
        assert_eq!(e.d0 >> 24, 2, "DL completion code EOT");
        let buf = self.dl_bufs[&e.ptr];
        Some(
            self.dev
                .dma
                .read_vec(buf, (e.d0 & 0xffff) as usize)
                .unwrap(),
        )
    }
}

/// Encode a host control message (header + transactions), with CRC.
pub fn control_msg(seq: u32, handle: u32, trans: &[Vec<u8>], crc: bool) -> Vec<u8> {
    aic100_emu::control::encode(seq, handle, u32::MAX, trans, crc)
}

/// STATUS_TO_DEV transaction.
pub fn status_to_dev() -> Vec<u8> {
    let mut v = 15u32.to_le_bytes().to_vec();
    v.extend_from_slice(&8u32.to_le_bytes());
    v
}

/// PASSTHROUGH_TO_DEV transaction around an NNC payload.
pub fn passthrough(payload: &[u8]) -> Vec<u8> {
    let mut v = 4u32.to_le_bytes().to_vec();
    v.extend_from_slice(&(8 + payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

pub fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

pub fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
