// SPDX-License-Identifier: GPL-2.0-only

//! The boot log: what the card's SBL writes on its QAIC_LOGGING channel while it boots.
//!
//! Each boot starts a new log. The host keeps 16 receive buffers of 512 bytes queued; every
//! message is one fragment of text, appended in arrival order without its trailing NUL. The
//! log is the debugfs file `qaic_rs/<PCI device>/bootlog`; it keeps at most
//! [`BOOTLOG_MAX`](crate::card::BOOTLOG_MAX) bytes.

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
};

use crate::{
    accel::QaicDevice,
    card::{
        Card,
        BOOTLOG_MAX, //
    },
};

/// Receive buffers kept queued.
const BUFFERS: usize = 16;
/// Size of each.
const BUFFER_LEN: usize = 512;

/// The fragment a message carries: the message without one trailing NUL.
pub(crate) fn fragment(msg: &[u8]) -> &[u8] {
    msg.strip_suffix(&[0]).unwrap_or(msg)
}

/// The MHI client of QAIC_LOGGING.
pub(crate) struct BootlogDriver;

kernel::mhi_device_table!(
    BOOTLOG_TABLE,
    <BootlogDriver as mhi::Driver>::IdInfo,
    [(mhi::DeviceId::new(c"QAIC_RS_LOGGING"), ())]
);

impl mhi::Driver for BootlogDriver {
    type IdInfo = ();
    type Data<'bound> = ARef<QaicDevice>;

    const ID_TABLE: mhi::IdTable<Self::IdInfo> = &BOOTLOG_TABLE;
    const BUFFER_SIZE: usize = BUFFER_LEN;

    fn probe<'bound>(
        dev: &'bound mhi::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        crate::card::find(dev.controller_device()).ok_or(ENODEV)
    }

    fn start(
        dev: &mhi::Device<Core<'_>>,
        card: Pin<&ARef<QaicDevice>>,
        _channels: &Arc<Channels<Self>>,
    ) -> Result {
        let card: &Card = &card;
        // A new boot, a new log.
        let old = core::mem::take(&mut *card.bootlog.lock());
        drop(old);
        for _ in 0..BUFFERS {
            dev.queue::<Self>(
                Direction::FromDevice,
                Buffer::new(BUFFER_LEN, GFP_KERNEL)?,
                false,
            )
            .map_err(|(e, _)| e)?;
        }
        Ok(())
    }

    fn ul_xfer(_dev: &mhi::Device<Bound>, _d: Pin<&ARef<QaicDevice>>, _b: Buffer, _s: Result) {}

    fn dl_xfer(dev: &mhi::Device<Bound>, card: Pin<&ARef<QaicDevice>>, buf: Buffer, s: Result) {
        if s.is_err() {
            return;
        }
        let card: &Card = &card;
        {
            let mut log = card.bootlog.lock();
            let frag = fragment(buf.as_slice());
            let room = BOOTLOG_MAX.saturating_sub(log.len());
            // Atomic context: a failed allocation loses this fragment only.
            let _ = log.extend_from_slice(&frag[..frag.len().min(room)], GFP_ATOMIC);
        }
        let _ = dev.queue::<Self>(Direction::FromDevice, buf, false);
    }
}

#[kunit_tests(qaic_rs_bootlog)]
mod tests {
    use super::*;

    #[test]
    fn fragments() {
        assert_eq!(fragment(b"PBL: up\n\0"), b"PBL: up\n");
        assert_eq!(fragment(b"no nul"), b"no nul");
        // One NUL only.
        assert_eq!(fragment(b"x\0\0"), b"x\0");
        assert_eq!(fragment(b""), b"");
    }
}
