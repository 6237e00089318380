// SPDX-License-Identifier: GPL-2.0-only

//! The Sahara channel client: serves the firmware images the card's secondary boot loader (SBL)
//! asks for, until it moves on to mission mode.
//!
//! The protocol logic is in [`crate::sahara`]; this module moves its packets over the MHI channel
//! pair `QAIC_RS_SAHARA`. Transfer completions run in the MHI core's softirq context, where
//! nothing may sleep, so everything that can is done at probe: the images of the table are
//! loaded (a missing file only fails the boot if the card asks for it) and the transmit buffers
//! are allocated.
//!
//! Every firmware problem is logged with the file it concerns and what the operator can do about
//! it: the files go under `/lib/firmware/qcom/aic100/`, and a card halted in its boot loader
//! boots again when the driver is reloaded.

use kernel::{
    device::{
        self,
        Bound,
        Core, //
    },
    firmware::{
        self,
        Firmware, //
    },
    mhi::{
        self,
        Buffer,
        Direction, //
    },
    new_spinlock_irq,
    prelude::*,
    sync::{
        Arc,
        SpinLockIrq, //
    },
};

use crate::sahara::{
    self,
    Action,
    Reply,
    Sahara,
    AIC100_IMAGES,
    MAX_PACKET_SIZE,
    TX_BUFFERS, //
};

/// Where the firmware files of the card go on the host, for the messages of this driver.
const FIRMWARE_DIR: &str = "/lib/firmware/qcom/aic100/";

/// Checks that the SBL image `path`, which the MHI core downloads over BHI to a card in its
/// primary boot loader, can be loaded, and says what to do if not. The MHI core's own message
/// names the file but is not tied to the card and offers no remedy. A card already running does
/// not need the file, so this only warns.
pub(crate) fn check_sbl(dev: &device::Device<Bound>, path: &CStr) {
    if let Err(e) = Firmware::request_nowarn(path, dev) {
        dev_warn!(
            dev,
            "firmware file {} not loaded ({:?}): a card in its boot ROM cannot boot; install the \
             Cloud AI 100 firmware under {} and reload qaic_rs\n",
            path.to_str().unwrap_or("?"),
            e,
            FIRMWARE_DIR
        );
    }
}

/// The `firmware=` entries of the module information: every file the driver may ask for, the SBL
/// first, then the images of the Sahara table, so that `modinfo` and the tools that build an
/// initramfs know them. Built at compile time from the tables the driver loads from, for
/// [`kernel::module_firmware!`].
pub(crate) struct FirmwareModInfo<const N: usize>;

impl<const N: usize> FirmwareModInfo<N> {
    /// Returns the entries, for `kernel::module_firmware!`.
    pub(crate) const fn create(module_name: &'static CStr) -> firmware::ModInfoBuilder<N> {
        let mut builder = firmware::ModInfoBuilder::new(module_name)
            .new_entry()
            .push(path_str(crate::mhi::AIC100_SBL));
        let mut i = 0;
        while i < AIC100_IMAGES.len() {
            builder = builder.new_entry().push(path_str(AIC100_IMAGES[i].path));
            i += 1;
        }
        builder
    }
}

/// Returns a firmware path as text, at compile time; a path that is not UTF-8 fails the build.
const fn path_str(path: &'static CStr) -> &'static str {
    match path.to_str() {
        Ok(s) => s,
        Err(_) => kernel::build_error!("a firmware path is not UTF-8"),
    }
}

/// The Sahara client driver.
pub(crate) struct SaharaDriver;

kernel::mhi_device_table!(
    SAHARA_TABLE,
    <SaharaDriver as mhi::Driver>::IdInfo,
    [(mhi::DeviceId::new(c"QAIC_RS_SAHARA"), ())]
);

/// The state of one Sahara session, shared by the transfer callbacks.
struct Session {
    /// The protocol state.
    proto: Sahara,
    /// Transmit buffers not lent to the device.
    free: KVec<Buffer>,
}

/// A bound Sahara channel.
#[pin_data]
pub(crate) struct SaharaClient {
    /// The images of the table, in table order, or why the file could not be loaded.
    images: KVec<Result<Firmware>>,
    #[pin]
    session: SpinLockIrq<Session>,
}

impl SaharaClient {
    /// Returns the loaded image `id`, or why it is not loaded.
    ///
    /// # Errors
    ///
    /// The error of the firmware loader for the file of image `id`; [`EINVAL`] if `id` is not in
    /// the image table.
    fn image(&self, id: u32) -> Result<&Firmware> {
        let index = AIC100_IMAGES
            .iter()
            .position(|image| image.id == id)
            .ok_or(EINVAL)?;
        match self.images.get(index) {
            Some(Ok(fw)) => Ok(fw),
            Some(Err(e)) => Err(*e),
            None => Err(EINVAL),
        }
    }

    /// Prepares `reply` in a free transmit buffer, to be queued into `out`.
    fn send(&self, session: &mut Session, reply: Reply, out: &mut Outgoing) -> Result {
        let mut buf = session.free.pop().ok_or(EBUSY)?;
        let filled = reply
            .encode(buf.spare_mut())
            .map(|b| b.len())
            .and_then(|len| buf.set_len(len));
        if let Err(e) = filled {
            // The vector has room: the buffer was popped from it.
            let _ = session.free.push(buf, GFP_ATOMIC);
            return Err(e);
        }
        out.push(session, buf, false)
    }

    /// Prepares `range` of image `id` as one chained transfer.
    fn send_image(
        &self,
        session: &mut Session,
        data: &[u8],
        range: core::ops::Range<usize>,
        out: &mut Outgoing,
    ) -> Result {
        // Never start a chained transfer that cannot be finished: the device would wait for
        // its end.
        if session.free.len() < sahara::pieces(range.clone()).count() {
            return Err(EBUSY);
        }
        for piece in sahara::pieces(range) {
            let mut buf = session.free.pop().ok_or(EBUSY)?;
            let filled = data
                .get(piece.range)
                .ok_or(EINVAL)
                .and_then(|bytes| buf.fill(bytes));
            if let Err(e) = filled {
                let _ = session.free.push(buf, GFP_ATOMIC);
                return Err(e);
            }
            out.push(session, buf, piece.chain)?;
        }
        Ok(())
    }

    /// Acts on one packet from the device: decides under the session lock, queues the answer
    /// after releasing it (`mhi_queue_buf()` must not run with interrupts off).
    fn on_packet(&self, dev: &mhi::Device<Bound>, msg: &[u8]) {
        let mut out = match KVec::with_capacity(TX_BUFFERS, GFP_ATOMIC) {
            Ok(v) => Outgoing(v),
            Err(_) => {
                dev_err!(dev.as_ref(), "cannot answer the card: out of memory\n");
                return;
            }
        };
        let sent = {
            let mut session = self.session.lock();
            self.answer(dev, &mut session, msg, &mut out)
                .inspect_err(|_| out.give_back(&mut session))
        };
        let sent = sent.and_then(|()| {
            let mut pending = out.0.drain_all();
            for (buf, chain) in pending.by_ref() {
                if let Err((e, buf)) = dev.queue::<SaharaDriver>(Direction::ToDevice, buf, chain) {
                    let mut session = self.session.lock();
                    let _ = session.free.push(buf, GFP_ATOMIC);
                    for (buf, _) in pending.by_ref() {
                        let _ = session.free.push(buf, GFP_ATOMIC);
                    }
                    return Err(e);
                }
            }
            Ok(())
        });
        if let Err(e) = sent {
            dev_err!(dev.as_ref(), "cannot answer the card: {:?}\n", e);
        }
    }

    /// Runs the protocol on `msg` and prepares the answer in `out`.
    fn answer(
        &self,
        dev: &mhi::Device<Bound>,
        session: &mut Session,
        msg: &[u8],
        out: &mut Outgoing,
    ) -> Result {
        let action = match session.proto.on_message(msg) {
            Ok(action) => action,
            Err(bad) => {
                dev_err!(dev.as_ref(), "ignoring a bad Sahara packet: {:?}\n", bad);
                return Ok(());
            }
        };
        match action {
            Action::Send(reply) => self.send(session, reply, out),
            Action::Read(req) => match self.image(req.image) {
                Err(e) => {
                    session.proto.load_failed(req.image);
                    dev_err!(
                        dev.as_ref(),
                        "firmware file {} (image {}) not loaded ({:?}): the card stops in its \
                         boot loader; install the Cloud AI 100 firmware under {} and reload \
                         qaic_rs\n",
                        req.path.to_str().unwrap_or("?"),
                        req.image,
                        e,
                        FIRMWARE_DIR
                    );
                    self.send(session, Reply::Reset, out)
                }
                Ok(fw) => match sahara::read_range(fw.data().len(), req.offset, req.len) {
                    Ok(range) => self.send_image(session, fw.data(), range, out),
                    Err(reason) => {
                        dev_err!(dev.as_ref(), "refusing a read: {:?}\n", reason);
                        self.send(session, Reply::Reset, out)
                    }
                },
            },
            Action::Release {
                image,
                status,
                reply,
            } => {
                if status != 0 {
                    self.report_failed_image(dev, image, status);
                }
                match reply {
                    Some(reply) => self.send(session, reply, out),
                    None => Ok(()),
                }
            }
            Action::Reset(reason) => {
                dev_err!(dev.as_ref(), "refusing a request: {:?}\n", reason);
                self.send(session, Reply::Reset, out)
            }
            Action::Nothing => Ok(()),
        }
    }
}

impl SaharaClient {
    /// Logs that the card ended image `image` with error `status`.
    fn report_failed_image(&self, dev: &mhi::Device<Bound>, image: u32, status: u32) {
        let path = sahara::aic100_image_path(image)
            .and_then(|p| p.to_str().ok())
            .unwrap_or("?");
        if self.image(image).is_err() {
            // Its file is missing, which was logged when the card asked for it.
            dev_err!(
                dev.as_ref(),
                "card gave up image {} ({}), status {}\n",
                image,
                path,
                status
            );
        } else {
            dev_err!(
                dev.as_ref(),
                "card rejected {} (image {}), status {}: the file is damaged or not from the \
                 card's firmware release; reinstall the Cloud AI 100 firmware under {} and \
                 reload qaic_rs\n",
                path,
                image,
                status,
                FIRMWARE_DIR
            );
        }
    }
}

/// Transmit buffers filled under the session lock, queued in order once it is released.
struct Outgoing(KVec<(Buffer, bool)>);

impl Outgoing {
    /// Adds `buf` (continued by the next one if `chain`); on failure it goes back to the free
    /// buffers of `session`.
    fn push(&mut self, session: &mut Session, buf: Buffer, chain: bool) -> Result {
        // Room for every transmit buffer was reserved.
        if let Err(e) = self.0.push_within_capacity((buf, chain)) {
            let (buf, _) = e.0;
            let _ = session.free.push(buf, GFP_ATOMIC);
            return Err(ENOMEM);
        }
        Ok(())
    }

    /// Gives every buffer back to the free ones of `session`.
    fn give_back(&mut self, session: &mut Session) {
        for (buf, _) in self.0.drain_all() {
            let _ = session.free.push(buf, GFP_ATOMIC);
        }
    }
}

impl mhi::Driver for SaharaDriver {
    type IdInfo = ();
    type Data<'bound> = SaharaClient;

    const ID_TABLE: mhi::IdTable<Self::IdInfo> = &SAHARA_TABLE;
    const BUFFER_SIZE: usize = MAX_PACKET_SIZE;

    fn probe<'bound>(
        dev: &'bound mhi::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let mut images = KVec::with_capacity(AIC100_IMAGES.len(), GFP_KERNEL)?;
            for image in &AIC100_IMAGES {
                images.push(
                    Firmware::request_nowarn(image.path, dev.as_ref()),
                    GFP_KERNEL,
                )?;
            }
            let mut free = KVec::with_capacity(TX_BUFFERS, GFP_KERNEL)?;
            for _ in 0..TX_BUFFERS {
                free.push(Buffer::new(MAX_PACKET_SIZE, GFP_KERNEL)?, GFP_KERNEL)?;
            }
            Ok(try_pin_init!(SaharaClient {
                images,
                session <- new_spinlock_irq!(Session {
                    proto: Sahara::new(),
                    free,
                }),
            }))
        })
    }

    fn start(
        dev: &mhi::Device<Core<'_>>,
        _data: Pin<&SaharaClient>,
        _channels: &Arc<mhi::Channels<Self>>,
    ) -> Result {
        // One receive buffer: the card sends one packet and waits for the answer.
        let buf = Buffer::new(MAX_PACKET_SIZE, GFP_KERNEL)?;
        dev.queue::<Self>(Direction::FromDevice, buf, false)
            .map_err(|(e, _)| e)
    }

    fn ul_xfer(_dev: &mhi::Device<Bound>, data: Pin<&SaharaClient>, buf: Buffer, _status: Result) {
        // The buffer is free again, whether it was sent or the channel was reset. The vector has
        // room for every buffer allocated at probe.
        let _ = data.session.lock().free.push(buf, GFP_ATOMIC);
    }

    fn dl_xfer(dev: &mhi::Device<Bound>, data: Pin<&SaharaClient>, buf: Buffer, status: Result) {
        if status.is_err() {
            // The channel is being reset: drop the buffer.
            return;
        }
        data.on_packet(dev, buf.as_slice());
        if let Err((e, _)) = dev.queue::<Self>(Direction::FromDevice, buf, false) {
            dev_err!(
                dev.as_ref(),
                "cannot re-queue the receive buffer: {:?}\n",
                e
            );
        }
    }
}
