// SPDX-License-Identifier: MIT OR Apache-2.0
//! Device (SBL) side of the Sahara protocol: pulls the AIC100 image table from the host.
//!
//! The SBL sends HELLO, waits for HELLO_RESP, then for every image of the table reads the
//! 32-byte image header, then the rest of the image in requests of at most 512 KiB
//! (the host answers each with one chained transfer of exactly the requested length),
//! verifies it, sends END_OF_IMAGE, waits for DONE and answers DONE_RESP. After the last image
//! the boot stage is complete and the device moves on to mission mode. A missing image (the
//! host answers RESET), a malformed answer or a failed verification halts the boot: the device
//! reports END_OF_IMAGE with a non-zero status and stays in SBL.

use crate::firmware::{self, ImageError, HEADER_LEN};
use crate::wire::{u32_at, Writer};
use log::{debug, error, info};

/// Command codes.
pub mod cmd {
    /// HELLO (device to host).
    pub const HELLO: u32 = 0x01;
    /// HELLO_RESP (host to device).
    pub const HELLO_RESP: u32 = 0x02;
    /// READ_DATA (device to host).
    pub const READ_DATA: u32 = 0x03;
    /// END_OF_IMAGE (device to host).
    pub const END_OF_IMAGE: u32 = 0x04;
    /// DONE (host to device).
    pub const DONE: u32 = 0x05;
    /// DONE_RESP (device to host).
    pub const DONE_RESP: u32 = 0x06;
    /// RESET (host to device).
    pub const RESET: u32 = 0x07;
}

/// Largest READ_DATA request of a non-streaming (AIC100) host.
pub const MAX_READ: u32 = 0x80000;
/// Largest image the device accepts.
pub const MAX_IMAGE: usize = 64 << 20;
/// END_OF_IMAGE status for "image not available on the host".
pub const STATUS_UNAVAILABLE: u32 = 0x10;
/// END_OF_IMAGE status for "protocol error".
pub const STATUS_PROTOCOL: u32 = 0x11;

/// What the Sahara engine wants the device to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this packet on the Sahara DL channel.
    Send(Vec<u8>),
    /// Image `id` was received and verified.
    Verified(u32),
    /// Every image is loaded: leave SBL.
    Complete,
    /// Boot halted (reason).
    Halted(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    WaitHelloResp,
    /// Waiting for `len` raw bytes; the first `skip` of them were already received.
    WaitData {
        len: u32,
        skip: u32,
    },
    WaitDone,
    Complete,
    Halted,
}

/// Looks up the reference copy of an image by id.
pub type ReferenceFn = Box<dyn Fn(u32) -> Option<Vec<u8>> + Send>;

/// Device-side Sahara engine.
pub struct SaharaDevice {
    images: Vec<u32>,
    idx: usize,
    state: State,
    buf: Vec<u8>,
    total: Option<usize>,
    reference: Option<ReferenceFn>,
}

/// HELLO packet (version 2, mode IMAGE_TX_PENDING).
pub fn hello() -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(cmd::HELLO)
        .u32(0x30)
        .u32(2)
        .u32(1)
        .u32(0x1000)
        .u32(0)
        .zeros(24);
    w.buf
}

/// READ_DATA packet.
pub fn read_data(id: u32, offset: u32, len: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(cmd::READ_DATA).u32(0x14).u32(id).u32(offset).u32(len);
    w.buf
}

/// END_OF_IMAGE packet.
pub fn end_of_image(id: u32, status: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(cmd::END_OF_IMAGE).u32(0x10).u32(id).u32(status);
    w.buf
}

/// DONE_RESP packet (status 1 = all images transferred, 0 = more pending).
pub fn done_resp(complete: bool) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(cmd::DONE_RESP).u32(0x0c).u32(complete as u32);
    w.buf
}

impl SaharaDevice {
    /// The image being loaded, if any.
    pub fn loading(&self) -> Option<u32> {
        match self.state {
            State::WaitData { .. } => self.images.get(self.idx).copied(),
            _ => None,
        }
    }

    /// Engine that loads `images` in order.
    pub fn new(images: &[u32]) -> Self {
        SaharaDevice {
            images: images.to_vec(),
            idx: 0,
            state: State::Idle,
            buf: Vec::new(),
            total: None,
            reference: None,
        }
    }

    /// Engine for the AIC100 image table.
    pub fn aic100() -> Self {
        Self::new(&firmware::AIC100_SAHARA_IDS)
    }

    /// Additionally require every image to equal the reference returned by `f` (if any).
    pub fn with_reference(mut self, f: ReferenceFn) -> Self {
        self.reference = Some(f);
        self
    }

    /// True once every image is loaded.
    pub fn complete(&self) -> bool {
        self.state == State::Complete
    }

    /// True if the boot halted.
    pub fn halted(&self) -> bool {
        self.state == State::Halted
    }

    /// Start (or restart) the exchange: returns the HELLO to send.
    pub fn start(&mut self) -> Vec<Action> {
        self.idx = 0;
        self.buf.clear();
        self.total = None;
        self.state = State::WaitHelloResp;
        info!(target: "sahara", "-> HELLO (version 2, mode image-tx-pending)");
        vec![Action::Send(hello())]
    }

    fn halt(&mut self, status: u32, why: String) -> Vec<Action> {
        error!(target: "sahara", "boot halted: {why}");
        self.state = State::Halted;
        let mut v = Vec::new();
        if let Some(&id) = self.images.get(self.idx) {
            v.push(Action::Send(end_of_image(id, status)));
        }
        v.push(Action::Halted(why));
        v
    }

    fn request(&mut self, offset: u32, len: u32) -> Vec<Action> {
        let id = self.images[self.idx];
        // Never ask for exactly 8 bytes: an 8-byte answer must stay distinguishable from RESET.
        let (offset, len, skip) = if len == 8 && offset >= 8 {
            (offset - 8, 16, 8)
        } else {
            (offset, len, 0)
        };
        debug!(target: "sahara", "-> READ_DATA image {id} offset {offset:#x} len {len:#x}");
        self.state = State::WaitData { len, skip };
        vec![Action::Send(read_data(id, offset, len))]
    }

    fn next_image(&mut self) -> Vec<Action> {
        self.buf.clear();
        self.total = None;
        info!(target: "sahara", "loading image {} ({})", self.images[self.idx], firmware::file_name(self.images[self.idx]));
        self.request(0, HEADER_LEN as u32)
    }

    /// Handle one packet received on the Sahara UL channel.
    pub fn on_host_packet(&mut self, p: &[u8]) -> Vec<Action> {
        let c = u32_at(p, 0).unwrap_or(u32::MAX);
        let is_reset = p.len() == 8 && c == cmd::RESET && u32_at(p, 4) == Some(8);
        match self.state {
            State::WaitData { len, skip } if p.len() == len as usize && !is_reset => {
                self.buf.extend_from_slice(&p[skip as usize..]);
                self.after_data()
            }
            _ if is_reset => {
                let id = self.images.get(self.idx).copied().unwrap_or(0);
                info!(target: "sahara", "<- RESET from host while loading image {id}");
                if matches!(self.state, State::Complete | State::Halted | State::Idle) {
                    return vec![];
                }
                self.halt(
                    STATUS_UNAVAILABLE,
                    format!(
                        "host cannot provide image {id} ({})",
                        firmware::file_name(id)
                    ),
                )
            }
            State::WaitHelloResp => {
                if c != cmd::HELLO_RESP || p.len() != 0x30 || u32_at(p, 4) != Some(0x30) {
                    return self.halt(
                        STATUS_PROTOCOL,
                        format!("expected HELLO_RESP, got {} bytes cmd {c:#x}", p.len()),
                    );
                }
                let status = u32_at(p, 16).unwrap();
                info!(target: "sahara", "<- HELLO_RESP version {} status {status}", u32_at(p, 8).unwrap());
                if status != 0 {
                    return self.halt(STATUS_PROTOCOL, format!("HELLO_RESP status {status}"));
                }
                if self.images.is_empty() {
                    self.state = State::Complete;
                    return vec![Action::Complete];
                }
                self.next_image()
            }
            State::WaitDone => {
                if c != cmd::DONE || p.len() != 8 {
                    return self.halt(
                        STATUS_PROTOCOL,
                        format!("expected DONE, got {} bytes cmd {c:#x}", p.len()),
                    );
                }
                self.idx += 1;
                let last = self.idx == self.images.len();
                debug!(target: "sahara", "<- DONE, -> DONE_RESP (complete: {last})");
                let mut v = vec![Action::Send(done_resp(last))];
                if last {
                    info!(target: "sahara", "all {} images loaded", self.images.len());
                    self.state = State::Complete;
                    v.push(Action::Complete);
                } else {
                    v.extend(self.next_image());
                }
                v
            }
            State::WaitData { len, .. } => self.halt(
                STATUS_PROTOCOL,
                format!("expected {len} bytes of image data, got {} bytes", p.len()),
            ),
            State::Idle | State::Complete | State::Halted => {
                debug!(target: "sahara", "ignoring {} byte packet (cmd {c:#x}) outside an exchange", p.len());
                vec![]
            }
        }
    }

    fn after_data(&mut self) -> Vec<Action> {
        let id = self.images[self.idx];
        if self.total.is_none() {
            match firmware::parse_header(&self.buf) {
                Ok(h) if h.total_len() <= MAX_IMAGE => self.total = Some(h.total_len()),
                Ok(h) => {
                    return self.halt(
                        ImageError::SizeMismatch as u32,
                        format!("image {id}: {} bytes is too large", h.total_len()),
                    )
                }
                Err(e) => return self.halt(e as u32, format!("image {id}: bad header: {e:?}")),
            }
        }
        let total = self.total.unwrap();
        let have = self.buf.len();
        if have < total {
            let len = ((total - have) as u32).min(MAX_READ);
            return self.request(have as u32, len);
        }
        if let Err(e) = firmware::verify(&self.buf, id) {
            return self.halt(e as u32, format!("image {id} failed verification: {e:?}"));
        }
        if let Some(r) = &self.reference {
            if let Some(reference) = r(id) {
                if reference != self.buf {
                    return self.halt(
                        ImageError::NotReference as u32,
                        format!("image {id} differs from the reference image"),
                    );
                }
            }
        }
        info!(target: "sahara", "image {id}: {total} bytes received and verified; -> END_OF_IMAGE");
        self.state = State::WaitDone;
        vec![Action::Verified(id), Action::Send(end_of_image(id, 0))]
    }
}
