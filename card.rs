// SPDX-License-Identifier: GPL-2.0-only

//! What the parts of the driver share about one card: the control link, which DMA bridge channel
//! belongs to which user, and the users (open files) themselves.
//!
//! A [`Card`] is the data of the card's DRM device, so it lives as long as anybody holds the
//! device: an open file, the control channel client, or the bound PCI device. The control client
//! binds to a channel device of the card's MHI controller; it finds the card through a list of
//! the bound cards kept here, keyed by the PCI device.

use core::fmt::{
    self,
    Write as _, //
};
use kernel::{
    debugfs,
    device::{
        self,
        attribute::{
            Attribute,
            Show, //
        },
    },
    dma::Coherent,
    drm, new_mutex, new_spinlock_irq,
    prelude::*,
    str::{
        CString,
        Formatter, //
    },
    sync::{
        aref::ARef,
        atomic::{
            ordering::{
                Acquire,
                Release, //
            },
            Atomic,
        },
        Arc,
        Mutex,
        SpinLockIrq, //
    },
};

use crate::{
    accel::{
        QaicDevice,
        QaicDrm, //
    },
    control::{
        ChannelState,
        Link, //
    },
    data::Chan,
    dma_bridge::NUM_DBC,
};

/// The queue memory of an activated channel: shared by the channel and the submissions and
/// completions using it, freed with the last of them.
pub(crate) type Queues = Arc<Coherent<[u8]>>;

/// What the data path needs of an activated channel.
pub(crate) struct Active {
    pub(crate) queues: Queues,
    /// Elements of each queue.
    pub(crate) n: u32,
    /// Changes every time the channel is activated or released.
    pub(crate) epoch: u64,
}

/// Where a DMA bridge channel is, as far as the host knows; the values are those of the sysfs
/// files `dbc<N>_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum DbcState {
    /// Not activated.
    Idle = 0,
    /// Activated for a user.
    Assigned = 1,
    /// Its workload crashed: the card is about to shut the channel's sub-system down (SSR).
    BeforeShutdown = 2,
    /// The sub-system is down.
    AfterShutdown = 3,
    /// The sub-system is about to restart.
    BeforePowerUp = 4,
    /// The sub-system restarted; the channel is idle again once the host acknowledges it.
    AfterPowerUp = 5,
}

/// A DMA bridge channel on the host side.
pub(crate) struct Dbc {
    /// The user that activated it, until the user gives it up (DEACTIVATE) or goes away.
    owner: Option<u32>,
    /// Activated on the card: its queues are in use until the card says it released them.
    queues: Option<Queues>,
    /// Number of elements of each queue.
    queue_size: u32,
    state: DbcState,
    /// Bumped at every activation and release.
    epoch: u64,
}

impl Dbc {
    const IDLE: Self = Self {
        owner: None,
        queues: None,
        queue_size: 0,
        state: DbcState::Idle,
        epoch: 0,
    };
}

/// Room reserved in the graveyard: every channel's queues, twice (those of a channel the card
/// hands out again while the host still remembered older ones, and the new ones).
const GRAVEYARD_ROOM: usize = 2 * NUM_DBC;

/// The DMA bridge channels of a card.
///
/// # Invariants
///
/// `graveyard` has a capacity of at least [`GRAVEYARD_ROOM`]; it holds queue memory released
/// under the lock, which may be held in atomic context, to be freed in process context.
pub(crate) struct Dbcs {
    chans: [Dbc; NUM_DBC],
    graveyard: KVec<Queues>,
}

impl Dbcs {
    /// Moves `q` to the graveyard. Fails, giving `q` back, only if the graveyard is full, which
    /// [`Card::reap`] before every activation prevents.
    fn bury(&mut self, q: Queues) -> core::result::Result<(), Queues> {
        self.graveyard.push_within_capacity(q).map_err(|e| e.0)
    }

    /// Gives up channel `id` on behalf of `user`, before the card is asked to release it: the
    /// user cannot use it any more.
    pub(crate) fn detach(&mut self, id: usize, user: u32) -> Result {
        let dbc = self.chans.get_mut(id).ok_or(EINVAL)?;
        if dbc.owner != Some(user) {
            return Err(EPERM);
        }
        dbc.owner = None;
        Ok(())
    }

    /// Gives channel `id` back to `user` after the card refused to release it.
    pub(crate) fn give_back(&mut self, id: usize, user: u32) {
        if let Some(dbc) = self.chans.get_mut(id) {
            if dbc.queues.is_some() && dbc.owner.is_none() {
                dbc.owner = Some(user);
            }
        }
    }

    /// The card activated channel `id` for `user`, with `queues` of `queue_size` elements. A
    /// channel the card hands out is free on the card, whatever the host still remembered about
    /// it: older queues go.
    pub(crate) fn install(
        &mut self,
        id: usize,
        user: u32,
        queues: Queues,
        queue_size: u32,
    ) -> core::result::Result<(), (Error, Queues)> {
        let Some(dbc) = self.chans.get_mut(id) else {
            return Err((ENODEV, queues));
        };
        if let Some(old) = dbc.queues.take() {
            if let Err(old) = self.bury(old) {
                self.chans[id].queues = Some(old);
                return Err((EBUSY, queues));
            }
        }
        let dbc = &mut self.chans[id];
        dbc.queues = Some(queues);
        dbc.owner = Some(user);
        dbc.queue_size = queue_size;
        dbc.state = DbcState::Assigned;
        dbc.epoch = dbc.epoch.wrapping_add(1);
        Ok(())
    }

    /// The card released channel `id` (or is gone): nobody owns it and its queues go.
    pub(crate) fn release(&mut self, id: usize) -> Result {
        let dbc = self.chans.get_mut(id).ok_or(ENODEV)?;
        dbc.owner = None;
        dbc.queue_size = 0;
        dbc.state = DbcState::Idle;
        dbc.epoch = dbc.epoch.wrapping_add(1);
        if let Some(q) = dbc.queues.take() {
            if let Err(q) = self.bury(q) {
                self.chans[id].queues = Some(q);
                return Err(ENOMEM);
            }
        }
        Ok(())
    }
}

impl Dbcs {
    /// Channel `id` as `user` may use it: `EPERM` unless it is activated and the user's.
    pub(crate) fn active(&self, id: usize, user: u32) -> Result<Active> {
        let dbc = self.chans.get(id).ok_or(EINVAL)?;
        match (&dbc.queues, dbc.owner) {
            (Some(q), Some(o)) if o == user => Ok(Active {
                queues: q.clone(),
                n: dbc.queue_size,
                epoch: dbc.epoch,
            }),
            _ => Err(EPERM),
        }
    }

    /// The queues of channel `id` and their size, if it is activated (whoever owns it).
    pub(crate) fn queues(&self, id: usize) -> Option<(Queues, u32)> {
        let dbc = self.chans.get(id)?;
        Some((dbc.queues.as_ref()?.clone(), dbc.queue_size))
    }

    /// The owner of channel `id`, if any.
    pub(crate) fn owner(&self, id: usize) -> Option<u32> {
        self.chans.get(id).and_then(|d| d.owner)
    }

    /// The state of every channel.
    pub(crate) fn states(&self) -> [DbcState; NUM_DBC] {
        core::array::from_fn(|id| self.chans[id].state)
    }

    /// Whether channel `id` is in a sub-system restart.
    pub(crate) fn in_ssr(&self, id: usize) -> bool {
        self.chans
            .get(id)
            .is_some_and(|d| d.state as u8 >= DbcState::BeforeShutdown as u8)
    }

    /// Sets the state of channel `id` (SSR).
    pub(crate) fn set_state(&mut self, id: usize, state: DbcState) {
        if let Some(dbc) = self.chans.get_mut(id) {
            dbc.state = state;
        }
    }
}

/// Most of a boot log the host keeps; the rest is dropped.
pub(crate) const BOOTLOG_MAX: usize = 64 * 1024;

/// The channel states user space was last told about, and where to tell it.
struct Announced {
    /// The device of the accel node, while the card is registered.
    accel: Option<ARef<device::Device>>,
    told: [DbcState; NUM_DBC],
}

/// A card, as shared by the driver's parts.
#[pin_data]
pub(crate) struct Card {
    /// The control protocol link to the card's firmware.
    #[pin]
    pub(crate) link: Link,
    /// The DMA bridge channels. A spinlock: answers from the card update it in softirq context.
    #[pin]
    pub(crate) dbcs: SpinLockIrq<Dbcs>,
    /// The data path of each channel.
    pub(crate) chans: KVec<Pin<KBox<Chan>>>,
    /// The RAS error counters.
    pub(crate) ras: crate::ras::Counters,
    /// What the card logged while it booted its SBL, at most [`BOOTLOG_MAX`] bytes. Appended to
    /// in softirq context.
    #[pin]
    pub(crate) bootlog: SpinLockIrq<KVec<u8>>,
    #[pin]
    announced: Mutex<Announced>,
    /// The PCI device is being unbound (removed, or the driver unloaded): calls woken by the
    /// removal fail with `ENODEV`.
    gone: Atomic<bool>,
}

impl Card {
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        pin_init::pin_init_scope(|| {
            // INVARIANT: the graveyard gets its room here.
            let graveyard = KVec::with_capacity(GRAVEYARD_ROOM, GFP_KERNEL)?;
            let mut chans = KVec::with_capacity(NUM_DBC, GFP_KERNEL)?;
            for id in 0..NUM_DBC {
                chans.push(KBox::pin_init(Chan::new(id), GFP_KERNEL)?, GFP_KERNEL)?;
            }
            Ok(try_pin_init!(Self {
                link <- Link::new(),
                dbcs <- new_spinlock_irq!(Dbcs {
                    chans: [const { Dbc::IDLE }; NUM_DBC],
                    graveyard,
                }),
                chans,
                ras: crate::ras::Counters::new(),
                bootlog <- new_spinlock_irq!(KVec::new()),
                announced <- new_mutex!(Announced {
                    accel: None,
                    told: [DbcState::Idle; NUM_DBC],
                }),
                gone: Atomic::new(false),
            }))
        })
    }

    /// The card is registered, its accel node's device is `accel`: adds the `dbc<N>_state`
    /// files there; channel state changes are announced with uevents from now on.
    pub(crate) fn registered(&self, accel: &device::Device) -> Result {
        create_state_files(accel)?;
        self.announced.lock().accel = Some(accel.into());
        Ok(())
    }

    /// The PCI device is going away (hot unplug, unbind, module unload), with user space
    /// possibly still in `WAIT_BO`: every queued buffer object completes now and its waiter
    /// fails with `ENODEV`, instead of holding up the teardown (which waits for the ioctls in
    /// progress) until its timeout, since a removed card answers nothing. The channels stay
    /// assigned and their queues allocated: a card still present may write its response rings
    /// until it is powered down, after which the control channel's unbind releases them.
    /// Submissions look at the flag under the channel's submission lock, which is taken here
    /// after the flag is set: nothing is queued after this.
    pub(crate) fn removed(&self) {
        self.gone.store(true, Release);
        for chan in self.chans.iter() {
            chan.cut_short();
        }
    }

    /// Whether the PCI device is going away; see [`Card::removed`].
    pub(crate) fn is_gone(&self) -> bool {
        self.gone.load(Acquire)
    }

    /// The card is being unregistered: no more uevents.
    pub(crate) fn unregistered(&self) {
        let accel = self.announced.lock().accel.take();
        drop(accel);
    }

    /// Tells user space about the channels whose state changed since it was last told: one
    /// `KOBJ_CHANGE` uevent of the accel node per channel, with `DBC_ID` and `DBC_STATE`.
    /// Process context only.
    pub(crate) fn announce(&self) {
        let mut announced = self.announced.lock();
        let states = self.dbcs.lock().states();
        let Some(accel) = announced.accel.clone() else {
            return;
        };
        for (id, state) in states.into_iter().enumerate() {
            if announced.told[id] == state {
                continue;
            }
            announced.told[id] = state;
            let (Ok(id_var), Ok(state_var)) = (
                CString::try_from_fmt(fmt!("DBC_ID={id}")),
                CString::try_from_fmt(fmt!("DBC_STATE={}", state as u8)),
            ) else {
                continue;
            };
            // A lost uevent is not worth failing for: the sysfs file has the state.
            let _ = accel.uevent_change(&[&id_var, &state_var]);
        }
    }

    /// Frees the queue memory of released channels. Process context only.
    pub(crate) fn reap(&self) {
        let mut dead = KVec::new();
        if dead.reserve(GRAVEYARD_ROOM, GFP_KERNEL).is_err() {
            return;
        }
        // Swap the (empty, roomy) vector in: the graveyard keeps its room.
        core::mem::swap(&mut self.dbcs.lock().graveyard, &mut dead);
        drop(dead);
    }

    /// The card lost channel `id`'s workload (SSR): releases the channel on the host, whoever
    /// had it (its requests complete, its buffer objects are detached), and puts it in `state`.
    /// Process context only.
    pub(crate) fn crashed(&self, id: usize, state: DbcState) {
        self.reap();
        {
            let mut dbcs = self.dbcs.lock();
            // Cannot fail after a reap (see `release_channels`).
            let _ = dbcs.release(id);
            dbcs.set_state(id, state);
        }
        if let Some(chan) = self.chans.get(id) {
            chan.flush();
        }
        self.reap();
        self.announce();
    }

    /// Puts channel `id` in `state` and tells user space.
    pub(crate) fn set_state(&self, id: usize, state: DbcState) {
        self.dbcs.lock().set_state(id, state);
        self.announce();
    }

    /// Releases, on the host, every channel of `user`, or every channel with `None`, and frees
    /// their queue memory. Process context only.
    pub(crate) fn release_channels(&self, user: Option<u32>) {
        self.reap();
        let mut released = [false; NUM_DBC];
        {
            let mut dbcs = self.dbcs.lock();
            for (id, r) in released.iter_mut().enumerate() {
                let (owner, active) = (dbcs.chans[id].owner, dbcs.chans[id].queues.is_some());
                if user.is_none() || (active && owner == user) {
                    // Cannot fail: at most `NUM_DBC` queues are buried and the graveyard
                    // has room for twice that after a reap.
                    let _ = dbcs.release(id);
                    *r = true;
                }
            }
        }
        for (chan, r) in self.chans.iter().zip(released) {
            if r {
                chan.flush();
            }
        }
        self.reap();
        self.announce();
    }
}

// ---- sysfs: dbc<N>_state of the accel node --------------------------------------------------

/// The file `dbc<ID>_state`: the channel's [`DbcState`] as a number.
struct StateFile<const ID: usize>;

impl<const ID: usize> Show for StateFile<ID> {
    fn show(dev: &device::Device, f: &mut Formatter<'_>) -> Result {
        // The accel node's parent is the card's PCI device.
        let card = dev.parent().and_then(find).ok_or(ENODEV)?;
        let card: &Card = &card;
        let state = card.dbcs.lock().states()[ID];
        writeln!(f, "{}", state as u8).map_err(|_| EOVERFLOW)
    }
}

macro_rules! state_files {
    ($($id:literal),*) => {
        /// Adds the `dbc<N>_state` files to the accel node's device `dev`.
        fn create_state_files(dev: &device::Device) -> Result {
            $({
                static FILE: Attribute<StateFile<$id>> =
                    Attribute::new(kernel::c_str!(concat!("dbc", $id, "_state")));
                dev.create_file(&FILE)?;
            })*
            Ok(())
        }
    };
}

state_files!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

/// The bound cards, by PCI device, for the control client to find its card; and the module's
/// debugfs directory, under which each card has its own.
struct Cards {
    list: KVec<(usize, ARef<QaicDevice>)>,
    debugfs: Option<debugfs::Dir>,
}

kernel::sync::global_lock! {
    // SAFETY: initialised in the module's init, before the drivers are registered.
    unsafe(uninit) static CARDS: Mutex<Cards> = Cards {
        list: KVec::new(),
        debugfs: None,
    };
}

/// Initialises the global state. Called once, at module init, before anything else here.
///
/// # Safety
///
/// Must be called exactly once, before any other function of this module.
pub(crate) unsafe fn init_globals() {
    // SAFETY: by the safety requirements this is the only call, before any use.
    unsafe { CARDS.init() };
    // SAFETY: as above.
    unsafe { USERS.init() };
}

/// Frees the memory of the global lists when dropped, at module exit: statics are never
/// dropped, and a list keeps its allocation when it empties.
pub(crate) struct GlobalsGuard(());

impl GlobalsGuard {
    pub(crate) fn new() -> Self {
        Self(())
    }
}

impl Drop for GlobalsGuard {
    fn drop(&mut self) {
        let cards = core::mem::take(&mut CARDS.lock().list);
        drop(cards);
        let users = core::mem::take(&mut USERS.lock().used);
        drop(users);
    }
}

/// The module's debugfs directory, `qaic_rs`: exists while the returned guard does.
pub(crate) struct DebugfsRoot(());

impl DebugfsRoot {
    pub(crate) fn new() -> Self {
        CARDS.lock().debugfs = Some(debugfs::Dir::new(c"qaic_rs"));
        Self(())
    }
}

impl Drop for DebugfsRoot {
    fn drop(&mut self) {
        let root = CARDS.lock().debugfs.take();
        drop(root);
    }
}

/// A card's debugfs directory, `qaic_rs/<PCI device>/`: removed when dropped.
pub(crate) type CardDebugfs = debugfs::Scope<ARef<QaicDevice>>;

/// Creates the debugfs directory of the card `ddev` with PCI device `pdev`:
/// - `state`: where the control link is (`down`, `booting`, `online`, `online, with CRCs`,
///   `refused`);
/// - `channels`: one line per DMA bridge channel that is activated or not idle: id, state (as
///   `dbc<N>_state`), owner (user handle, or `-` while the card releases it), queue size (the
///   FIFO's elements), buffer objects queued on it and attached to it.
pub(crate) fn debugfs(pdev: &device::Device, ddev: &QaicDevice) -> Result<Pin<KBox<CardDebugfs>>> {
    let root = CARDS.lock().debugfs.clone();
    let root = root.unwrap_or_else(|| debugfs::Dir::new(c"qaic_rs"));
    let name = CString::try_from_fmt(fmt!("{}", pdev.name()))?;
    let card: ARef<QaicDevice> = ddev.into();
    KBox::pin_init(
        root.scope(card, &name, |card, dir| {
            dir.read_callback_file(c"state", card, &write_state);
            dir.read_callback_file(c"channels", card, &write_channels);
            dir.read_callback_file(c"bootlog", card, &write_bootlog);
        }),
        GFP_KERNEL,
    )
}

fn write_state(card: &ARef<QaicDevice>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let card: &Card = card;
    let state = match card.link.state() {
        ChannelState::Down => "down",
        ChannelState::Boot(_) => "booting",
        ChannelState::Online { crc: false } => "online",
        ChannelState::Online { crc: true } => "online, with CRCs",
        ChannelState::Refused => "refused",
    };
    writeln!(f, "{state}")
}

fn write_channels(card: &ARef<QaicDevice>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let card: &Card = card;
    for (id, chan) in card.chans.iter().enumerate() {
        let (queues, owner, size, state) = {
            let dbcs = card.dbcs.lock();
            let dbc = &dbcs.chans[id];
            (dbc.queues.is_some(), dbc.owner, dbc.queue_size, dbc.state)
        };
        if !queues && state == DbcState::Idle {
            continue;
        }
        let (queued, attached) = chan.counts();
        write!(f, "{id} state {} owner ", state as u8)?;
        match owner {
            Some(o) => write!(f, "{o}")?,
            None => write!(f, "-")?,
        }
        writeln!(f, " queue {size} queued {queued} attached {attached}")?;
    }
    Ok(())
}

fn write_bootlog(card: &ARef<QaicDevice>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let card: &Card = card;
    let log = card.bootlog.lock();
    // The card sends text; anything else shows as U+FFFD.
    for chunk in log.utf8_chunks() {
        f.write_str(chunk.valid())?;
        if !chunk.invalid().is_empty() {
            f.write_char(char::REPLACEMENT_CHARACTER)?;
        }
    }
    Ok(())
}

fn key(dev: &device::Device) -> usize {
    core::ptr::from_ref(dev) as usize
}

/// Makes the card with DRM device `ddev` findable from the PCI device `pdev`.
pub(crate) fn publish(pdev: &device::Device, ddev: &QaicDevice) -> Result {
    CARDS
        .lock()
        .list
        .push((key(pdev), ddev.into()), GFP_KERNEL)?;
    Ok(())
}

/// Forgets the card of `pdev`.
pub(crate) fn unpublish(pdev: &device::Device) {
    let k = key(pdev);
    let gone = {
        let mut cards = CARDS.lock();
        let list = &mut cards.list;
        list.iter()
            .position(|(p, _)| *p == k)
            .and_then(|i| list.remove(i).ok())
    };
    drop(gone);
}

/// Finds the card whose PCI device is `pdev`.
pub(crate) fn find(pdev: &device::Device) -> Option<ARef<drm::Device<QaicDrm>>> {
    let k = key(pdev);
    CARDS
        .lock()
        .list
        .iter()
        .find(|(p, _)| *p == k)
        .map(|(_, d)| d.clone())
}

/// The user handles in use, across all cards: the firmware knows a user by this number.
struct Users {
    used: KVec<u32>,
}

kernel::sync::global_lock! {
    // SAFETY: initialised in the module's init, before the drivers are registered.
    unsafe(uninit) static USERS: Mutex<Users> = Users { used: KVec::new() };
}

/// A user handle, given back when dropped.
pub(crate) struct UserHandle(u32);

impl UserHandle {
    /// Takes the smallest free handle.
    pub(crate) fn new() -> Result<Self> {
        let mut users = USERS.lock();
        let used = &mut users.used;
        let mut h = 0u32;
        while used.contains(&h) {
            h = h.checked_add(1).ok_or(ENOSPC)?;
        }
        used.push(h, GFP_KERNEL)?;
        Ok(Self(h))
    }

    /// The number.
    pub(crate) fn get(&self) -> u32 {
        self.0
    }
}

impl Drop for UserHandle {
    fn drop(&mut self) {
        let mut users = USERS.lock();
        let used = &mut users.used;
        used.retain(|h| *h != self.0);
    }
}
