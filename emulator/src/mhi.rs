// SPDX-License-Identifier: MIT OR Apache-2.0
//! MHI constants and ring element encodings (device view), from `mhi.md`.

/// MHI BAR register offsets.
pub mod reg {
    /// Register space length.
    pub const MHIREGLEN: u32 = 0x00;
    /// MHI version.
    pub const MHIVER: u32 = 0x08;
    /// Configuration (NER/NHWER/NCH).
    pub const MHICFG: u32 = 0x10;
    /// Channel doorbell array offset.
    pub const CHDBOFF: u32 = 0x18;
    /// Event ring doorbell array offset.
    pub const ERDBOFF: u32 = 0x20;
    /// BHI block offset.
    pub const BHIOFF: u32 = 0x28;
    /// BHIe block offset.
    pub const BHIEOFF: u32 = 0x2c;
    /// Debug block offset.
    pub const DEBUGOFF: u32 = 0x30;
    /// Host control (requested state, RESET bit 1).
    pub const MHICTRL: u32 = 0x38;
    /// Device status (state, SYSERR bit 2, READY bit 0).
    pub const MHISTATUS: u32 = 0x48;
    /// Channel context array base (low).
    pub const CCABAP_LOWER: u32 = 0x58;
    /// Event context array base (low).
    pub const ECABAP_LOWER: u32 = 0x60;
    /// Command context array base (low).
    pub const CRCBAP_LOWER: u32 = 0x68;
    /// Command ring doorbell (low).
    pub const CRDB_LOWER: u32 = 0x70;
    /// Command ring doorbell (high).
    pub const CRDB_HIGHER: u32 = 0x74;
    /// SoC reset request.
    pub const SOC_RESET_REQ: u32 = 0xb0;
    /// SoC hardware version (answered by qaic in software anyway).
    pub const SOC_HW_VERSION: u32 = 0x224;
    /// Device QTimer, low half.
    pub const QTIMER_LO: u32 = 0xa28;
    /// Device QTimer, high half.
    pub const QTIMER_HI: u32 = 0xa2c;
}

/// Where the device places its blocks inside the 4 KiB MHI BAR.
pub mod layout {
    /// BHI block.
    pub const BHI: u32 = 0x100;
    /// Channel doorbells (128 x 8 bytes).
    pub const CHDB: u32 = 0x400;
    /// Event ring doorbells (1 x 8 bytes).
    pub const ERDB: u32 = 0x800;
    /// Number of event rings.
    pub const NUM_ER: u32 = 1;
}

/// BHI register offsets relative to the BHI block.
pub mod bhi {
    /// Minor version.
    pub const VERSION_MINOR: u32 = 0x00;
    /// Major version.
    pub const VERSION_MAJOR: u32 = 0x04;
    /// Image address low.
    pub const IMGADDR_LOW: u32 = 0x08;
    /// Image address high.
    pub const IMGADDR_HIGH: u32 = 0x0c;
    /// Image size.
    pub const IMGSIZE: u32 = 0x10;
    /// Transfer doorbell (session id).
    pub const IMGTXDB: u32 = 0x18;
    /// MSI vector for BHI/state interrupts.
    pub const INTVEC: u32 = 0x20;
    /// Execution environment.
    pub const EXECENV: u32 = 0x28;
    /// Transfer status ([31:30]).
    pub const STATUS: u32 = 0x2c;
    /// Error code.
    pub const ERRCODE: u32 = 0x30;
    /// Error debug 1..3.
    pub const ERRDBG1: u32 = 0x34;
    /// Serial number.
    pub const SERIALNU: u32 = 0x40;
    /// Anti-rollback version.
    pub const SBLANTIROLLVER: u32 = 0x44;
    /// Number of segments.
    pub const NUMSEG: u32 = 0x48;
    /// MSM hardware id words (6).
    pub const MSMHWID: u32 = 0x4c;
    /// OEM public key hash words (16).
    pub const OEMPKHASH: u32 = 0x64;
    /// End of the block.
    pub const END: u32 = 0xa4;
    /// STATUS value: transfer success.
    pub const STATUS_SUCCESS: u32 = 2 << 30;
    /// STATUS value: transfer error.
    pub const STATUS_ERROR: u32 = 3 << 30;
}

/// Execution environments.
pub mod ee {
    /// Primary boot loader (ROM).
    pub const PBL: u32 = 0;
    /// Secondary boot loader.
    pub const SBL: u32 = 1;
    /// Mission mode (QSM firmware).
    pub const AMSS: u32 = 2;
}

/// MHI states.
pub mod state {
    /// Reset.
    pub const RESET: u8 = 0;
    /// Ready.
    pub const READY: u8 = 1;
    /// M0 (active).
    pub const M0: u8 = 2;
    /// M1.
    pub const M1: u8 = 3;
    /// M2.
    pub const M2: u8 = 4;
    /// M3 (suspended).
    pub const M3: u8 = 5;
    /// System error.
    pub const SYS_ERR: u8 = 0xff;
}

/// Ring element types.
pub mod pkt {
    /// No-op command.
    pub const NOP: u32 = 0x01;
    /// Transfer TRE.
    pub const TRANSFER: u32 = 0x02;
    /// Reset channel command.
    pub const RESET_CHAN: u32 = 0x10;
    /// Stop channel command.
    pub const STOP_CHAN: u32 = 0x11;
    /// Start channel command.
    pub const START_CHAN: u32 = 0x12;
    /// State change event.
    pub const STATE_CHANGE: u32 = 0x20;
    /// Command completion event.
    pub const CMD_COMPLETION: u32 = 0x21;
    /// Transfer completion event.
    pub const TX_EVENT: u32 = 0x22;
    /// Execution environment event.
    pub const EE_EVENT: u32 = 0x40;
}

/// Event completion codes.
pub mod code {
    /// Success (commands).
    pub const SUCCESS: u32 = 1;
    /// End of transfer.
    pub const EOT: u32 = 2;
    /// Overflow.
    pub const OVERFLOW: u32 = 3;
    /// Undefined error.
    pub const UNDEFINED_ERR: u32 = 0x10;
    /// Bad TRE.
    pub const BAD_TRE: u32 = 0x11;
}

/// Channel context states.
pub mod chstate {
    /// Disabled.
    pub const DISABLED: u32 = 0;
    /// Enabled by host.
    pub const ENABLED: u32 = 1;
    /// Running.
    pub const RUNNING: u32 = 2;
    /// Stopped.
    pub const STOP: u32 = 4;
}

/// Size of one context entry (channel, event and command contexts).
pub const CTX_SIZE: u64 = 44;
/// Size of one ring element.
pub const EL_SIZE: u64 = 16;
/// Number of channels.
pub const NUM_CHANNELS: usize = 128;
/// Device-wake doorbell (channel doorbell 127).
pub const WAKE_DB: usize = 127;

/// TRE flag: chain.
pub const TRE_CHAIN: u32 = 1 << 0;
/// TRE flag: interrupt on end of block.
pub const TRE_IEOB: u32 = 1 << 8;
/// TRE flag: interrupt on end of transfer.
pub const TRE_IEOT: u32 = 1 << 9;

/// A 16-byte ring element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Element {
    /// Pointer field.
    pub ptr: u64,
    /// dword0.
    pub d0: u32,
    /// dword1.
    pub d1: u32,
}

impl Element {
    /// Decode from 16 bytes.
    pub fn from_bytes(b: &[u8; 16]) -> Self {
        Element {
            ptr: u64::from_le_bytes(b[0..8].try_into().unwrap()),
            d0: u32::from_le_bytes(b[8..12].try_into().unwrap()),
            d1: u32::from_le_bytes(b[12..16].try_into().unwrap()),
        }
    }
    /// Encode to 16 bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&self.ptr.to_le_bytes());
        b[8..12].copy_from_slice(&self.d0.to_le_bytes());
        b[12..16].copy_from_slice(&self.d1.to_le_bytes());
        b
    }
    /// Element type (`dword1[23:16]`).
    pub fn kind(&self) -> u32 {
        (self.d1 >> 16) & 0xff
    }
    /// Channel id (`dword1[31:24]`).
    pub fn chid(&self) -> u32 {
        self.d1 >> 24
    }
    /// State-change event.
    pub fn state_change(st: u8) -> Self {
        Element {
            ptr: 0,
            d0: (st as u32) << 24,
            d1: pkt::STATE_CHANGE << 16,
        }
    }
    /// Execution-environment event.
    pub fn ee_event(ee: u32) -> Self {
        Element {
            ptr: 0,
            d0: ee << 24,
            d1: pkt::EE_EVENT << 16,
        }
    }
    /// Command completion event for the command element at `cmd`.
    pub fn cmd_completion(cmd: u64, code: u32) -> Self {
        Element {
            ptr: cmd,
            d0: code << 24,
            d1: pkt::CMD_COMPLETION << 16,
        }
    }
    /// Transfer completion event for the TRE at `tre`.
    pub fn tx_event(tre: u64, code: u32, len: u32, ch: u32) -> Self {
        Element {
            ptr: tre,
            d0: (code << 24) | (len & 0xffff),
            d1: (ch << 24) | (pkt::TX_EVENT << 16),
        }
    }
    /// A transfer ring element (host side encoding, used by tests).
    pub fn tre(ptr: u64, len: u32, flags: u32) -> Self {
        Element {
            ptr,
            d0: len & 0xffff,
            d1: (pkt::TRANSFER << 16) | flags,
        }
    }
    /// A command element (host side encoding, used by tests).
    pub fn command(kind: u32, ch: u32) -> Self {
        Element {
            ptr: 0,
            d0: 0,
            d1: (ch << 24) | (kind << 16),
        }
    }
}

/// Ring geometry helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ring {
    /// Base bus address.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Ring {
    /// A valid ring: non-empty, element aligned, no address overflow.
    pub fn new(base: u64, len: u64) -> Option<Self> {
        if len == 0
            || !len.is_multiple_of(EL_SIZE)
            || !base.is_multiple_of(EL_SIZE)
            || base.checked_add(len).is_none()
        {
            return None;
        }
        Some(Ring { base, len })
    }
    /// True if `p` is an element address inside the ring.
    pub fn contains(&self, p: u64) -> bool {
        p >= self.base && p < self.base + self.len && (p - self.base).is_multiple_of(EL_SIZE)
    }
    /// The element after `p`, wrapping.
    pub fn next(&self, p: u64) -> u64 {
        let n = p + EL_SIZE;
        if n >= self.base + self.len {
            self.base
        } else {
            n
        }
    }
}
