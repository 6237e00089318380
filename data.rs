// SPDX-License-Identifier: GPL-2.0-only

//! The data path: buffer objects attached to DMA bridge channels as slices, submitted through the
//! channels' request rings and completed through their response rings.
//!
//! What goes into the rings is [`crate::dma_bridge`]'s (pure logic); this module does the
//! ioctls, the register accesses, the ring memory and the bookkeeping: which buffer objects are
//! attached to a channel, which are queued, and waking their waiters when the card answers (in
//! the channel's threaded interrupt handler, or in `DRM_IOCTL_QAIC_WAIT_BO` itself when the
//! module runs with `datapath_polling=1`).
//!
//! Locking: a channel's [`Sub`] mutex, then a buffer object's state mutex, never the other way
//! round. The card-wide channel table ([`crate::card::Dbcs`]) is a spinlock taken last and
//! briefly.

use kernel::{
    device::Bound,
    dma::DataDirection,
    drm::{
        self,
        gem::BaseObject, //
    },
    io::{
        io_project,
        Io, //
    },
    irq::{
        IrqReturn,
        ThreadedHandler,
        ThreadedIrqReturn, //
    },
    new_mutex, pci,
    prelude::*,
    sync::{
        aref::ARef,
        CondVarTimeoutResult,
        Mutex, //
    },
    time::{
        delay::fsleep,
        msecs_to_jiffies,
        Delta,
        Instant,
        Monotonic, //
    },
    uapi,
};

use crate::{
    accel::{
        copy_from_user,
        copy_to_user,
        QaicDevice,
        QaicFile,
        Registered, //
    },
    card::{
        Card,
        Queues, //
    },
    dma_bridge::{
        self,
        build_slices,
        dbc_block,
        entries_len,
        parse_entries,
        queue_layout,
        Dir,
        Ring,
        Slice,
        DBC_BAR_SIZE,
        LINK_DOWN,
        NUM_DBC,
        REQ_ELEM_LEN,
        REQ_HEAD,
        REQ_TAIL,
        RSP_ELEM_LEN,
        RSP_HEAD,
        RSP_TAIL, //
    },
    gem::Bo,
};

/// The DMA bridge BAR.
pub(crate) type DbcBar<'a> = pci::Bar<'a, DBC_BAR_SIZE>;

/// Default timeout of `DRM_IOCTL_QAIC_WAIT_BO` when the user gives none, ms (as upstream).
const WAIT_DEFAULT_MS: u32 = 5000;

/// Pause between two looks at the response ring in polling mode.
const POLL_INTERVAL: Delta = Delta::from_micros(100);

/// How often the interrupt thread looks at a drained response ring again before it returns.
const LINGER_LOOKS: u32 = 10;

/// How often, after [`LINGER_LOOKS`], the interrupt thread sleeps [`LINGER_NAP`] and looks
/// again, when the completions come densely ([`LINGER_DENSE`]). Only with high-resolution
/// timers: without them a sleep lasts until the next tick (4 ms at `CONFIG_HZ=250`), during
/// which completions wait.
const LINGER_NAPS: u32 = 10;

/// Whether sleeps as short as [`LINGER_NAP`] are possible.
const SHORT_SLEEPS: bool = cfg!(CONFIG_HIGH_RES_TIMERS);

/// One nap of the interrupt thread at a drained ring.
const LINGER_NAP: Delta = Delta::from_micros(100);

/// The interrupt thread naps only when it is woken within this time of its last return: for
/// sparser completions the naps would find nothing and only cost CPU time.
const LINGER_DENSE: Delta = Delta::from_millis(1);

/// A buffer object attached to a channel.
pub(crate) struct Attached {
    dbc: usize,
    /// The channel's epoch at attach: a later activation or release makes the attachment stale.
    epoch: u64,
    /// Direction of every transfer of the buffer object.
    dir: Dir,
    slices: KVec<Slice>,
    /// DMA pieces of all slices.
    nents: u32,
}

/// Timestamps and levels of a buffer object's last submission, for `PERF_STATS_BO`.
#[derive(Clone, Copy, Default)]
struct Perf {
    received: Option<Instant<Monotonic>>,
    submitted: Option<Instant<Monotonic>>,
    done: Option<Instant<Monotonic>>,
    queue_level: u32,
}

/// A buffer object's state on the data path.
#[derive(Default)]
pub(crate) struct BoState {
    attached: Option<Attached>,
    /// Submitted and not completed yet.
    queued: bool,
    /// Request id of the last submission.
    req_id: u16,
    /// Slices of the last submission the card answered.
    answered: usize,
    /// A slice of the last submission was answered with an error status.
    failed: bool,
    perf: Perf,
}

/// A channel's submission state.
struct Sub {
    next_req_id: u16,
    /// Queued buffer objects, oldest first, with their request ids.
    pending: KVec<(u16, ARef<Bo>)>,
    /// Buffer objects attached to the channel.
    attached: KVec<ARef<Bo>>,
    /// When the interrupt thread last returned from the channel's responses.
    irq_done: Option<Instant<Monotonic>>,
}

/// The data path of one DMA bridge channel.
#[pin_data]
pub(crate) struct Chan {
    id: usize,
    #[pin]
    sub: Mutex<Sub>,
}

impl Chan {
    /// Buffer objects queued on the channel and attached to it.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let sub = self.sub.lock();
        (sub.pending.len(), sub.attached.len())
    }
}

fn same(a: &Bo, b: &Bo) -> bool {
    core::ptr::eq(a, b)
}

impl Chan {
    pub(crate) fn new(id: usize) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            id,
            sub <- new_mutex!(Sub {
                next_req_id: 0,
                pending: KVec::new(),
                attached: KVec::new(),
                irq_done: None,
            }),
        })
    }

    /// The channel was released (or activated anew): queued buffer objects complete (their
    /// waiters find the channel gone), attached ones are detached.
    pub(crate) fn flush(&self) {
        let (pending, attached) = {
            let mut sub = self.sub.lock();
            (
                core::mem::take(&mut sub.pending),
                core::mem::take(&mut sub.attached),
            )
        };
        for (_, bo) in pending.iter() {
            bo.state.lock().queued = false;
            bo.done.notify_all();
        }
        for bo in attached.iter() {
            let mut st = bo.state.lock();
            if st.attached.as_ref().is_some_and(|a| a.dbc == self.id) {
                st.attached = None;
                st.queued = false;
            }
        }
    }

    /// The card is going away: queued buffer objects complete (their waiters find the card
    /// gone); attachments stay until the channel is released.
    pub(crate) fn cut_short(&self) {
        let pending = core::mem::take(&mut self.sub.lock().pending);
        for (_, bo) in pending.iter() {
            bo.state.lock().queued = false;
            bo.done.notify_all();
        }
    }

    /// Consumes the card's responses: every buffer object whose slices are all answered
    /// completes. Returns whether there was any.
    ///
    /// With `linger` (the interrupt thread), once the ring is drained, looks again up to
    /// [`LINGER_LOOKS`] times at once, then, if woken within [`LINGER_DENSE`] of its last
    /// return, [`LINGER_NAPS`] times after a nap of [`LINGER_NAP`], before returning (the ring
    /// found non-empty starts the count again): under a stream of completions the card's
    /// interrupts, raised only when its ring goes from empty to non-empty, then mostly find the
    /// thread still at work. This is the C driver's hysteresis, whose sleeps are only taken
    /// with high-resolution timers and for dense completions: without such timers a sleep of
    /// 100 µs costs a whole timer tick (4 ms under QEMU), during which completions wait;
    /// measured, it divides the 4 KiB request rate by seven (`Documentation/driver.rst`, "Data
    /// path speed").
    pub(crate) fn complete(&self, card: &Card, reg: &Registered<'_>, linger: bool) -> bool {
        let naps = if linger
            && SHORT_SLEEPS
            && self
                .sub
                .lock()
                .irq_done
                .is_some_and(|t| t.elapsed() < LINGER_DENSE)
        {
            LINGER_NAPS
        } else {
            0
        };
        let mut any = false;
        let mut looks = 0;
        loop {
            let got = self.drain(card, reg).unwrap_or(false);
            any |= got;
            if got {
                looks = 0;
            } else if !linger || !any || looks >= LINGER_LOOKS + naps {
                if linger && SHORT_SLEEPS {
                    self.sub.lock().irq_done = Some(Instant::now());
                }
                return any;
            } else if looks < LINGER_LOOKS {
                looks += 1;
                core::hint::spin_loop();
            } else {
                looks += 1;
                fsleep(LINGER_NAP);
            }
        }
    }

    /// Consumes the responses until the ring is empty; returns whether there was any.
    fn drain(&self, card: &Card, reg: &Registered<'_>) -> Result<bool> {
        let bar = reg.dbc;
        let base = dbc_block(self.id).ok_or(EINVAL)?;
        let mut sub = self.sub.lock();
        let Some((queues, n)) = card.dbcs.lock().queues(self.id) else {
            return Ok(false);
        };
        let ring = Ring::new(n)?;
        let (_, rsp_off) = queue_layout(n).ok_or(EINVAL)?;
        let mut head = ring.index(bar.try_read32(base + RSP_HEAD)?)?;
        let mut any = false;
        loop {
            // Read the tail again after every update of the head: the card raises an interrupt
            // only when the ring goes from empty to non-empty, so a response written while the
            // host was consuming the previous ones would otherwise wait for the next one.
            let tail = ring.index(bar.try_read32(base + RSP_TAIL)?)?;
            if head == tail {
                return Ok(any);
            }
            any = true;
            self.consume(reg.pdev, &mut sub, &queues, &ring, rsp_off, &mut head, tail)?;
            bar.try_write32(head, base + RSP_HEAD)?;
        }
    }

    /// Consumes the responses from `head` up to `tail`, advancing `head`.
    #[expect(clippy::too_many_arguments)]
    fn consume(
        &self,
        pdev: &pci::Device<Bound>,
        sub: &mut Sub,
        queues: &Queues,
        ring: &Ring,
        rsp_off: usize,
        head: &mut u32,
        tail: u32,
    ) -> Result {
        while *head != tail {
            let off = rsp_off + usize::try_from(*head)? * RSP_ELEM_LEN;
            let mut elem = [0u8; RSP_ELEM_LEN];
            io_project!(&**queues, [try: off..off + RSP_ELEM_LEN]).copy_to_slice(&mut elem);
            let (req_id, status) = dma_bridge::decode_response(elem);
            if let Some(i) = sub.pending.iter().position(|(r, _)| *r == req_id) {
                let finished = {
                    let bo = &sub.pending[i].1;
                    let mut st = bo.state.lock();
                    st.answered += 1;
                    if status != 0 {
                        st.failed = true;
                    }
                    let (slices, dir) = st
                        .attached
                        .as_ref()
                        .map_or((0, None), |a| (a.slices.len(), Some(a.dir)));
                    if st.answered >= slices {
                        // What the card wrote reaches the pages the CPU reads before the
                        // waiter can see the object done. Without it the data cannot be
                        // trusted: the wait reports an error.
                        let synced = dir.map_or(Ok(()), |d| {
                            bo.dma_sync_for_cpu(pdev.as_ref(), dma_direction(d))
                        });
                        if synced.is_err() {
                            st.failed = true;
                        }
                        st.queued = false;
                        st.perf.done = Some(Instant::now());
                        true
                    } else {
                        false
                    }
                };
                if finished {
                    let (_, bo) = sub.pending.remove(i)?;
                    bo.done.notify_all();
                }
            }
            *head = ring.advance(*head, 1);
        }
        Ok(())
    }

    /// Whether the card has responses the host did not consume yet.
    fn has_responses(&self, bar: &DbcBar<'_>) -> bool {
        let Some(base) = dbc_block(self.id) else {
            return false;
        };
        match (
            bar.try_read32(base + RSP_HEAD),
            bar.try_read32(base + RSP_TAIL),
        ) {
            (Ok(h), Ok(t)) => h != LINK_DOWN && t != LINK_DOWN && h != t,
            _ => false,
        }
    }
}

/// The interrupt of one channel (vector `id + 1`, or the shared vector 0).
pub(crate) struct DbcIrq<'bound> {
    pub(crate) card: ARef<QaicDevice>,
    pub(crate) reg: Registered<'bound>,
    pub(crate) id: usize,
}

impl ThreadedHandler for DbcIrq<'_> {
    fn handle(&self) -> ThreadedIrqReturn {
        // Only registered in polling mode when the channels share the vector of the MHI
        // controller: claimed, so that the line is not taken for a stuck one.
        if crate::datapath_polling() {
            return ThreadedIrqReturn::Handled;
        }
        let card: &Card = &self.card;
        match card.chans.get(self.id) {
            Some(chan) if chan.has_responses(self.reg.dbc) => ThreadedIrqReturn::WakeThread,
            _ => ThreadedIrqReturn::None,
        }
    }

    fn handle_threaded(&self) -> IrqReturn {
        let card: &Card = &self.card;
        match card.chans.get(self.id) {
            Some(chan) if chan.complete(card, &self.reg, true) => IrqReturn::Handled,
            _ => IrqReturn::None,
        }
    }
}

/// The DMA API's direction for transfers of `dir`.
fn dma_direction(dir: Dir) -> DataDirection {
    match dir {
        Dir::ToDevice => DataDirection::ToDevice,
        Dir::FromDevice => DataDirection::FromDevice,
    }
}

/// The `u32` at `off` of a user structure (CPU byte order, as the uapi defines it).
fn ne32(b: &[u8], off: usize) -> Result<u32> {
    let bytes = b.get(off..off + 4).ok_or(EINVAL)?;
    Ok(u32::from_ne_bytes(bytes.try_into().map_err(|_| EINVAL)?))
}

/// The `u64` at `off` of a user structure.
fn ne64(b: &[u8], off: usize) -> Result<u64> {
    let bytes = b.get(off..off + 8).ok_or(EINVAL)?;
    Ok(u64::from_ne_bytes(bytes.try_into().map_err(|_| EINVAL)?))
}

/// The channel `id` of the card, `EINVAL` for an id out of range.
fn chan(card: &Card, id: u32) -> Result<(usize, &Chan)> {
    let id = usize::try_from(id).map_err(|_| EINVAL)?;
    if id >= NUM_DBC {
        return Err(EINVAL);
    }
    let chan = card.chans.get(id).ok_or(EINVAL)?;
    Ok((id, chan))
}

/// `DRM_IOCTL_QAIC_ATTACH_SLICE_BO`.
pub(crate) fn attach_slice_bo(
    dev: &QaicDevice<drm::Registered>,
    reg: &Registered<'_>,
    args: &mut uapi::qaic_attach_slice,
    file: &drm::File<QaicFile>,
) -> Result<u32> {
    let hdr = args.hdr;
    let len = entries_len(hdr.count)?;
    let dir = Dir::from_uapi(hdr.dir)?;
    if args.data == 0 {
        return Err(EINVAL);
    }
    let card: &Card = dev;
    card.link.online().ok_or(ENODEV)?;
    let (id, chan) = chan(card, hdr.dbc_id)?;
    let raw = copy_from_user(args.data, len)?;
    let bo = Bo::lookup_handle(file, hdr.handle)?;
    let bo_size = u64::try_from(bo.size()).map_err(|_| EINVAL)?;
    let entries = parse_entries(&raw, hdr.count, bo_size)?;

    let user = file.inner().handle();
    let mut sub = chan.sub.lock();
    let mut st = bo.state.lock();
    if st.attached.is_some() {
        return Err(EINVAL);
    }
    let active = card.dbcs.lock().active(id, user).map_err(|_| EINVAL)?;

    let sgt = bo.sg_table(reg.pdev.as_ref())?;
    let mut segments = KVec::new();
    for e in sgt.iter() {
        segments.push(
            (
                crate::control::wide(e.dma_address()),
                crate::control::wide(e.dma_len()),
            ),
            GFP_KERNEL,
        )?;
    }
    let slices = build_slices(&entries, dir, &segments, active.n)?;
    let nents = slices.iter().map(|s| s.nents()).sum::<usize>();
    sub.attached.push(bo.clone(), GFP_KERNEL)?;
    st.attached = Some(Attached {
        dbc: id,
        epoch: active.epoch,
        dir,
        slices,
        nents: u32::try_from(nents).map_err(|_| ENOSPC)?,
    });
    st.queued = false;
    st.perf = Perf::default();
    Ok(0)
}

/// `DRM_IOCTL_QAIC_DETACH_SLICE_BO`.
pub(crate) fn detach_slice_bo(
    dev: &QaicDevice<drm::Registered>,
    _reg: &Registered<'_>,
    args: &mut uapi::qaic_detach_slice,
    file: &drm::File<QaicFile>,
) -> Result<u32> {
    if args.pad != 0 {
        return Err(EINVAL);
    }
    let card: &Card = dev;
    card.link.online().ok_or(ENODEV)?;
    let bo = Bo::lookup_handle(file, args.handle)?;
    let id = bo
        .state
        .lock()
        .attached
        .as_ref()
        .map(|a| a.dbc)
        .ok_or(EINVAL)?;
    let chan = card.chans.get(id).ok_or(EINVAL)?;

    let mut sub = chan.sub.lock();
    let mut st = bo.state.lock();
    // Re-checked under the channel's lock: it may have been detached meanwhile.
    if st.attached.as_ref().map(|a| a.dbc) != Some(id) {
        return Err(EINVAL);
    }
    if card.dbcs.lock().owner(id) != Some(file.inner().handle()) {
        return Err(EINVAL);
    }
    if st.queued {
        return Err(EBUSY);
    }
    st.attached = None;
    drop(st);
    sub.attached.retain(|b| !same(b, &bo));
    Ok(0)
}

/// `DRM_IOCTL_QAIC_EXECUTE_BO`.
pub(crate) fn execute_bo(
    dev: &QaicDevice<drm::Registered>,
    reg: &Registered<'_>,
    args: &mut uapi::qaic_execute,
    file: &drm::File<QaicFile>,
) -> Result<u32> {
    submit(dev, reg, args, file, false)
}

/// `DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO`.
pub(crate) fn partial_execute_bo(
    dev: &QaicDevice<drm::Registered>,
    reg: &Registered<'_>,
    args: &mut uapi::qaic_execute,
    file: &drm::File<QaicFile>,
) -> Result<u32> {
    submit(dev, reg, args, file, true)
}

fn submit(
    dev: &QaicDevice<drm::Registered>,
    reg: &Registered<'_>,
    args: &uapi::qaic_execute,
    file: &drm::File<QaicFile>,
    partial: bool,
) -> Result<u32> {
    let received = Instant::<Monotonic>::now();
    let count = args.hdr.count;
    if count == 0 {
        return Err(EINVAL);
    }
    let entry_len = if partial { 16 } else { 8 };
    let len = usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(entry_len))
        .ok_or(EOVERFLOW)?;
    let raw = copy_from_user(args.data, len)?;
    let card: &Card = dev;
    card.link.online().ok_or(ENODEV)?;
    let (id, chan) = chan(card, args.hdr.dbc_id)?;
    let user = file.inner().handle();
    let active = card.dbcs.lock().active(id, user)?;
    let base = dbc_block(id).ok_or(EINVAL)?;
    let bar = reg.dbc;

    let mut sub = chan.sub.lock();
    // Checked under the submission lock, which `Card::removed` takes after setting the flag:
    // nothing is queued on a channel after its queued objects were completed for a removal.
    if card.is_gone() {
        return Err(ENODEV);
    }
    let ring = Ring::new(active.n)?;
    let head = bar.try_read32(base + REQ_HEAD)?;
    let tail = bar.try_read32(base + REQ_TAIL)?;
    if head == LINK_DOWN || tail == LINK_DOWN {
        return Err(ENODEV);
    }
    let head = ring.index(head)?;
    let mut tail = ring.index(tail)?;
    let mut level = ring.used(head, tail);
    let mut req_id = sub.next_req_id;

    let mut queued: KVec<(u16, ARef<Bo>)> =
        KVec::with_capacity(raw.len() / entry_len, crate::dma_bridge::gfp_user_sized())?;
    let filled = (|| -> Result {
        for e in raw.chunks_exact(entry_len) {
            let bo = Bo::lookup_handle(file, ne32(e, 0)?)?;
            let resize = if partial { Some(ne64(e, 8)?) } else { None };
            let mut st = bo.state.lock();
            let a = st.attached.as_ref().ok_or(EINVAL)?;
            // Unlike upstream, a buffer object only goes to the channel it is attached to.
            if a.dbc != id || a.epoch != active.epoch || st.queued {
                return Err(EINVAL);
            }
            if let Some(r) = resize {
                if r > u64::try_from(bo.size()).map_err(|_| EINVAL)? {
                    return Err(EINVAL);
                }
            }
            // What the CPU wrote reaches the pages the card reads (bounce buffers,
            // non-coherent caches) before the tail register makes the requests visible.
            bo.dma_sync_for_device(reg.pdev.as_ref(), dma_direction(a.dir))?;
            let nents = a.nents;
            for slice in a.slices.iter() {
                let elems = match resize {
                    Some(r) => slice.partial(r),
                    None => slice.full(),
                };
                let new_tail = ring.reserve(head, tail, elems.len())?;
                for (k, slot) in ring.slots(tail, elems.len()).enumerate() {
                    let elem = elems.get(k, req_id).ok_or(EINVAL)?;
                    let off = usize::try_from(slot)? * REQ_ELEM_LEN;
                    io_project!(&*active.queues, [try: off..off + REQ_ELEM_LEN])
                        .copy_from_slice(elem.as_bytes());
                }
                tail = new_tail;
            }
            st.queued = true;
            st.req_id = req_id;
            st.answered = 0;
            st.failed = false;
            st.perf = Perf {
                received: Some(received),
                submitted: None,
                done: None,
                queue_level: level,
            };
            level = level.saturating_add(nents);
            drop(st);
            queued.push((req_id, bo), GFP_KERNEL)?;
            req_id = req_id.wrapping_add(1);
        }
        Ok(())
    })();
    if let Err(e) = filled {
        // Nothing reached the card: the tail register was not written.
        for (_, bo) in queued.iter() {
            bo.state.lock().queued = false;
        }
        return Err(e);
    }

    sub.pending.reserve(queued.len(), GFP_KERNEL)?;
    bar.try_write32(tail, base + REQ_TAIL)?;
    sub.next_req_id = req_id;
    let submitted = Instant::<Monotonic>::now();
    for (r, bo) in queued.drain_all() {
        bo.state.lock().perf.submitted = Some(submitted);
        // Cannot fail: reserved above.
        sub.pending.push((r, bo), GFP_KERNEL)?;
    }
    Ok(0)
}

/// `DRM_IOCTL_QAIC_WAIT_BO`.
pub(crate) fn wait_bo(
    dev: &QaicDevice<drm::Registered>,
    reg: &Registered<'_>,
    args: &mut uapi::qaic_wait,
    file: &drm::File<QaicFile>,
) -> Result<u32> {
    if args.pad != 0 {
        return Err(EINVAL);
    }
    let card: &Card = dev;
    card.link.online().ok_or(ENODEV)?;
    let (id, chan) = chan(card, args.dbc_id)?;
    {
        let dbcs = card.dbcs.lock();
        if dbcs.owner(id) != Some(file.inner().handle()) {
            return Err(EPERM);
        }
        if dbcs.in_ssr(id) {
            return Err(EPIPE);
        }
    }
    let bo = Bo::lookup_handle(file, args.handle)?;
    let timeout_ms = if args.timeout == 0 {
        WAIT_DEFAULT_MS
    } else {
        args.timeout
    };

    let mut signalled = false;
    if crate::datapath_polling() {
        let start = Instant::<Monotonic>::now();
        let limit = Delta::from_millis(timeout_ms.into());
        loop {
            chan.complete(card, reg, false);
            if !bo.state.lock().queued {
                break;
            }
            if start.elapsed() > limit {
                return Err(ETIMEDOUT);
            }
            if kernel::current!().signal_pending() {
                signalled = true;
                break;
            }
            fsleep(POLL_INTERVAL);
        }
    } else {
        let mut left = msecs_to_jiffies(timeout_ms);
        let mut st = bo.state.lock();
        while st.queued {
            match bo.done.wait_interruptible_timeout(&mut st, left) {
                CondVarTimeoutResult::Timeout => return Err(ETIMEDOUT),
                CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                CondVarTimeoutResult::Signal { .. } => {
                    signalled = true;
                    break;
                }
            }
        }
    }
    // The card went away meanwhile.
    if card.is_gone() {
        return Err(ENODEV);
    }
    // The channel was released meanwhile (deactivated, the user went away, the card reset), or
    // its workload crashed (SSR), which says more.
    {
        let dbcs = card.dbcs.lock();
        if dbcs.in_ssr(id) {
            return Err(EPIPE);
        }
        if dbcs.owner(id).is_none() {
            return Err(EPERM);
        }
    }
    if signalled {
        return Err(ERESTARTSYS);
    }
    // Unlike upstream, an error the card reported for a slice is not swallowed.
    if bo.state.lock().failed {
        return Err(EIO);
    }
    Ok(0)
}

/// Size of a `struct qaic_perf_stats_entry`.
const PERF_ENTRY_LEN: usize = 24;

/// `DRM_IOCTL_QAIC_PERF_STATS_BO`.
pub(crate) fn perf_stats_bo(
    dev: &QaicDevice<drm::Registered>,
    _reg: &Registered<'_>,
    args: &mut uapi::qaic_perf_stats,
    file: &drm::File<QaicFile>,
) -> Result<u32> {
    let card: &Card = dev;
    card.link.online().ok_or(ENODEV)?;
    let (id, _) = chan(card, args.hdr.dbc_id)?;
    let count = usize::from(args.hdr.count);
    if count == 0 {
        return Ok(0);
    }
    let len = count * PERF_ENTRY_LEN;
    let mut raw = copy_from_user(args.data, len)?;
    for e in raw.chunks_exact_mut(PERF_ENTRY_LEN) {
        let bo = Bo::lookup_handle(file, ne32(e, 0)?)?;
        let st = bo.state.lock();
        let a = st.attached.as_ref().ok_or(EINVAL)?;
        if a.dbc != id {
            return Err(EINVAL);
        }
        let us = |from: Option<Instant<Monotonic>>, to: Option<Instant<Monotonic>>| match (from, to)
        {
            (Some(f), Some(t)) => u32::try_from((t - f).as_nanos() / 1000).unwrap_or(u32::MAX),
            _ => 0,
        };
        let p = st.perf;
        let device = if st.queued {
            0
        } else {
            us(p.submitted, p.done)
        };
        let fields = [p.queue_level, a.nents, us(p.received, p.submitted), device];
        for (k, v) in fields.iter().enumerate() {
            let off = 4 + 4 * k;
            e.get_mut(off..off + 4)
                .ok_or(EINVAL)?
                .copy_from_slice(&v.to_ne_bytes());
        }
    }
    copy_to_user(args.data, &raw)?;
    Ok(0)
}
