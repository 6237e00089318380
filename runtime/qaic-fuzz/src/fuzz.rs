// SPDX-License-Identifier: MIT OR Apache-2.0
//! The structure-aware ioctl fuzzer.
//!
//! Each process holds an [`Arena`]: a few open files of the node, each with
//! the channels (DBCs) it activated and a pool of its buffer objects, plus one
//! *bystander* file that never activates anything. Every thread of the
//! process is a worker that runs iterations against the shared arena, so
//! operations on the same files and handles race across threads (close,
//! detach, execute and wait of the same objects; a file closed while its
//! objects are queued), and several processes do the same at once.
//!
//! An iteration draws one operation from its own generator, seeded from
//! (seed, process, thread, iteration), builds valid-looking or hostile
//! arguments for it, issues the call and checks the result: the errno must
//! be one the call may return ([`crate::errnos`]), and where the first
//! failing check of the validation order is certain (a non-zero pad, a zero
//! count, a message over 4 KiB, a deactivation from a file that owns no
//! channel...) it must be exactly that errno.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libc::{EFAULT, EINVAL, EPERM};
use qaic::nnc;
use qaic::uapi::{
    self, qaic_attach_slice_entry as Entry, qaic_attach_slice_hdr as Hdr, qaic_sem, trans,
};

use crate::errnos::{self, Call};
use crate::rng::{mix, Rng};
use crate::sys::{self, Errno, Hostile, HostileKind, Map, Scratch, UserPtr};

/// Base of DBC 0's device-memory window on the emulated card; DBC n's is
/// `n * DDR_WINDOW` higher (emulator.rst, the DMA bridge).
pub const DDR_BASE: u64 = 0x1_0000_0000;
/// Size of each channel's device-memory window.
pub const DDR_WINDOW: u64 = 0x1000_0000;

/// Normal files per process (the bystander comes on top).
const FILES: usize = 3;
/// At most this many objects in a file's pool.
const POOL_MAX: usize = 12;
/// At most this many channels per file (one with [`Avoid::MultiDbc`]).
const DBCS_MAX: usize = 2;

/// Classes of inputs that are known to break a driver (Documentation/reliability.rst), which
/// a run can leave out so that it tests everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Avoid {
    /// ATTACH/EXECUTE/PARTIAL_EXECUTE counts whose array is larger than 4 MiB.
    HugeCount,
    /// ACTIVATE queue sizes whose ring is larger than 4 MiB.
    HugeQueue,
    /// More than one channel per file (a buffer can then be executed on another channel than
    /// the one it is attached to).
    MultiDbc,
    /// DMA_XFER transactions of more than 2 GiB from a mapped address (a page array larger
    /// than 4 MiB to pin them).
    HugeDma,
    /// CREATE_BO of 1 TiB to 2^60 bytes (16 TiB is among the sizes tried).
    Bo16t,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Accel node.
    pub node: PathBuf,
    /// Seed of the whole run.
    pub seed: u64,
    /// Iterations of each worker (thread).
    pub iterations: u64,
    /// Threads per process.
    pub threads: u32,
    /// Index of this process (0-based).
    pub proc_index: u32,
    /// Only run this thread (replay), single-threaded.
    pub only_thread: Option<u32>,
    /// Stop after this iteration (replay).
    pub stop_at: Option<u64>,
    /// Print every call.
    pub verbose: bool,
    /// Seconds without progress of a worker after which it counts as hung.
    pub hang_s: u64,
    /// Input classes left out.
    pub avoid: Vec<Avoid>,
}

/// A buffer object a file created (or imported), as far as the fuzzer knows.
#[derive(Clone, Copy, Debug)]
struct BoHint {
    handle: u32,
    size: u64,
}

/// One open file of the node.
struct FileState {
    fd: OwnedFd,
    /// Never activates: every in-range DEACTIVATE from it must be EPERM.
    bystander: bool,
    /// Channels this file activated (hint; another thread may have lost them).
    dbcs: Mutex<Vec<u32>>,
    /// Held around every MANAGE that may activate, so `dbcs` is complete.
    act_lock: Mutex<()>,
    bos: Mutex<Vec<BoHint>>,
}

impl FileState {
    fn open(node: &Path, bystander: bool) -> Result<FileState, Errno> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(node)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        Ok(FileState {
            fd: f.into(),
            bystander,
            dbcs: Mutex::new(Vec::new()),
            act_lock: Mutex::new(()),
            bos: Mutex::new(Vec::new()),
        })
    }
}

/// Per-call statistics.
#[derive(Default, Clone)]
pub struct Stats {
    /// (call, errno or 0 for success) -> count.
    pub results: BTreeMap<(Call, i32), u64>,
    /// Findings: illegal or unexpected errnos, broken invariants.
    pub findings: Vec<String>,
}

impl Stats {
    fn merge(&mut self, o: &Stats) {
        for (k, v) in &o.results {
            *self.results.entry(*k).or_default() += v;
        }
        self.findings.extend(o.findings.iter().cloned());
    }

    /// Number of calls made.
    pub fn calls(&self) -> u64 {
        self.results.values().sum()
    }
}

/// The files of one process.
struct Arena {
    node: PathBuf,
    files: Mutex<Vec<Arc<FileState>>>,
    bystander: Arc<FileState>,
    hostile: Hostile,
    /// A readable buffer DMA transfers may point to.
    dma_src: Vec<u8>,
}

impl Arena {
    fn new(node: &Path) -> Result<Arena, Errno> {
        let mut files = Vec::new();
        for _ in 0..FILES {
            files.push(Arc::new(FileState::open(node, false)?));
        }
        Ok(Arena {
            node: node.to_path_buf(),
            files: Mutex::new(files),
            bystander: Arc::new(FileState::open(node, true)?),
            hostile: Hostile::new(),
            dma_src: (0..256 * 1024).map(|i| i as u8).collect(),
        })
    }

    fn file(&self, i: usize) -> Arc<FileState> {
        let f = self.files.lock().unwrap();
        f[i % f.len()].clone()
    }
}

/// Where an argument array was put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// In the scratch area, with room.
    Full,
    /// In the scratch area, only its first bytes, right before the guard page.
    Cut(usize),
    /// At a hostile address.
    Hostile(HostileKind),
}

impl Place {
    /// Reading the array from here faults (when it is not empty).
    fn read_faults(self) -> bool {
        matches!(self, Place::Cut(_))
            || matches!(self, Place::Hostile(k) if k != HostileKind::ReadOnly)
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Full => write!(f, "data"),
            Place::Cut(n) => write!(f, "data cut at {n}"),
            Place::Hostile(k) => write!(f, "data {k:?}"),
        }
    }
}

/// What an operation expects.
enum Expect {
    /// Any legal errno, or success.
    Legal,
    /// Exactly this errno.
    Errno(Errno),
}

/// The state of one worker thread.
struct Worker<'a> {
    arena: &'a Arena,
    scratch: Scratch,
    stats: Stats,
    id: String,
    iter: u64,
    verbose: bool,
    avoid: Vec<Avoid>,
    /// Command line that replays this worker, without `--stop-at`.
    replay: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bytes of an array of uapi entries as the kernel reads them (CPU byte order, the
/// layouts of `uapi/qaic_accel.h`, which have no padding).
fn to_bytes<T: Copy + 'static>(v: &[T]) -> Vec<u8> {
    v.iter().flat_map(pod_bytes).collect()
}

/// Native-endian bytes of a uapi structure, field by field.
fn pod_bytes<T: Copy + 'static>(v: &T) -> Vec<u8> {
    use std::any::Any;
    let any = v as &dyn Any;
    if let Some(e) = any.downcast_ref::<Entry>() {
        let mut b = Vec::with_capacity(72);
        b.extend_from_slice(&e.size.to_ne_bytes());
        for s in [e.sem0, e.sem1, e.sem2, e.sem3] {
            b.extend_from_slice(&sem_bytes(s));
        }
        b.extend_from_slice(&e.dev_addr.to_ne_bytes());
        b.extend_from_slice(&e.db_addr.to_ne_bytes());
        b.extend_from_slice(&e.db_data.to_ne_bytes());
        b.extend_from_slice(&e.db_len.to_ne_bytes());
        b.extend_from_slice(&e.offset.to_ne_bytes());
        b
    } else if let Some(e) = any.downcast_ref::<uapi::qaic_execute_entry>() {
        [e.handle.to_ne_bytes(), e.dir.to_ne_bytes()].concat()
    } else if let Some(e) = any.downcast_ref::<uapi::qaic_partial_execute_entry>() {
        [
            &e.handle.to_ne_bytes()[..],
            &e.dir.to_ne_bytes(),
            &e.resize.to_ne_bytes(),
        ]
        .concat()
    } else if let Some(e) = any.downcast_ref::<uapi::qaic_perf_stats_entry>() {
        [
            e.handle,
            e.queue_level_before,
            e.num_queue_element,
            e.submit_latency_us,
            e.device_latency_us,
            e.pad,
        ]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect()
    } else {
        unreachable!("no byte encoding for this type")
    }
}

fn sem_bytes(s: qaic_sem) -> [u8; 8] {
    let v = s.val.to_ne_bytes();
    let p = s.pad.to_ne_bytes();
    [v[0], v[1], s.index, s.presync, s.cmd, s.flags, p[0], p[1]]
}

/// `{type, len}` transaction header (little-endian, as the uapi says) plus body.
fn trans_bytes(ty: u32, len: u32, body: &[u8]) -> Vec<u8> {
    let mut v = ty.to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(body);
    v
}

const SIZE_EDGES: [u64; 14] = [
    0,
    1,
    4095,
    4096,
    4097,
    8192,
    12288,
    65536,
    65537,
    256 * 1024,
    u64::MAX,
    u64::MAX - 4094,
    1 << 63,
    1 << 44,
];

impl<'a> Worker<'a> {
    fn avoids(&self, a: Avoid) -> bool {
        self.avoid.contains(&a)
    }

    fn dbcs_max(&self) -> usize {
        if self.avoids(Avoid::MultiDbc) {
            1
        } else {
            DBCS_MAX
        }
    }

    /// Records a result; checks it against the legal set and the expectation.
    fn record(&mut self, call: Call, desc: &str, r: Result<(), Errno>, expect: Expect) {
        let code = r.err().unwrap_or(0);
        *self.stats.results.entry((call, code)).or_default() += 1;
        if self.verbose {
            let what = if code == 0 {
                "ok".to_string()
            } else {
                errnos::name(code)
            };
            println!(
                "{} #{} {} {desc} -> {what}",
                self.id,
                self.iter,
                call.name()
            );
        }
        let problem = match (expect, code) {
            (Expect::Errno(want), got) if got != want => Some(format!(
                "expected {}, got {}",
                errnos::name(want),
                if got == 0 {
                    "success".into()
                } else {
                    errnos::name(got)
                }
            )),
            (_, 0) => None,
            (_, got) if !call.legal().contains(&got) => {
                Some(format!("illegal errno {}", errnos::name(got)))
            }
            _ => None,
        };
        if let Some(p) = problem {
            let msg = format!(
                "worker {} iteration {}: {} {desc}: {p}\n  replay: {} --stop-at {} -v",
                self.id,
                self.iter,
                call.name(),
                self.replay,
                self.iter
            );
            println!("FINDING {msg}");
            self.stats.findings.push(msg);
        }
    }

    fn invariant(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            let msg = format!(
                "worker {} iteration {}: {}\n  replay: {} --stop-at {} -v",
                self.id,
                self.iter,
                what.into(),
                self.replay,
                self.iter
            );
            println!("FINDING {msg}");
            self.stats.findings.push(msg);
        }
    }

    fn pick_file(&self, rng: &mut Rng) -> Arc<FileState> {
        self.arena.file(rng.index(FILES))
    }

    /// A handle: mostly from the file's pool, else random, another file's, or 0.
    fn pick_handle(&self, rng: &mut Rng, f: &FileState) -> (u32, Option<BoHint>) {
        let pool = lock(&f.bos).clone();
        match rng.weighted(&[80, 6, 6, 4, 4]) {
            0 if !pool.is_empty() => {
                let b = pool[rng.index(pool.len())];
                (b.handle, Some(b))
            }
            1 => (rng.u32(), None),
            2 => {
                let other = self.pick_file(rng);
                let p = lock(&other.bos).clone();
                if p.is_empty() {
                    (1 + rng.u32() % 64, None)
                } else {
                    (p[rng.index(p.len())].handle, None)
                }
            }
            3 => (0, None),
            _ => (1 + rng.u32() % 64, None),
        }
    }

    /// A channel: mostly one of the file's own, else random, out of range or another file's.
    fn pick_dbc(&self, rng: &mut Rng, f: &FileState) -> u32 {
        let own = lock(&f.dbcs).clone();
        match rng.weighted(&[80, 8, 5, 4, 3]) {
            0 if !own.is_empty() => own[rng.index(own.len())],
            1 => rng.below(16) as u32,
            2 => rng.pick(&[16, 17, 255, u32::MAX]),
            3 => {
                let other = self.pick_file(rng);
                let o = lock(&other.dbcs).clone();
                o.first().copied().unwrap_or(0)
            }
            _ => rng.u32(),
        }
    }

    /// Where an argument array goes: into the scratch area with `full` bytes of room before
    /// the guard page, cut short, or at a hostile address.
    fn pick_ptr(&mut self, rng: &mut Rng, bytes: &[u8], full: usize) -> (UserPtr, Place) {
        match rng.weighted(&[85, 6, 9]) {
            0 => (self.scratch.place(bytes, full), Place::Full),
            // the array ends early: the kernel's read or write runs into the guard page
            1 => {
                let cut = rng.index(bytes.len().max(1)).min(bytes.len());
                (self.scratch.place(&bytes[..cut], cut), Place::Cut(cut))
            }
            _ => {
                let kind = rng.pick(&[
                    HostileKind::Null,
                    HostileKind::Low,
                    HostileKind::Unmapped,
                    HostileKind::ProtNone,
                    HostileKind::ReadOnly,
                    HostileKind::Kernel,
                    HostileKind::NonCanonical,
                ]);
                (
                    self.arena.hostile.ptr(kind, rng.below(64) * 8),
                    Place::Hostile(kind),
                )
            }
        }
    }

    // ---- MANAGE ---------------------------------------------------------------------------

    /// One transaction of a hostile or valid-looking message; returns its bytes and
    /// whether it is an ACTIVATE.
    fn gen_transaction(&mut self, rng: &mut Rng, bystander: bool, own: usize) -> (Vec<u8>, bool) {
        let allow_act = !bystander && own < self.dbcs_max();
        match rng.weighted(&[14, 22, 14, if allow_act { 6 } else { 0 }, 10, 8, 6]) {
            // STATUS, rarely with a wrong length: both drivers then send a header whose length
            // disagrees with the transfer, which the card drops, so the call times out
            0 => {
                let len = if rng.chance(49, 50) {
                    8
                } else {
                    rng.pick(&[0, 4, 7, 9, 16, 24, 4096])
                };
                let body = vec![0u8; (len as usize).saturating_sub(8).min(16)];
                (trans_bytes(trans::STATUS_FROM_USR, len, &body), false)
            }
            // PASSTHROUGH: an NNC command the card knows, or junk
            1 => {
                let payload = if rng.chance(1, 2) {
                    self.gen_nnc(rng)
                } else {
                    let n = rng.pick(&[0usize, 1, 7, 8, 16, 24, 64, 200, 512, 1024]);
                    rng.bytes(n)
                };
                let mut len = 8 + payload.len() as u32;
                if rng.chance(1, 10) {
                    len = rng.pick(&[0, 7, 8, len + 8, len.saturating_sub(8), 65536]);
                }
                (
                    trans_bytes(trans::PASSTHROUGH_FROM_USR, len, &payload),
                    false,
                )
            }
            // DMA_XFER with good and bad addresses and sizes
            2 => {
                let base = self.arena.dma_src.as_ptr() as u64;
                let h = &self.arena.hostile;
                let addr = match rng.below(10) {
                    0..=3 => base + rng.below(4096),
                    4 => h.addr(HostileKind::Unmapped),
                    5 => h.addr(HostileKind::ProtNone),
                    6 => h.addr(HostileKind::ReadOnly),
                    7 => h.addr(HostileKind::Kernel),
                    8 => rng.pick(&[0, 0x1000, u64::MAX - 16, 1 << 47]),
                    _ => rng.next_u64(),
                };
                let size = match rng.below(6) {
                    0..=2 => 1 + rng.below(64 * 1024),
                    3 => rng.pick(&[0, 1, 4095, 4096, 4097, 250 * 1024]),
                    4 if self.avoids(Avoid::HugeDma) => {
                        rng.pick(&[u64::MAX, (u64::MAX - addr).wrapping_add(2)])
                    }
                    4 => rng.pick(&[u64::MAX, u64::MAX - addr, (u64::MAX - addr).wrapping_add(2)]),
                    _ if self.avoids(Avoid::HugeDma) => rng.pick(&[1 << 20, 1 << 30]),
                    _ => rng.pick(&[1 << 20, 1 << 30, 1 << 40]),
                };
                let mut body = rng.u32().to_le_bytes().to_vec(); // tag
                body.extend_from_slice(
                    &(if rng.chance(9, 10) { 0 } else { rng.u32() }).to_le_bytes(),
                );
                body.extend_from_slice(&addr.to_le_bytes());
                body.extend_from_slice(&size.to_le_bytes());
                let len = if rng.chance(9, 10) {
                    32
                } else {
                    rng.pick(&[8, 16, 24, 31, 40])
                };
                body.truncate((len as usize).saturating_sub(8));
                (trans_bytes(trans::DMA_XFER_FROM_USR, len, &body), false)
            }
            // ACTIVATE with edge queue sizes
            3 => {
                let q = match rng.below(4) {
                    0 | 1 => rng.pick(&[1u32, 2, 4, 16, 64, 512]),
                    2 if self.avoids(Avoid::HugeQueue) => {
                        rng.pick(&[0, 0x3c3_c3c4, u32::MAX, 60000])
                    }
                    2 => rng.pick(&[0, 0x3c3_c3c4, u32::MAX, 1 << 20]),
                    _ => 1 + rng.u32() % 4096,
                };
                let pad = if rng.chance(9, 10) { 0 } else { rng.u32() | 1 };
                let body: Vec<u8> = [q, rng.u32(), rng.u32() & 0xff, pad]
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .collect();
                let len = if rng.chance(9, 10) {
                    24
                } else {
                    rng.pick(&[16, 20, 32])
                };
                let mut body = body;
                body.truncate((len as usize).saturating_sub(8));
                (trans_bytes(trans::ACTIVATE_FROM_USR, len, &body), true)
            }
            // DEACTIVATE: out of range for files that own channels (deactivating one's own
            // channel without the firmware's command leaves it busy for good), any id for the
            // bystander
            4 => {
                let id = if bystander {
                    rng.below(16) as u32
                } else {
                    rng.pick(&[16, 17, 64, u32::MAX])
                };
                let pad = if rng.chance(9, 10) { 0 } else { 1 };
                (
                    trans_bytes(
                        trans::DEACTIVATE_FROM_USR,
                        16,
                        &[id.to_le_bytes(), (pad as u32).to_le_bytes()].concat(),
                    ),
                    false,
                )
            }
            // device-side and unknown types
            5 => {
                let ty = rng.pick(&[
                    0,
                    trans::PASSTHROUGH_TO_USR,
                    trans::PASSTHROUGH_FROM_DEV,
                    trans::PASSTHROUGH_TO_DEV,
                    trans::DMA_XFER_TO_DEV,
                    trans::ACTIVATE_FROM_DEV,
                    trans::ACTIVATE_TO_DEV,
                    trans::DEACTIVATE_FROM_DEV,
                    trans::STATUS_TO_USR,
                    trans::STATUS_FROM_DEV,
                    trans::STATUS_TO_DEV,
                    trans::TERMINATE_FROM_DEV,
                    trans::TERMINATE_TO_DEV,
                    trans::DMA_XFER_CONT,
                    trans::VALIDATE_PARTITION_FROM_DEV,
                    trans::VALIDATE_PARTITION_TO_DEV,
                    21,
                    u32::MAX,
                ]);
                let n = rng.pick(&[0usize, 8, 16, 24]);
                (trans_bytes(ty, 8 + n as u32, &rng.bytes(n)), false)
            }
            // a header with a random length
            _ => {
                let n = rng.index(32);
                (
                    trans_bytes(
                        rng.u32() % 24,
                        rng.pick(&[0, 1, 7, 8, 0x7fff_ffff, u32::MAX]),
                        &rng.bytes(n),
                    ),
                    false,
                )
            }
        }
    }

    /// An NNC command the firmware understands, with random ids.
    fn gen_nnc(&mut self, rng: &mut Rng) -> Vec<u8> {
        let pid = std::process::id();
        let p = match rng.below(6) {
            0 => nnc::passthrough_payload(&nnc::StatusRequest {
                info_type: rng.below(3) as u8,
            }),
            1 => nnc::passthrough_payload(&nnc::ResourceInfoRequest {
                pid,
                res_grp_id: rng.pick(&[-1, 0, 1, i32::MAX]),
            }),
            2 => nnc::passthrough_payload(&nnc::PerformanceInfoRequest),
            3 => nnc::passthrough_payload(&nnc::UnloadElfRequest {
                elf_id: rng.below(8) as u32,
            }),
            4 => nnc::passthrough_payload(&nnc::UnloadConstantsRequest {
                constants_id: rng.below(8) as u32,
            }),
            _ => nnc::passthrough_payload(&nnc::DeactivateRequest {
                activation_id: rng.pick(&[0, 1, 2, 3, 100, u32::MAX]),
                opt_vc_teardown: rng.below(2) as u32,
            }),
        };
        p.unwrap_or_default()
    }

    fn op_manage(&mut self, rng: &mut Rng) {
        let f = if rng.chance(1, 6) {
            self.arena.bystander.clone()
        } else {
            self.pick_file(rng)
        };
        // a valid STATUS now and then: the control path must keep answering
        let n = match rng.weighted(&[50, 30, 12, 8]) {
            0 => 1,
            1 => 2 + rng.index(3),
            2 => 0,
            _ => rng.pick(&[64usize, 512, 513]),
        };
        // activations of a file are serialised, so that its channel count is exact
        let mut guard = (!f.bystander).then(|| lock(&f.act_lock));
        let own = lock(&f.dbcs).len();
        let mut bytes = Vec::new();
        let mut activates = false;
        let mut kinds = Vec::new();
        for _ in 0..n {
            let (t, a) = if n > 8 {
                (trans_bytes(trans::STATUS_FROM_USR, 8, &[]), false)
            } else {
                self.gen_transaction(rng, f.bystander, own)
            };
            kinds.push(u32::from_le_bytes(t[..4].try_into().unwrap()));
            activates |= a;
            bytes.extend_from_slice(&t);
        }
        let exact_len = bytes.len() as u32;
        bytes.truncate(uapi::QAIC_MANAGE_MAX_MSG_LENGTH);
        let len = if rng.chance(17, 20) {
            exact_len
        } else {
            rng.pick(&[
                0,
                7,
                8,
                exact_len.wrapping_sub(1),
                exact_len + 1,
                4096,
                4097,
                u32::MAX,
            ])
        };
        let count = if rng.chance(17, 20) {
            n as u32
        } else {
            rng.pick(&[
                0,
                (n as u32).wrapping_sub(1),
                n as u32 + 1,
                512,
                513,
                u32::MAX,
            ])
        };
        let (ptr, pdesc) = self.pick_ptr(rng, &bytes, uapi::QAIC_MANAGE_MAX_MSG_LENGTH);
        let valid_ptr = pdesc == Place::Full;
        // the first checks: length, copy, count (the copy cannot fault: the scratch area holds
        // 4096 bytes from the pointer)
        let expect = if len > 4096 || (valid_ptr && (count == 0 || count > 512 || len < 8)) {
            Expect::Errno(EINVAL)
        } else if valid_ptr
            && f.bystander
            && len == exact_len
            && count == n as u32
            && n == 1
            && kinds[0] == trans::DEACTIVATE_FROM_USR
            && bytes.len() == 16
            && bytes[12..16] == [0, 0, 0, 0]
        {
            // a well-formed DEACTIVATE of an in-range channel from a file that owns none
            Expect::Errno(EPERM)
        } else {
            Expect::Legal
        };
        let mut desc = format!("len {len} count {count} types {kinds:?} {pdesc}");
        // the DMA transfers' addresses and sizes, for the replay
        let mut off = 0;
        while off + 8 <= bytes.len() {
            let w = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
            let q = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
            let (ty, tlen) = (w(off), w(off + 4) as usize);
            if ty == trans::DMA_XFER_FROM_USR && off + 32 <= bytes.len() {
                desc += &format!(" dma {:#x}+{:#x}", q(off + 16), q(off + 24));
            }
            if tlen < 8 {
                break;
            }
            off += tlen;
        }
        if !activates {
            guard = None;
        }
        let (r, olen, ocount) = sys::manage(f.fd.as_fd(), len, count, ptr);
        if r.is_ok() {
            self.invariant(
                olen as usize <= uapi::QAIC_MANAGE_MAX_MSG_LENGTH,
                format!("MANAGE {desc}: answer len {olen} > 4096"),
            );
            if activates && valid_ptr {
                let out = self.scratch.read(ptr, olen as usize);
                for dbc in activated_dbcs(&out, ocount) {
                    lock(&f.dbcs).push(dbc);
                }
            }
        }
        drop(guard);
        self.record(Call::Manage, &desc, r, expect);
    }

    /// A clean bare-channel activation for a file with none.
    fn op_activate(&mut self, rng: &mut Rng) {
        let f = self.pick_file(rng);
        let _g = lock(&f.act_lock);
        if lock(&f.dbcs).len() >= self.dbcs_max() {
            return;
        }
        let q = rng.pick(&[4u32, 16, 64, 64, 512]);
        let t = trans_bytes(
            trans::ACTIVATE_FROM_USR,
            24,
            &[q, 0, 0, 0]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect::<Vec<_>>(),
        );
        let ptr = self.scratch.place(&t, uapi::QAIC_MANAGE_MAX_MSG_LENGTH);
        let (r, olen, ocount) = sys::manage(f.fd.as_fd(), 24, 1, ptr);
        if r.is_ok() {
            let out = self.scratch.read(ptr, olen as usize);
            let got = activated_dbcs(&out, ocount);
            self.invariant(got.len() == 1, format!("bare ACTIVATE answered {got:?}"));
            lock(&f.dbcs).extend(got);
        }
        self.record(
            Call::Manage,
            &format!("bare ACTIVATE queue {q}"),
            r,
            Expect::Legal,
        );
    }

    // ---- buffer objects -------------------------------------------------------------------

    fn op_create(&mut self, rng: &mut Rng) {
        let f = self.pick_file(rng);
        let size = match rng.below(10) {
            0..=5 => 4096 * (1 + rng.below(16)),
            6 => 1 + rng.below(256 * 1024),
            _ => rng.pick(&SIZE_EDGES),
        };
        let size = if (1 << 40..1 << 60).contains(&size) && self.avoids(Avoid::Bo16t) {
            64 << 20
        } else {
            size
        };
        let pad = if rng.chance(19, 20) { 0 } else { rng.u32() | 1 };
        let mut a = uapi::qaic_create_bo {
            size,
            handle: 0,
            pad,
        };
        let r = sys::create_bo(f.fd.as_fd(), &mut a);
        let wraps = size.checked_next_multiple_of(4096).is_none_or(|s| s == 0);
        let expect = if pad != 0 || wraps {
            Expect::Errno(EINVAL)
        } else {
            Expect::Legal
        };
        if r.is_ok() {
            self.invariant(a.handle != 0, "CREATE_BO returned handle 0");
            let mut pool = lock(&f.bos);
            if size <= 256 * 1024 && pool.len() < POOL_MAX {
                pool.push(BoHint {
                    handle: a.handle,
                    size: size.next_multiple_of(4096),
                });
            } else {
                drop(pool);
                // too big to keep (or the pool is full): close it again
                let r = sys::gem_close(f.fd.as_fd(), a.handle, 0);
                self.record(
                    Call::GemClose,
                    &format!("handle {} (fresh)", a.handle),
                    r,
                    Expect::Legal,
                );
            }
        }
        self.record(
            Call::CreateBo,
            &format!("size {size:#x} pad {pad:#x}"),
            r,
            expect,
        );
    }

    fn op_mmap(&mut self, rng: &mut Rng) {
        let f = self.pick_file(rng);
        let (handle, hint) = self.pick_handle(rng, &f);
        let mut a = uapi::qaic_mmap_bo {
            handle,
            pad: if rng.chance(9, 10) { 0 } else { rng.u32() },
            offset: 0,
        };
        let r = sys::mmap_bo(f.fd.as_fd(), &mut a);
        self.record(Call::MmapBo, &format!("handle {handle}"), r, Expect::Legal);
        let offset = match (r, rng.below(10)) {
            (Ok(()), 0..=7) => a.offset,
            (_, 8) => rng.pick(&[0, 4096, 1 << 32, !4095]),
            (Ok(()), _) => a.offset + 4096 * (1 + rng.below(4)),
            _ => return,
        };
        let size = hint.map_or(4096, |h| h.size);
        let len = match rng.below(8) {
            0..=4 => 4096,
            5 | 6 => size as usize,
            _ => size as usize + 4096,
        };
        // a different file than the one that made the offset, now and then
        let g = if rng.chance(1, 8) {
            self.pick_file(rng)
        } else {
            f.clone()
        };
        let r = Map::new(g.fd.as_fd(), offset, len);
        let desc = format!("offset {offset:#x} len {len:#x}");
        match r {
            Ok(mut m) => {
                m.touch(rng.u32() as u8);
                self.record(Call::Mmap, &desc, Ok(()), Expect::Legal);
            }
            Err(e) => self.record(Call::Mmap, &desc, Err(e), Expect::Legal),
        }
    }

    /// An array count at the edges: 0, one too many, `big` (an array of gigabytes) and the
    /// largest.
    fn edge_count(&self, rng: &mut Rng, n: u32, big: u32) -> u32 {
        if self.avoids(Avoid::HugeCount) {
            rng.pick(&[0, n + 1, 0x8000])
        } else {
            rng.pick(&[0, n + 1, big, u32::MAX])
        }
    }

    fn gen_sem(&mut self, rng: &mut Rng) -> qaic_sem {
        match rng.below(20) {
            0..=13 => qaic_sem::default(),
            14..=17 => qaic_sem {
                val: rng.below(0x1000) as u16,
                index: rng.below(32) as u8,
                // a pre-sync wait that is never satisfied stalls the channel: keep it rare
                presync: u8::from(rng.chance(1, 4)),
                cmd: rng.pick(&[
                    uapi::QAIC_SEM_INIT,
                    uapi::QAIC_SEM_INC,
                    uapi::QAIC_SEM_DEC,
                    uapi::QAIC_SEM_NOP,
                    uapi::QAIC_SEM_WAIT_GT_0,
                ]),
                flags: rng.below(4) as u8,
                pad: 0,
            },
            _ => qaic_sem {
                val: rng.u32() as u16,
                index: rng.u32() as u8,
                presync: rng.below(3) as u8,
                cmd: rng.below(9) as u8,
                flags: rng.below(8) as u8,
                pad: if rng.chance(1, 2) { 0 } else { 1 },
            },
        }
    }

    fn op_attach(&mut self, rng: &mut Rng) {
        let f = self.pick_file(rng);
        let (handle, hint) = self.pick_handle(rng, &f);
        let dbc = self.pick_dbc(rng, &f);
        let size = hint.map_or(8192, |h| h.size);
        let dir = if rng.chance(9, 10) {
            rng.pick(&[1, 2])
        } else {
            rng.pick(&[0, 3, u32::MAX])
        };
        let n = match rng.below(10) {
            0..=5 => 1,
            6..=8 => 2 + rng.below(3) as usize,
            _ => rng.pick(&[0usize, 8, 65]),
        };
        let window = DDR_BASE + u64::from(dbc % 16) * DDR_WINDOW;
        let mut entries = Vec::with_capacity(n);
        let mut off = 0u64;
        for i in 0..n {
            let remaining = size.saturating_sub(off);
            let (offset, len) = match rng.below(12) {
                // consecutive pieces covering the object
                0..=6 => {
                    let len = if i + 1 == n {
                        remaining
                    } else {
                        (remaining / 2).max(1)
                    };
                    (off, len)
                }
                7 => (0, size),                          // overlapping
                8 => (rng.below(size + 1), 0),           // no data
                9 => (size - 4096, 4096 + rng.below(2)), // at the end
                10 => (
                    rng.pick(&[u64::MAX, size, 1 << 63]),
                    rng.pick(&[1, 2, u64::MAX]),
                ),
                _ => (rng.below(size), rng.below(size) + 1),
            };
            off = off.saturating_add(len);
            let db_len = if rng.chance(4, 5) {
                0
            } else {
                rng.pick(&[8, 16, 32, 4, 64, u32::MAX])
            };
            let dev_addr = match rng.below(10) {
                0..=7 => window + (offset & 0xff_ffff),
                8 => rng.next_u64(),
                _ => window + DDR_WINDOW - 2,
            };
            entries.push(Entry {
                size: len,
                sem0: self.gen_sem(rng),
                sem1: self.gen_sem(rng),
                sem2: self.gen_sem(rng),
                sem3: self.gen_sem(rng),
                dev_addr,
                db_addr: match rng.below(4) {
                    0 | 1 => window + 0x10_0000 + rng.below(64) * 4,
                    2 => window + 1 + rng.below(7),
                    _ => rng.next_u64(),
                },
                db_data: rng.u32(),
                db_len,
                offset,
            });
        }
        let count = if rng.chance(19, 20) {
            n as u32
        } else {
            self.edge_count(rng, n as u32, 0x38e_38e4)
        };
        let bytes = to_bytes(&entries);
        let (ptr, pdesc) = self.pick_ptr(rng, &bytes, bytes.len());
        let hdr = Hdr {
            count,
            dbc_id: dbc,
            handle,
            dir,
            size: if rng.chance(9, 10) { 0 } else { rng.next_u64() },
        };
        let expect = if count == 0 || !(1..=2).contains(&dir) || ptr.addr() == 0 {
            Expect::Errno(EINVAL)
        } else {
            Expect::Legal
        };
        let r = sys::attach(f.fd.as_fd(), hdr, ptr);
        let desc = format!(
            "handle {handle} dbc {dbc} dir {dir} count {count} {pdesc} slices {:?}",
            entries
                .iter()
                .map(|e| (e.offset, e.size, e.db_len))
                .collect::<Vec<_>>()
        );
        self.record(Call::Attach, &desc, r, expect);
    }

    fn op_execute(&mut self, rng: &mut Rng, partial: bool) {
        let f = self.pick_file(rng);
        let dbc = self.pick_dbc(rng, &f);
        let n = match rng.below(10) {
            0..=5 => 1,
            6..=8 => 2 + rng.index(3),
            _ => rng.pick(&[0usize, 16]),
        };
        let mut handles = Vec::new();
        for _ in 0..n {
            handles.push(self.pick_handle(rng, &f));
        }
        let count = if rng.chance(19, 20) {
            n as u32
        } else {
            self.edge_count(rng, n as u32, 0x2000_0000)
        };
        let (bytes, desc) = if partial {
            let e: Vec<uapi::qaic_partial_execute_entry> = handles
                .iter()
                .map(|(h, hint)| {
                    let size = hint.map_or(4096, |b| b.size);
                    uapi::qaic_partial_execute_entry {
                        handle: *h,
                        dir: rng.below(4) as u32,
                        resize: match rng.below(6) {
                            0 => 0,
                            1 => size,
                            2 => size + 1,
                            3 => u64::MAX,
                            _ => rng.below(size + 1),
                        },
                    }
                })
                .collect();
            let d = format!(
                "{:?}",
                e.iter().map(|x| (x.handle, x.resize)).collect::<Vec<_>>()
            );
            (to_bytes(&e), d)
        } else {
            let e: Vec<uapi::qaic_execute_entry> = handles
                .iter()
                .map(|(h, _)| uapi::qaic_execute_entry {
                    handle: *h,
                    dir: rng.below(4) as u32,
                })
                .collect();
            let d = format!("{:?}", e.iter().map(|x| x.handle).collect::<Vec<_>>());
            (to_bytes(&e), d)
        };
        let (ptr, pdesc) = self.pick_ptr(rng, &bytes, bytes.len());
        let expect = if count == 0 {
            Expect::Errno(EINVAL)
        } else if pdesc.read_faults() && count as usize >= n && count <= 16 {
            // an array at an address that faults: the copy is the second check
            Expect::Errno(EFAULT)
        } else {
            Expect::Legal
        };
        let r = sys::execute(f.fd.as_fd(), partial, count, dbc, ptr);
        let call = if partial {
            Call::PartialExecute
        } else {
            Call::Execute
        };
        self.record(
            call,
            &format!("dbc {dbc} count {count} {pdesc} {desc}"),
            r,
            expect,
        );
    }

    fn op_wait(&mut self, rng: &mut Rng) {
        let f = self.pick_file(rng);
        let (handle, _) = self.pick_handle(rng, &f);
        let dbc = self.pick_dbc(rng, &f);
        let timeout = match rng.below(500) {
            0 => 0, // the driver's default, 5 s
            1..=5 => 200,
            _ => rng.pick(&[1, 2, 5, 10, 20]),
        };
        let pad = if rng.chance(19, 20) {
            0
        } else {
            1 + rng.u32() % 7
        };
        let mut a = uapi::qaic_wait {
            handle,
            timeout,
            dbc_id: dbc,
            pad,
        };
        let r = sys::wait_bo(f.fd.as_fd(), &mut a);
        let expect = if pad != 0 {
            Expect::Errno(EINVAL)
        } else {
            Expect::Legal
        };
        self.record(
            Call::Wait,
            &format!("handle {handle} dbc {dbc} timeout {timeout} pad {pad}"),
            r,
            expect,
        );
    }

    fn op_perf(&mut self, rng: &mut Rng) {
        let f = self.pick_file(rng);
        let dbc = self.pick_dbc(rng, &f);
        let n = rng.index(5);
        let entries: Vec<uapi::qaic_perf_stats_entry> = (0..n)
            .map(|_| uapi::qaic_perf_stats_entry {
                handle: self.pick_handle(rng, &f).0,
                pad: rng.u32(),
                ..Default::default()
            })
            .collect();
        let count = if rng.chance(9, 10) {
            n as u16
        } else {
            rng.pick(&[n as u16 + 1, 1000, u16::MAX])
        };
        let bytes = to_bytes(&entries);
        let (ptr, pdesc) = self.pick_ptr(rng, &bytes, bytes.len());
        let r = sys::perf_stats(f.fd.as_fd(), count, rng.u32() as u16, dbc, ptr);
        let hs: Vec<u32> = entries.iter().map(|e| e.handle).collect();
        self.record(
            Call::PerfStats,
            &format!("dbc {dbc} count {count} {pdesc} handles {hs:?}"),
            r,
            Expect::Legal,
        );
    }

    fn op_detach(&mut self, rng: &mut Rng) {
        let f = self.pick_file(rng);
        let (handle, _) = self.pick_handle(rng, &f);
        let pad = if rng.chance(19, 20) {
            0
        } else {
            1 + rng.u32() % 7
        };
        let r = sys::detach(f.fd.as_fd(), &mut uapi::qaic_detach_slice { handle, pad });
        let expect = if pad != 0 {
            Expect::Errno(EINVAL)
        } else {
            Expect::Legal
        };
        self.record(
            Call::Detach,
            &format!("handle {handle} pad {pad}"),
            r,
            expect,
        );
    }

    fn op_close(&mut self, rng: &mut Rng) {
        let f = self.pick_file(rng);
        let (handle, hint) = self.pick_handle(rng, &f);
        let r = sys::gem_close(f.fd.as_fd(), handle, 0);
        if r.is_ok() && hint.is_some() {
            lock(&f.bos).retain(|b| b.handle != handle);
        }
        self.record(
            Call::GemClose,
            &format!("handle {handle}"),
            r,
            Expect::Legal,
        );
    }

    fn op_prime(&mut self, rng: &mut Rng) {
        let f = self.pick_file(rng);
        let (handle, hint) = self.pick_handle(rng, &f);
        let flags = if rng.chance(9, 10) {
            uapi::DRM_CLOEXEC | uapi::DRM_RDWR
        } else {
            rng.u32()
        };
        let r = sys::prime_export(f.fd.as_fd(), handle, flags);
        let desc = format!("handle {handle} flags {flags:#x}");
        let buf = match r {
            Ok(b) => {
                self.record(Call::PrimeExport, &desc, Ok(()), Expect::Legal);
                Some(b)
            }
            Err(e) => {
                self.record(Call::PrimeExport, &desc, Err(e), Expect::Legal);
                None
            }
        };
        let g = self.pick_file(rng);
        // import the dma-buf, or a descriptor that is not one
        let fdnum = match (&buf, rng.below(8)) {
            (Some(b), 0..=5) => b.as_raw_fd(),
            (_, 6) => g.fd.as_raw_fd(),
            _ => rng.pick(&[-1, 9999, 0]),
        };
        let r = sys::prime_import(g.fd.as_fd(), fdnum);
        if let (Ok(h), Some(hint)) = (r, hint) {
            let mut pool = lock(&g.bos);
            if pool.len() < POOL_MAX && !pool.iter().any(|b| b.handle == h) {
                pool.push(BoHint {
                    handle: h,
                    size: hint.size,
                });
            }
        }
        self.record(
            Call::PrimeImport,
            &format!("fd {fdnum}"),
            r.map(|_| ()),
            Expect::Legal,
        );
    }

    fn op_reopen(&mut self, rng: &mut Rng) {
        let i = rng.index(FILES);
        match FileState::open(&self.arena.node, false) {
            Ok(nf) => {
                let old = std::mem::replace(&mut lock(&self.arena.files)[i], Arc::new(nf));
                // closed when the last thread using it lets go: TERMINATE while its objects
                // may still be queued
                drop(old);
                self.record(
                    Call::Open,
                    &format!("file {i} reopened"),
                    Ok(()),
                    Expect::Legal,
                );
            }
            Err(e) => self.record(Call::Open, &format!("file {i}"), Err(e), Expect::Legal),
        }
    }

    /// One iteration.
    fn step(&mut self, rng: &mut Rng) {
        const WEIGHTS: [u32; 13] = [14, 3, 10, 6, 14, 12, 8, 10, 5, 6, 6, 2, 1];
        match rng.weighted(&WEIGHTS) {
            0 => self.op_manage(rng),
            1 => self.op_activate(rng),
            2 => self.op_create(rng),
            3 => self.op_mmap(rng),
            4 => self.op_attach(rng),
            5 => self.op_execute(rng, false),
            6 => self.op_execute(rng, true),
            7 => self.op_wait(rng),
            8 => self.op_perf(rng),
            9 => self.op_detach(rng),
            10 => self.op_close(rng),
            11 => self.op_prime(rng),
            _ => self.op_reopen(rng),
        }
    }
}

/// The command-line spelling of an input class.
pub fn avoid_name(a: Avoid) -> String {
    use clap::ValueEnum;
    a.to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// DBC ids of the ACTIVATE_FROM_DEV transactions in a MANAGE answer with status 0.
fn activated_dbcs(out: &[u8], count: u32) -> Vec<u32> {
    let word = |o: usize| {
        out.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let mut dbcs = Vec::new();
    let mut off = 0;
    for _ in 0..count {
        let (Some(ty), Some(len)) = (word(off), word(off + 4)) else {
            break;
        };
        if ty == trans::ACTIVATE_FROM_DEV && word(off + 8) == Some(0) {
            if let Some(d) = word(off + 12) {
                if d < uapi::QAIC_DBC_COUNT {
                    dbcs.push(d);
                }
            }
        }
        if len < 8 {
            break;
        }
        off += len as usize;
    }
    dbcs
}

/// Progress of each worker, for the hang watchdog.
struct Progress {
    last: Vec<AtomicU64>,
    what: Vec<Mutex<String>>,
    start: Instant,
}

impl Progress {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// Runs this process's workers; returns the merged statistics and whether a
/// worker hung.
pub fn run_process(cfg: &Config) -> Result<(Stats, bool), String> {
    let arena = Arena::new(&cfg.node)
        .map_err(|e| format!("cannot open {}: {}", cfg.node.display(), errnos::name(e)))?;
    let threads: Vec<u32> = match cfg.only_thread {
        Some(t) => vec![t],
        None => (0..cfg.threads).collect(),
    };
    let progress = Progress {
        last: threads.iter().map(|_| AtomicU64::new(0)).collect(),
        what: threads.iter().map(|_| Mutex::new(String::new())).collect(),
        start: Instant::now(),
    };
    let done = AtomicBool::new(false);
    let hung = AtomicBool::new(false);
    let mut total = Stats::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = threads
            .iter()
            .enumerate()
            .map(|(slot, &t)| {
                let arena = &arena;
                let progress = &progress;
                s.spawn(move || {
                    let wseed = mix(cfg.seed, (u64::from(cfg.proc_index) << 32) | u64::from(t));
                    let mut w = Worker {
                        arena,
                        scratch: Scratch::new(),
                        stats: Stats::default(),
                        id: format!("{}.{t}", cfg.proc_index),
                        iter: 0,
                        verbose: cfg.verbose,
                        avoid: cfg.avoid.clone(),
                        replay: format!(
                            "qaic-fuzz fuzz -d {} --seed {:#x} --per-worker {} --threads {} --proc {} --only-thread {t}{}",
                            cfg.node.display(),
                            cfg.seed,
                            cfg.iterations,
                            cfg.threads,
                            cfg.proc_index,
                            cfg.avoid.iter().map(|a| format!(" --avoid {}", avoid_name(*a))).collect::<String>()
                        ),
                    };
                    let last = cfg.stop_at.map_or(cfg.iterations, |i| (i + 1).min(cfg.iterations));
                    for i in 0..last {
                        w.iter = i;
                        progress.last[slot].store(progress.now(), Ordering::Relaxed);
                        *lock(&progress.what[slot]) = format!("iteration {i}");
                        let mut rng = Rng::new(mix(wseed, i));
                        w.step(&mut rng);
                    }
                    progress.last[slot].store(u64::MAX, Ordering::Relaxed);
                    w.stats
                })
            })
            .collect();
        // watchdog: a worker without progress for hang_s seconds is hung
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                for (slot, l) in progress.last.iter().enumerate() {
                    let l = l.load(Ordering::Relaxed);
                    if l != u64::MAX && progress.now().saturating_sub(l) > cfg.hang_s * 1000 {
                        println!(
                            "FINDING process {} thread {} hung for {} s at {}",
                            cfg.proc_index,
                            threads[slot],
                            cfg.hang_s,
                            lock(&progress.what[slot])
                        );
                        dump_stacks();
                        hung.store(true, Ordering::Relaxed);
                        std::process::exit(3);
                    }
                }
            }
        });
        for h in handles {
            match h.join() {
                Ok(st) => total.merge(&st),
                Err(_) => total.findings.push("a worker thread panicked".into()),
            }
        }
        done.store(true, Ordering::Relaxed);
    });
    Ok((total, hung.load(Ordering::Relaxed)))
}

/// Prints the kernel stacks of this process's threads (root only).
fn dump_stacks() {
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for t in dir.flatten() {
            let p = t.path();
            let wchan = std::fs::read_to_string(p.join("wchan")).unwrap_or_default();
            let stack = std::fs::read_to_string(p.join("stack")).unwrap_or_default();
            println!(
                "task {}: wchan {wchan}\n{stack}",
                t.file_name().to_string_lossy()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_bytes_match_the_uapi_layout() {
        let e = Entry {
            size: 0x1122,
            sem1: qaic_sem {
                val: 0x0abc,
                index: 5,
                presync: 1,
                cmd: 4,
                flags: 2,
                pad: 0,
            },
            dev_addr: 0x1_0000_0000,
            db_addr: 0x44,
            db_data: 7,
            db_len: 32,
            offset: 0x2000,
            ..Default::default()
        };
        let b = to_bytes(&[e]);
        assert_eq!(b.len(), std::mem::size_of::<Entry>());
        assert_eq!(&b[0..8], &0x1122u64.to_ne_bytes());
        assert_eq!(&b[16..24], &[0xbc, 0x0a, 5, 1, 4, 2, 0, 0]);
        assert_eq!(&b[40..48], &0x1_0000_0000u64.to_ne_bytes());
        assert_eq!(&b[56..60], &7u32.to_ne_bytes());
        assert_eq!(&b[60..64], &32u32.to_ne_bytes());
        assert_eq!(&b[64..72], &0x2000u64.to_ne_bytes());
        let p = to_bytes(&[uapi::qaic_partial_execute_entry {
            handle: 3,
            dir: 1,
            resize: 9,
        }]);
        assert_eq!(p.len(), 16);
        let s = to_bytes(&[uapi::qaic_perf_stats_entry {
            handle: 1,
            pad: 2,
            ..Default::default()
        }]);
        assert_eq!(s.len(), 24);
        assert_eq!(&s[20..24], &2u32.to_ne_bytes());
    }

    #[test]
    fn activate_answers_are_found() {
        let mut out = trans_bytes(trans::PASSTHROUGH_FROM_DEV, 16, &[0; 8]);
        out.extend(trans_bytes(
            trans::ACTIVATE_FROM_DEV,
            24,
            &[0u32, 3, 0, 0]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect::<Vec<_>>(),
        ));
        out.extend(trans_bytes(
            trans::ACTIVATE_FROM_DEV,
            24,
            &[1u32, 4, 0, 0]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect::<Vec<_>>(),
        ));
        assert_eq!(activated_dbcs(&out, 3), vec![3]);
        assert_eq!(activated_dbcs(&out, 1), Vec::<u32>::new());
        assert_eq!(activated_dbcs(&[1, 2], 5), Vec::<u32>::new());
    }

    #[test]
    fn scratch_places_at_the_guard() {
        let mut s = Scratch::new();
        let p = s.place(&[1, 2, 3], 16);
        assert_eq!(s.read(p, 16)[..4], [1, 2, 3, 0]);
        let q = s.place(&[9], 1);
        assert_eq!(q.addr(), p.addr() + 15);
    }
}
