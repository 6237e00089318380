// SPDX-License-Identifier: GPL-2.0-only

//! Time synchronisation: the card learns the host's wall-clock time.
//!
//! Two MHI clients:
//! - **boot** (QAIC_TIMESYNC, while the card runs its SBL): the card asks for the time with an
//!   8-byte header of type CMD_TO_HOST; the host answers with the same header turned into a
//!   SYNC_REQ followed by its UTC time, seconds and microseconds. One receive buffer is kept
//!   queued; a message of the wrong length ends the exchange for this boot.
//! - **periodic** (QAIC_TIMESYNC_PERIODIC, in mission mode): every `timesync_delay_ms` the host
//!   sends, unasked, the offset between its UTC time and the card's QTimer (a 19.2 MHz counter
//!   the host reads in the MHI register space), both in microseconds, so that the card can turn
//!   its timestamps into UTC. A period is skipped while the previous message is still queued.
//!
//! Messages: an 8-byte header (signature `0x55AA`, reserved, type at byte 5), then for time
//! messages two little-endian u64, seconds and microseconds.

use kernel::{
    device::{
        Bound,
        Core, //
    },
    impl_has_hr_timer,
    mhi::{
        self,
        Buffer,
        Channels,
        Direction, //
    },
    new_mutex, new_spinlock_irq,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex,
        SpinLockIrq, //
    },
    time::{
        hrtimer::{
            ArcHrTimerHandle,
            HrTimer,
            HrTimerCallback,
            HrTimerCallbackContext,
            HrTimerPointer,
            HrTimerRestart,
            RelativeSoftMode, //
        },
        Delta,
        Instant,
        Monotonic,
        RealTime, //
    },
};

/// Header size.
pub(crate) const HEADER_LEN: usize = 8;
/// Header and time.
pub(crate) const TIME_MSG_LEN: usize = 24;
/// Signature of the messages the host makes.
const SIGNATURE: u16 = 0x55aa;
/// Offset of the message type in the header.
const TYPE: usize = 5;
/// The card asks for the time.
const CMD_TO_HOST: u8 = 0;
/// The host sends its time.
const SYNC_REQ: u8 = 1;
/// The card acknowledges.
const ACK_TO_HOST: u8 = 2;

/// Register offset of the QTimer's low word in the MHI register space (high word next).
pub(crate) const QTIMER_LO: usize = 0xa28;
/// Register offset of the QTimer's high word.
pub(crate) const QTIMER_HI: usize = 0xa2c;

/// Converts QTimer ticks (19.2 MHz) to microseconds, rounding down: `ticks * 10 / 192`
/// without overflow (`ticks = 96 q + r` gives `5 q + 5 r / 96`).
pub(crate) const fn qtimer_to_us(ticks: u64) -> u64 {
    5 * (ticks / 96) + 5 * (ticks % 96) / 96
}

/// A time message: `header` with type SYNC_REQ, then `us` microseconds as seconds and
/// microseconds.
pub(crate) fn time_msg(mut header: [u8; HEADER_LEN], us: u64) -> [u8; TIME_MSG_LEN] {
    header[TYPE] = SYNC_REQ;
    let mut m = [0u8; TIME_MSG_LEN];
    m[..HEADER_LEN].copy_from_slice(&header);
    m[8..16].copy_from_slice(&(us / 1_000_000).to_le_bytes());
    m[16..24].copy_from_slice(&(us % 1_000_000).to_le_bytes());
    m
}

/// The header of the messages the host sends unasked.
fn host_header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..2].copy_from_slice(&SIGNATURE.to_le_bytes());
    h
}

/// The host's UTC time in microseconds.
fn host_utc_us() -> u64 {
    // Real time is never negative once the clock is set; a clock before 1970 reads 0.
    u64::try_from(Instant::<RealTime>::now().as_nanos()).unwrap_or(0) / 1000
}

/// Sends `msg` on the channel of `dev`.
fn send<T: mhi::Driver>(dev: &mhi::Device<Bound>, msg: &[u8]) -> Result {
    let mut buf = Buffer::new(T::BUFFER_SIZE, GFP_ATOMIC)?;
    buf.fill(msg)?;
    dev.queue::<T>(Direction::ToDevice, buf, false)
        .map_err(|(e, _)| e)
}

// ---- boot -----------------------------------------------------------------------------------

/// The MHI client of QAIC_TIMESYNC.
pub(crate) struct BootTimesyncDriver;

kernel::mhi_device_table!(
    BOOT_TABLE,
    <BootTimesyncDriver as mhi::Driver>::IdInfo,
    [(mhi::DeviceId::new(c"QAIC_RS_TIMESYNC"), ())]
);

impl mhi::Driver for BootTimesyncDriver {
    type IdInfo = ();
    type Data<'bound> = ();

    const ID_TABLE: mhi::IdTable<Self::IdInfo> = &BOOT_TABLE;
    // Receive buffers get the size of the answers: a longer message is refused by length.
    const BUFFER_SIZE: usize = TIME_MSG_LEN;

    fn probe<'bound>(
        _dev: &'bound mhi::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        Ok::<(), Error>(())
    }

    fn start(dev: &mhi::Device<Core<'_>>, _data: Pin<&()>, _ch: &Arc<Channels<Self>>) -> Result {
        dev.queue::<Self>(
            Direction::FromDevice,
            Buffer::new(TIME_MSG_LEN, GFP_KERNEL)?,
            false,
        )
        .map_err(|(e, _)| e)
    }

    fn ul_xfer(_dev: &mhi::Device<Bound>, _data: Pin<&()>, _buf: Buffer, _status: Result) {}

    fn dl_xfer(dev: &mhi::Device<Bound>, _data: Pin<&()>, buf: Buffer, status: Result) {
        let pdev = dev.controller_device();
        let msg = buf.as_slice();
        if status.is_err() {
            return;
        }
        let Ok(header) = <[u8; HEADER_LEN]>::try_from(msg) else {
            dev_warn!(
                pdev,
                "boot timesync: {}-byte message, stopping\n",
                msg.len()
            );
            return;
        };
        // Ready for the next message before answering this one.
        if let Err((e, _)) = dev.queue::<Self>(Direction::FromDevice, buf, false) {
            dev_warn!(pdev, "boot timesync: cannot queue a buffer: {:?}\n", e);
        }
        match header[TYPE] {
            CMD_TO_HOST => {
                if let Err(e) = send::<Self>(dev, &time_msg(header, host_utc_us())) {
                    dev_warn!(pdev, "boot timesync: cannot answer: {:?}\n", e);
                }
            }
            ACK_TO_HOST => {}
            t => dev_dbg!(pdev, "boot timesync: message type {}\n", t),
        }
    }
}

// ---- periodic -------------------------------------------------------------------------------

/// The timer of a bound QAIC_TIMESYNC_PERIODIC channel and what it needs.
#[pin_data]
pub(crate) struct Periodic {
    #[pin]
    timer: HrTimer<Self>,
    /// The channels, once started.
    #[pin]
    channels: SpinLockIrq<Option<Arc<Channels<PeriodicTimesyncDriver>>>>,
    /// A message is queued and not sent yet.
    in_flight: Atomic<bool>,
    period: Delta,
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for Periodic {
        mode: RelativeSoftMode<Monotonic>,
        field: self.timer
    }
}

impl HrTimerCallback for Periodic {
    type Pointer<'a> = Arc<Self>;

    fn run(
        this: kernel::sync::ArcBorrow<'_, Self>,
        mut ctx: HrTimerCallbackContext<'_, Self>,
    ) -> HrTimerRestart {
        let Some(channels) = this.channels.lock().clone() else {
            return HrTimerRestart::NoRestart;
        };
        if this.in_flight.xchg(true, Relaxed) {
            // The last message is still queued: skip this period.
            ctx.forward_now(this.period);
            return HrTimerRestart::Restart;
        }
        match this.sync(&channels) {
            Ok(()) => {}
            // The ring is full for now: try again next period.
            Err(e) if e == EAGAIN => this.in_flight.store(false, Relaxed),
            // The channel is going away, or broken: stop.
            Err(_) => return HrTimerRestart::NoRestart,
        }
        ctx.forward_now(this.period);
        HrTimerRestart::Restart
    }
}

impl Periodic {
    /// Sends the offset between the host's UTC time and the card's QTimer.
    fn sync(&self, channels: &Channels<PeriodicTimesyncDriver>) -> Result {
        let lo = channels.read_controller_reg(QTIMER_LO)?;
        let hi = channels.read_controller_reg(QTIMER_HI)?;
        let qtimer = (u64::from(hi) << 32) | u64::from(lo);
        let offset = host_utc_us().wrapping_sub(qtimer_to_us(qtimer));
        let mut buf = Buffer::new(TIME_MSG_LEN, GFP_ATOMIC)?;
        buf.fill(&time_msg(host_header(), offset))?;
        channels
            .queue(Direction::ToDevice, buf, false)
            .map_err(|(e, _)| e)
    }
}

/// The MHI client of QAIC_TIMESYNC_PERIODIC.
pub(crate) struct PeriodicTimesyncDriver;

kernel::mhi_device_table!(
    PERIODIC_TABLE,
    <PeriodicTimesyncDriver as mhi::Driver>::IdInfo,
    [(mhi::DeviceId::new(c"QAIC_RS_TIMESYNC_PERIODIC"), ())]
);

/// A bound QAIC_TIMESYNC_PERIODIC channel.
#[pin_data]
pub(crate) struct PeriodicData {
    periodic: Arc<Periodic>,
    /// The running timer; dropping it stops the timer.
    #[pin]
    handle: Mutex<Option<ArcHrTimerHandle<Periodic>>>,
}

impl mhi::Driver for PeriodicTimesyncDriver {
    type IdInfo = ();
    type Data<'bound> = PeriodicData;

    const ID_TABLE: mhi::IdTable<Self::IdInfo> = &PERIODIC_TABLE;
    const BUFFER_SIZE: usize = TIME_MSG_LEN;

    fn probe<'bound>(
        _dev: &'bound mhi::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        let period = Delta::from_millis(i64::from(crate::timesync_delay_ms().max(1)));
        let periodic = Arc::pin_init(
            pin_init!(Periodic {
                timer <- HrTimer::new(),
                channels <- new_spinlock_irq!(None),
                in_flight: Atomic::new(false),
                period,
            }),
            GFP_KERNEL,
        );
        try_pin_init!(PeriodicData {
            periodic: periodic?,
            handle <- new_mutex!(None),
        })
    }

    fn start(
        _dev: &mhi::Device<Core<'_>>,
        data: Pin<&PeriodicData>,
        channels: &Arc<Channels<Self>>,
    ) -> Result {
        *data.periodic.channels.lock() = Some(channels.clone());
        // The first message goes one period after the channel comes up.
        let handle = data.periodic.clone().start(data.periodic.period);
        *data.handle.lock() = Some(handle);
        Ok(())
    }

    fn unbind<'bound>(_dev: &'bound mhi::Device<Core<'_>>, data: Pin<&PeriodicData>) {
        // Stops the timer, waiting for a callback in progress.
        let handle = data.handle.lock().take();
        drop(handle);
        let channels = data.periodic.channels.lock().take();
        drop(channels);
    }

    fn ul_xfer(_dev: &mhi::Device<Bound>, data: Pin<&PeriodicData>, _buf: Buffer, _status: Result) {
        data.periodic.in_flight.store(false, Relaxed);
    }

    fn dl_xfer(dev: &mhi::Device<Bound>, _data: Pin<&PeriodicData>, _buf: Buffer, status: Result) {
        if status.is_ok() {
            dev_err!(
                dev.controller_device(),
                "periodic timesync: unexpected message from the card\n"
            );
        }
    }
}

#[kunit_tests(qaic_rs_timesync)]
mod tests {
    use super::*;

    #[test]
    fn qtimer_conversion() {
        assert_eq!(qtimer_to_us(0), 0);
        assert_eq!(qtimer_to_us(19), 0);
        assert_eq!(qtimer_to_us(20), 1);
        // One second of 19.2 MHz ticks.
        assert_eq!(qtimer_to_us(19_200_000), 1_000_000);
        assert_eq!(qtimer_to_us(19_200_000 + 191), 1_000_009);
        // No overflow at the top: floor((2^64 - 1) * 10 / 192).
        assert_eq!(qtimer_to_us(u64::MAX), 960_767_920_505_705_813);
    }

    #[test]
    fn messages() {
        let mut h = [0u8; HEADER_LEN];
        h[0] = 0x12;
        h[1] = 0x34;
        h[TYPE] = CMD_TO_HOST;
        let m = time_msg(h, 1_700_000_000_123_456);
        assert_eq!(&m[..5], &[0x12, 0x34, 0, 0, 0]);
        assert_eq!(m[TYPE], SYNC_REQ);
        assert_eq!(&m[8..16], &1_700_000_000u64.to_le_bytes());
        assert_eq!(&m[16..24], &123_456u64.to_le_bytes());
        let m = time_msg(host_header(), 5);
        assert_eq!(&m[..8], &[0xaa, 0x55, 0, 0, 0, SYNC_REQ, 0, 0]);
        assert_eq!(&m[8..16], &0u64.to_le_bytes());
        assert_eq!(&m[16..24], &5u64.to_le_bytes());
    }
}
