// SPDX-License-Identifier: GPL-2.0-only

//! SSR (sub-system restart): the card tells the host that the workload of a DMA bridge channel
//! crashed, and restarts the sub-system that ran it.
//!
//! The card sends, on QAIC_SSR, a sequence of events for the channel: BEFORE_SHUTDOWN,
//! AFTER_SHUTDOWN, BEFORE_POWER_UP, AFTER_POWER_UP. The host answers each with an event response
//! echoing it. At BEFORE_SHUTDOWN the host releases the channel: its requests complete, its
//! buffer objects are detached, its queues are freed; WAIT_BO on it fails with `EPIPE` until the
//! sub-system is back. The sysfs file `dbc<N>_state` follows the sequence (2 to 5) and reads 0
//! again after AFTER_POWER_UP, each change announced with a uevent.
//!
//! Between BEFORE_POWER_UP and AFTER_POWER_UP the card may offer a crash dump of the
//! sub-system (DEBUG_TRANSFER_INFO). This driver declines it (a NACK): the card goes on without.
//!
//! Messages are little-endian: a 12-byte header (command, total length, channel id), then the
//! command's body. Those from the card arrive in softirq context; they are handled in order, in
//! process context, on a work queue of the bound channel.

use kernel::{
    device::{
        Bound,
        Core, //
    },
    mhi::{
        self,
        Buffer,
        Channels,
        Direction, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        Arc, //
    },
    workqueue::OwnedQueue,
};

use crate::{
    accel::QaicDevice,
    card::{
        Card,
        DbcState, //
    },
    dma_bridge::NUM_DBC,
};

/// Largest message in the event buffer.
pub(crate) const MSG_MAX: usize = 32;

/// Commands.
pub(crate) mod cmd {
    pub(crate) const DEBUG_TRANSFER_INFO: u32 = 0x001;
    pub(crate) const DEBUG_TRANSFER_INFO_RSP: u32 = 0x002;
    pub(crate) const SSR_EVENT: u32 = 0x100;
    pub(crate) const SSR_EVENT_RSP: u32 = 0x200;
}

/// Events of SSR_EVENT.
pub(crate) mod event {
    pub(crate) const NACK: u32 = 0x1;
    pub(crate) const BEFORE_SHUTDOWN: u32 = 0x2;
    pub(crate) const AFTER_SHUTDOWN: u32 = 0x4;
    pub(crate) const BEFORE_POWER_UP: u32 = 0x8;
    pub(crate) const AFTER_POWER_UP: u32 = 0x10;
}

/// A message from the card the host acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Message {
    /// SSR_EVENT for channel `dbc`.
    Event { dbc: u32, event: u32 },
    /// DEBUG_TRANSFER_INFO: the card offers a crash dump of channel `dbc`'s sub-system.
    DumpOffer { dbc: u32 },
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    let bytes = b.get(off..off + 4)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Decodes a message from the card: `None` for what the host ignores (a length past
/// [`MSG_MAX`] or past the transfer, an unknown channel, a command it does not act on).
pub(crate) fn decode(msg: &[u8]) -> Option<Message> {
    let cmd = le32(msg, 0)?;
    let len = usize::try_from(le32(msg, 4)?).ok()?;
    let dbc = le32(msg, 8)?;
    if len > MSG_MAX || len > msg.len() || dbc as usize >= NUM_DBC {
        return None;
    }
    match cmd {
        cmd::SSR_EVENT => Some(Message::Event {
            dbc,
            event: le32(&msg[..len], 12)?,
        }),
        cmd::DEBUG_TRANSFER_INFO => Some(Message::DumpOffer { dbc }),
        _ => None,
    }
}

/// A 16-byte response: `cmd` for channel `dbc` with `value` (an event or a return code).
pub(crate) fn response(cmd: u32, dbc: u32, value: u32) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[0..4].copy_from_slice(&cmd.to_le_bytes());
    m[4..8].copy_from_slice(&16u32.to_le_bytes());
    m[8..12].copy_from_slice(&dbc.to_le_bytes());
    m[12..16].copy_from_slice(&value.to_le_bytes());
    m
}

/// What the host does about `msg`: the new state of the channel, if it changes, whether the
/// channel is released first, and the response to send.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Action {
    pub(crate) release: bool,
    pub(crate) state: Option<DbcState>,
    pub(crate) reply: [u8; 16],
    /// After the reply: the channel is idle again.
    pub(crate) then_idle: bool,
}

/// Decides what to do about `msg`.
pub(crate) fn action(msg: Message) -> Action {
    match msg {
        Message::Event { dbc, event } => {
            let state = match event {
                event::BEFORE_SHUTDOWN => Some(DbcState::BeforeShutdown),
                event::AFTER_SHUTDOWN => Some(DbcState::AfterShutdown),
                event::BEFORE_POWER_UP => Some(DbcState::BeforePowerUp),
                event::AFTER_POWER_UP => Some(DbcState::AfterPowerUp),
                _ => None,
            };
            Action {
                release: event == event::BEFORE_SHUTDOWN,
                state,
                reply: response(cmd::SSR_EVENT_RSP, dbc, event),
                then_idle: event == event::AFTER_POWER_UP,
            }
        }
        Message::DumpOffer { dbc } => Action {
            release: false,
            state: None,
            // Declined: the dump is not downloaded.
            reply: response(cmd::DEBUG_TRANSFER_INFO_RSP, dbc, 1),
            then_idle: false,
        },
    }
}

/// The MHI client of QAIC_SSR.
pub(crate) struct SsrDriver;

kernel::mhi_device_table!(
    SSR_TABLE,
    <SsrDriver as mhi::Driver>::IdInfo,
    [(mhi::DeviceId::new(c"QAIC_RS_SSR"), ())]
);

/// A bound QAIC_SSR channel.
#[pin_data]
pub(crate) struct Ssr {
    card: ARef<QaicDevice>,
    /// Where the card's messages are handled; destroyed (after running what is queued) when the
    /// channel is unbound.
    queue: OwnedQueue,
    /// The channels, to answer from the work queue.
    #[pin]
    channels: kernel::sync::SpinLockIrq<Option<Arc<Channels<SsrDriver>>>>,
}

impl Ssr {
    /// Handles `msg` in process context.
    fn handle(card: &Card, channels: &Channels<SsrDriver>, msg: Message) {
        let act = action(msg);
        let dbc = match msg {
            Message::Event { dbc, .. } | Message::DumpOffer { dbc } => dbc as usize,
        };
        match (act.release, act.state) {
            (true, Some(state)) => card.crashed(dbc, state),
            (false, Some(state)) => card.set_state(dbc, state),
            _ => {}
        }
        let sent = Buffer::new(MSG_MAX, GFP_KERNEL).and_then(|mut buf| {
            buf.fill(&act.reply)?;
            channels
                .queue(Direction::ToDevice, buf, false)
                .map_err(|(e, _)| e)
        });
        if let Err(e) = sent {
            pr_warn!("qaic_rs: SSR: cannot answer the card: {:?}\n", e);
        }
        if act.then_idle {
            card.set_state(dbc, DbcState::Idle);
        }
    }
}

impl mhi::Driver for SsrDriver {
    type IdInfo = ();
    type Data<'bound> = Ssr;

    const ID_TABLE: mhi::IdTable<Self::IdInfo> = &SSR_TABLE;
    const BUFFER_SIZE: usize = MSG_MAX;

    fn probe<'bound>(
        dev: &'bound mhi::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let card = crate::card::find(dev.controller_device()).ok_or(ENODEV)?;
            Ok(try_pin_init!(Ssr {
                card,
                queue: OwnedQueue::new_ordered(c"qaic_rs_ssr")?,
                channels <- kernel::new_spinlock_irq!(None),
            }))
        })
    }

    fn start(
        dev: &mhi::Device<Core<'_>>,
        data: Pin<&Ssr>,
        channels: &Arc<Channels<Self>>,
    ) -> Result {
        *data.channels.lock() = Some(channels.clone());
        dev.queue::<Self>(
            Direction::FromDevice,
            Buffer::new(MSG_MAX, GFP_KERNEL)?,
            false,
        )
        .map_err(|(e, _)| e)
    }

    fn unbind<'bound>(_dev: &'bound mhi::Device<Core<'_>>, data: Pin<&Ssr>) {
        let channels = data.channels.lock().take();
        drop(channels);
    }

    fn ul_xfer(_dev: &mhi::Device<Bound>, _data: Pin<&Ssr>, _buf: Buffer, _status: Result) {}

    fn dl_xfer(dev: &mhi::Device<Bound>, data: Pin<&Ssr>, buf: Buffer, status: Result) {
        if status.is_err() {
            return;
        }
        let msg = decode(buf.as_slice());
        if let Err((e, _)) = dev.queue::<Self>(Direction::FromDevice, buf, false) {
            dev_warn!(
                dev.controller_device(),
                "SSR: cannot queue the receive buffer: {:?}\n",
                e
            );
        }
        let Some(msg) = msg else {
            return;
        };
        let Some(channels) = data.channels.lock().clone() else {
            return;
        };
        let card = data.card.clone();
        let spawned = data.queue.try_spawn(GFP_ATOMIC, move || {
            Ssr::handle(&card, &channels, msg);
        });
        if spawned.is_err() {
            dev_warn!(
                dev.controller_device(),
                "SSR: out of memory, message lost\n"
            );
        }
    }
}

#[kunit_tests(qaic_rs_ssr)]
mod tests {
    use super::*;

    fn msg(cmd: u32, len: u32, dbc: u32, body: u32) -> [u8; 16] {
        let mut m = [0u8; 16];
        m[0..4].copy_from_slice(&cmd.to_le_bytes());
        m[4..8].copy_from_slice(&len.to_le_bytes());
        m[8..12].copy_from_slice(&dbc.to_le_bytes());
        m[12..16].copy_from_slice(&body.to_le_bytes());
        m
    }

    #[test]
    fn decoding() {
        let m = msg(cmd::SSR_EVENT, 16, 3, event::BEFORE_SHUTDOWN);
        assert_eq!(
            decode(&m),
            Some(Message::Event {
                dbc: 3,
                event: event::BEFORE_SHUTDOWN
            })
        );
        // A length past the transfer.
        assert_eq!(decode(&msg(cmd::DEBUG_TRANSFER_INFO, 32, 15, 0)[..]), None);
        let mut offer = [0u8; 32];
        offer[..16].copy_from_slice(&msg(cmd::DEBUG_TRANSFER_INFO, 32, 15, 0));
        assert_eq!(decode(&offer), Some(Message::DumpOffer { dbc: 15 }));
        // Ignored: unknown channel, length past 32, a short event, other commands.
        assert_eq!(decode(&msg(cmd::SSR_EVENT, 16, 16, 2)), None);
        assert_eq!(decode(&msg(cmd::SSR_EVENT, 33, 0, 2)), None);
        assert_eq!(decode(&msg(cmd::SSR_EVENT, 12, 0, 2)), None);
        assert_eq!(decode(&msg(0x20, 16, 0, 0)), None);
        assert_eq!(decode(&[0u8; 8]), None);
    }

    #[test]
    fn actions() {
        let a = action(Message::Event {
            dbc: 2,
            event: event::BEFORE_SHUTDOWN,
        });
        assert!(a.release);
        assert_eq!(a.state, Some(DbcState::BeforeShutdown));
        assert_eq!(
            a.reply,
            msg(cmd::SSR_EVENT_RSP, 16, 2, event::BEFORE_SHUTDOWN)
        );
        assert!(!a.then_idle);
        let a = action(Message::Event {
            dbc: 2,
            event: event::AFTER_POWER_UP,
        });
        assert!(!a.release);
        assert_eq!(a.state, Some(DbcState::AfterPowerUp));
        assert!(a.then_idle);
        // Unknown events are echoed and change nothing.
        let a = action(Message::Event {
            dbc: 1,
            event: 0x40,
        });
        assert_eq!(a.state, None);
        assert_eq!(a.reply, msg(cmd::SSR_EVENT_RSP, 16, 1, 0x40));
        // Dumps are declined.
        let a = action(Message::DumpOffer { dbc: 7 });
        assert_eq!(a.reply, msg(cmd::DEBUG_TRANSFER_INFO_RSP, 16, 7, 1));
        assert_eq!(event::NACK, 1);
    }
}
