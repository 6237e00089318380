// SPDX-License-Identifier: MIT OR Apache-2.0
//! The NNC command protocol, version 17: the firmware commands carried in
//! MANAGE passthrough transactions.
//!
//! Every command is a packed little-endian structure that starts with a
//! `u32` command id; the answer starts with the id of the request plus one
//! (the constants-loading commands 15 and 16 are answered with 2). All
//! sizes are multiples of 8. Like the vendor runtime, this crate appends 8
//! zero bytes after each request inside the passthrough (see
//! [`passthrough_payload`]); firmware parses by command id and tolerates
//! them.
//!
//! Requests implement [`NncRequest`] (encode, and decode for tools and
//! tests); answers implement [`NncResponse`] (decode, and encode for tools
//! and tests). Field offsets are the ones of the protocol definition and are
//! checked by the unit tests against hand-written byte images.

use std::fmt;

use crate::error::{Error, Result};
use crate::manage::{ManageMsg, Transaction};
use crate::wire::{fixed_cstr, Reader, Writer};

/// Major version of the command protocol implemented here.
pub const NNC_COMMAND_PROTOCOL_MAJOR: u16 = 17;
/// Minor version of the command protocol implemented here.
pub const NNC_COMMAND_PROTOCOL_MINOR: u16 = 0;
/// Lowest device-info format version this crate decodes.
pub const DEVICE_INFO_FORMAT_VERSION: u8 = 12;
/// Network metadata version the runtime understands (major, minor).
pub const METADATA_VERSION: (u16, u16) = (1, 0);
/// Zero bytes appended after each request inside a passthrough.
pub const PASSTHROUGH_TRAILER: usize = 8;
/// Length of the name fields of the load commands, NUL included.
pub const NAME_LEN: usize = 64;

/// NNC command ids (the request id; see [`NncCommand::response_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NncCommand {
    /// 1: load constants in one shot (legacy).
    LoadConstants,
    /// 3: load a network ELF.
    LoadElf,
    /// 5: unload constants.
    UnloadConstants,
    /// 7: unload a network ELF.
    UnloadElf,
    /// 9: activate a loaded network.
    Activate,
    /// 11: deactivate a network.
    Deactivate,
    /// 13: device information.
    Status,
    /// 15: announce constants by descriptor.
    LoadConstantsEx,
    /// 16: send one part of announced constants.
    LoadConstantsPayload,
    /// 32: resource usage.
    ResourceInfo,
    /// 34: clock and bandwidth figures.
    PerformanceInfo,
}

impl NncCommand {
    /// The request id.
    pub fn id(self) -> u32 {
        match self {
            NncCommand::LoadConstants => 1,
            NncCommand::LoadElf => 3,
            NncCommand::UnloadConstants => 5,
            NncCommand::UnloadElf => 7,
            NncCommand::Activate => 9,
            NncCommand::Deactivate => 11,
            NncCommand::Status => 13,
            NncCommand::LoadConstantsEx => 15,
            NncCommand::LoadConstantsPayload => 16,
            NncCommand::ResourceInfo => 32,
            NncCommand::PerformanceInfo => 34,
        }
    }

    /// The id of the answer.
    pub fn response_id(self) -> u32 {
        match self {
            NncCommand::LoadConstantsEx | NncCommand::LoadConstantsPayload => 2,
            c => c.id() + 1,
        }
    }

    /// The protocol's name of the command.
    pub fn name(self) -> &'static str {
        match self {
            NncCommand::LoadConstants => "LOAD_CONSTANTS",
            NncCommand::LoadElf => "LOAD_ELF",
            NncCommand::UnloadConstants => "UNLOAD_CONSTANTS",
            NncCommand::UnloadElf => "UNLOAD_ELF",
            NncCommand::Activate => "ACTIVATE",
            NncCommand::Deactivate => "DEACTIVATE",
            NncCommand::Status => "STATUS",
            NncCommand::LoadConstantsEx => "LOAD_CONSTANTS_EX",
            NncCommand::LoadConstantsPayload => "LOAD_CONSTANTS_PAYLOAD",
            NncCommand::ResourceInfo => "RESOURCE_INFO",
            NncCommand::PerformanceInfo => "PERFORMANCE_INFO",
        }
    }
}

impl fmt::Display for NncCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NNC {}", self.name())
    }
}

/// Status code of an NNC answer (0 = success, negative = error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NncStatus(pub i32);

impl NncStatus {
    /// Success.
    pub const SUCCESS: NncStatus = NncStatus(0);
    /// The firmware does not know the command.
    pub const UNDEFINED_REQUEST: NncStatus = NncStatus(-3);
    /// The subsystem is restarting; retry later.
    pub const UNDER_SSR: NncStatus = NncStatus(-36);

    /// Whether the command succeeded.
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Name of the status, for the codes this crate knows.
    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("SUCCESS"),
            -3 => Some("UNDEFINED_REQUEST"),
            -36 => Some("SS_UNDER_SSR_ERROR"),
            _ => None,
        }
    }

    /// `Ok(())` on success, else the matching [`Error::Nnc`].
    pub fn check(self, command: NncCommand) -> Result<()> {
        if self.is_ok() {
            Ok(())
        } else {
            Err(Error::Nnc {
                command,
                status: self,
            })
        }
    }
}

impl fmt::Display for NncStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "status {} ({n})", self.0),
            None => write!(f, "status {}", self.0),
        }
    }
}

/// A firmware command.
pub trait NncRequest: Sized {
    /// Which command this is.
    const COMMAND: NncCommand;
    /// Encoded size in bytes (without the passthrough trailer).
    const SIZE: usize;
    /// The answer type.
    type Response: NncResponse;
    /// Encodes the command.
    fn encode(&self) -> Result<Vec<u8>>;
    /// Decodes a command (for tools and tests that play the device side).
    fn decode(buf: &[u8]) -> Result<Self>;
}

/// A firmware answer.
pub trait NncResponse: Sized {
    /// Command id of the answer.
    const TYPE: u32;
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Decodes the answer; the id must be [`Self::TYPE`](NncResponse::TYPE).
    fn decode(buf: &[u8]) -> Result<Self>;
    /// Encodes the answer (for tools and tests that play the device side).
    fn encode(&self) -> Vec<u8>;
    /// The status code carried by the answer.
    fn status(&self) -> NncStatus;
}

/// The passthrough payload for `req`: the encoded command followed by
/// [`PASSTHROUGH_TRAILER`] zero bytes.
pub fn passthrough_payload<R: NncRequest>(req: &R) -> Result<Vec<u8>> {
    let mut v = req.encode()?;
    v.resize(v.len() + PASSTHROUGH_TRAILER, 0);
    Ok(v)
}

/// The MANAGE message that carries `req` in a passthrough, followed by the
/// `extra` transactions that go with it: the DMA transfer of LOAD_ELF and
/// LOAD_CONSTANTS_PAYLOAD, the activate transaction (SETUP_VC) of ACTIVATE,
/// the deactivate transaction (TEARDOWN_VC) of DEACTIVATE.
pub fn message<'a, R: NncRequest>(req: &R, extra: Vec<Transaction<'a>>) -> Result<ManageMsg<'a>> {
    let mut msg = ManageMsg::new().passthrough(&passthrough_payload(req)?);
    for t in extra {
        msg = msg.push(t);
    }
    Ok(msg)
}

fn reader<'a>(buf: &'a [u8], ty: u32, size: usize, what: &'static str) -> Result<Reader<'a>> {
    let r = Reader::new(buf, size, what)?;
    let got = r.u32(0)?;
    if got != ty {
        return Err(Error::protocol(format!(
            "{what}: command id {got}, expected {ty}"
        )));
    }
    Ok(r)
}

fn writer(ty: u32, size: usize) -> Writer {
    let mut w = Writer::new(size);
    w.u32(0, ty);
    w
}

// ---- requests ---------------------------------------------------------------------------------

/// LOAD_CONSTANTS (1): legacy one-shot constants load, followed in the
/// same message by a DMA transfer with the same `tag`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadConstantsRequest {
    /// Process id of the owner.
    pub pid: u32,
    /// Tag of the DMA transfer carrying the data.
    pub tag: u32,
    /// Checksum of the data (not interpreted by this crate).
    pub crc: u32,
    /// Bytes of constants.
    pub data_length: u64,
    /// Name (at most 63 bytes).
    pub name: String,
}

impl NncRequest for LoadConstantsRequest {
    const COMMAND: NncCommand = NncCommand::LoadConstants;
    const SIZE: usize = 88;
    type Response = LoadConstantsResponse;
    fn encode(&self) -> Result<Vec<u8>> {
        let name = fixed_cstr(&self.name, NAME_LEN, "constants name")?;
        Ok(writer(1, Self::SIZE)
            .u32(4, self.pid)
            .u32(8, self.tag)
            .u32(12, self.crc)
            .u64(16, self.data_length)
            .bytes(24, &name)
            .finish())
    }
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, 1, Self::SIZE, "LOAD_CONSTANTS")?;
        Ok(Self {
            pid: r.u32(4)?,
            tag: r.u32(8)?,
            crc: r.u32(12)?,
            data_length: r.u64(16)?,
            name: r.cstr(24, 64)?,
        })
    }
}

/// Sizes of the two parts of a network's constants (24 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConstantsDescriptor {
    /// Bytes of static constants (loaded at offset 0).
    pub static_size: u64,
    /// Bytes of dynamic constants (loaded at offset `static_size`).
    pub dynamic_size: u64,
    /// ECC flag of the static part.
    pub static_ecc: u8,
    /// ECC flag of the dynamic part.
    pub dynamic_ecc: u8,
}

/// Encoded size of [`ConstantsDescriptor`].
pub const CONSTANTS_DESCRIPTOR_LEN: usize = 24;

/// LOAD_CONSTANTS_EX (15): announce constants; answered with a constants id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadConstantsExRequest {
    /// Process id of the owner.
    pub pid: u32,
    /// Name (at most 63 bytes).
    pub name: String,
    /// Sizes of the parts.
    pub descriptor: ConstantsDescriptor,
}

impl NncRequest for LoadConstantsExRequest {
    const COMMAND: NncCommand = NncCommand::LoadConstantsEx;
    const SIZE: usize = 80 + CONSTANTS_DESCRIPTOR_LEN;
    type Response = LoadConstantsResponse;
    fn encode(&self) -> Result<Vec<u8>> {
        let name = fixed_cstr(&self.name, NAME_LEN, "constants name")?;
        let d = &self.descriptor;
        Ok(writer(15, Self::SIZE)
            .u32(4, self.pid)
            .bytes(8, &name)
            .u32(72, CONSTANTS_DESCRIPTOR_LEN as u32)
            .u64(80, d.static_size)
            .u64(88, d.dynamic_size)
            .u8(96, d.static_ecc)
            .u8(97, d.dynamic_ecc)
            .finish())
    }
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, 15, Self::SIZE, "LOAD_CONSTANTS_EX")?;
        let dlen = r.u32(72)? as usize;
        if dlen != CONSTANTS_DESCRIPTOR_LEN {
            return Err(Error::protocol(format!(
                "LOAD_CONSTANTS_EX: descriptor length {dlen}"
            )));
        }
        Ok(Self {
            pid: r.u32(4)?,
            name: r.cstr(8, 64)?,
            descriptor: ConstantsDescriptor {
                static_size: r.u64(80)?,
                dynamic_size: r.u64(88)?,
                static_ecc: r.u8(96)?,
                dynamic_ecc: r.u8(97)?,
            },
        })
    }
}

/// LOAD_CONSTANTS_PAYLOAD (16): one part of announced constants, followed
/// in the same message by a DMA transfer with the same `tag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadConstantsPayloadRequest {
    /// Process id of the owner.
    pub pid: u32,
    /// Tag of the DMA transfer carrying the data.
    pub tag: u32,
    /// Id returned by LOAD_CONSTANTS_EX.
    pub constants_id: u32,
    /// Bytes in this part.
    pub data_length: u64,
    /// Where the part goes inside the constants.
    pub offset: u64,
}

impl NncRequest for LoadConstantsPayloadRequest {
    const COMMAND: NncCommand = NncCommand::LoadConstantsPayload;
    const SIZE: usize = 32;
    type Response = LoadConstantsResponse;
    fn encode(&self) -> Result<Vec<u8>> {
        Ok(writer(16, Self::SIZE)
            .u32(4, self.pid)
            .u32(8, self.tag)
            .u32(12, self.constants_id)
            .u64(16, self.data_length)
            .u64(24, self.offset)
            .finish())
    }
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, 16, Self::SIZE, "LOAD_CONSTANTS_PAYLOAD")?;
        Ok(Self {
            pid: r.u32(4)?,
            tag: r.u32(8)?,
            constants_id: r.u32(12)?,
            data_length: r.u64(16)?,
            offset: r.u64(24)?,
        })
    }
}

/// LOAD_ELF (3): load a network image, followed in the same message by a
/// DMA transfer of the whole ELF with the same `tag`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadElfRequest {
    /// Tag of the DMA transfer carrying the ELF.
    pub tag: u32,
    /// Process id of the owner.
    pub pid: u32,
    /// Checksum of the network metadata.
    pub metadata_crc: u32,
    /// Network name (at most 63 bytes).
    pub name: String,
    /// Bytes of ELF.
    pub data_length: u64,
    /// Checksum of the flatbuffer metadata.
    pub metadata_flatbuffer_crc: u32,
}

impl NncRequest for LoadElfRequest {
    const COMMAND: NncCommand = NncCommand::LoadElf;
    const SIZE: usize = 96;
    type Response = LoadElfResponse;
    fn encode(&self) -> Result<Vec<u8>> {
        let name = fixed_cstr(&self.name, NAME_LEN, "network name")?;
        Ok(writer(3, Self::SIZE)
            .u32(4, self.tag)
            .u32(8, self.pid)
            .u32(12, self.metadata_crc)
            .bytes(16, &name)
            .u64(80, self.data_length)
            .u32(88, self.metadata_flatbuffer_crc)
            .finish())
    }
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, 3, Self::SIZE, "LOAD_ELF")?;
        Ok(Self {
            tag: r.u32(4)?,
            pid: r.u32(8)?,
            metadata_crc: r.u32(12)?,
            name: r.cstr(16, 64)?,
            data_length: r.u64(80)?,
            metadata_flatbuffer_crc: r.u32(88)?,
        })
    }
}

macro_rules! id_request {
    ($(#[$m:meta])* $name:ident, $field:ident, $cmd:ident, $id:expr, $resp:ty) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            /// The id returned when it was loaded.
            pub $field: u32,
        }
        impl NncRequest for $name {
            const COMMAND: NncCommand = NncCommand::$cmd;
            const SIZE: usize = 8;
            type Response = $resp;
            fn encode(&self) -> Result<Vec<u8>> {
                Ok(writer($id, Self::SIZE).u32(4, self.$field).finish())
            }
            fn decode(buf: &[u8]) -> Result<Self> {
                let r = reader(buf, $id, Self::SIZE, NncCommand::$cmd.name())?;
                Ok(Self { $field: r.u32(4)? })
            }
        }
    };
}

id_request!(
    /// UNLOAD_CONSTANTS (5).
    UnloadConstantsRequest, constants_id, UnloadConstants, 5, UnloadConstantsResponse
);
id_request!(
    /// UNLOAD_ELF (7).
    UnloadElfRequest, elf_id, UnloadElf, 7, UnloadElfResponse
);

/// Initial state of an activated network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(i32)]
pub enum ActivationState {
    /// Resources allocated, not running (the vendor runtime's default).
    #[default]
    Standby = 0,
    /// Ready to execute.
    Ready = 1,
    /// Deactivated.
    Deactivate = 2,
}

/// ACTIVATE (9): activate a loaded network. Sent together with a SETUP_VC
/// ([`crate::manage::Transaction::Activate`]) transaction when
/// `opt_vc_setup` is 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivateRequest {
    /// Process id of the owner.
    pub pid: u32,
    /// Constants id, 0 for none.
    pub constants_id: u32,
    /// Network id.
    pub elf_id: u32,
    /// Reservation type (0 in the vendor runtime).
    pub reservation_type: u32,
    /// Resource reservation id, -1 for none.
    pub resource_res_id: i32,
    /// 1 when a DMA bridge channel is set up in the same message.
    pub opt_vc_setup: u32,
    /// Channel reservation id, -1 for none.
    pub vc_res_id: i32,
    /// Initial state.
    pub initial_state: ActivationState,
    /// DMA type (0 in the vendor runtime).
    pub dma_type: u32,
    /// Datapath switching support (0 in the vendor runtime).
    pub opt_datapath_switching: u8,
}

impl Default for ActivateRequest {
    fn default() -> Self {
        ActivateRequest {
            pid: 0,
            constants_id: 0,
            elf_id: 0,
            reservation_type: 0,
            resource_res_id: -1,
            opt_vc_setup: 1,
            vc_res_id: -1,
            initial_state: ActivationState::Standby,
            dma_type: 0,
            opt_datapath_switching: 0,
        }
    }
}

impl NncRequest for ActivateRequest {
    const COMMAND: NncCommand = NncCommand::Activate;
    const SIZE: usize = 48;
    type Response = ActivateResponse;
    fn encode(&self) -> Result<Vec<u8>> {
        Ok(writer(9, Self::SIZE)
            .u32(4, self.pid)
            .u32(8, self.constants_id)
            .u32(12, self.elf_id)
            .u32(16, self.reservation_type)
            .i32(20, self.resource_res_id)
            .u32(24, self.opt_vc_setup)
            .i32(28, self.vc_res_id)
            .i32(32, self.initial_state as i32)
            .u32(36, self.dma_type)
            .u8(40, self.opt_datapath_switching)
            .finish())
    }
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, 9, Self::SIZE, "ACTIVATE")?;
        let initial_state = match r.i32(32)? {
            0 => ActivationState::Standby,
            1 => ActivationState::Ready,
            2 => ActivationState::Deactivate,
            s => return Err(Error::protocol(format!("ACTIVATE: initial state {s}"))),
        };
        Ok(Self {
            pid: r.u32(4)?,
            constants_id: r.u32(8)?,
            elf_id: r.u32(12)?,
            reservation_type: r.u32(16)?,
            resource_res_id: r.i32(20)?,
            opt_vc_setup: r.u32(24)?,
            vc_res_id: r.i32(28)?,
            initial_state,
            dma_type: r.u32(36)?,
            opt_datapath_switching: r.u8(40)?,
        })
    }
}

/// DEACTIVATE (11): stop a network. Sent together with a TEARDOWN_VC
/// ([`crate::manage::Transaction::Deactivate`]) when `opt_vc_teardown` is 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeactivateRequest {
    /// Id returned by ACTIVATE.
    pub activation_id: u32,
    /// 1 when the channel is released in the same message.
    pub opt_vc_teardown: u32,
}

impl NncRequest for DeactivateRequest {
    const COMMAND: NncCommand = NncCommand::Deactivate;
    const SIZE: usize = 16;
    type Response = DeactivateResponse;
    fn encode(&self) -> Result<Vec<u8>> {
        Ok(writer(11, Self::SIZE)
            .u32(4, self.activation_id)
            .u32(8, self.opt_vc_teardown)
            .finish())
    }
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, 11, Self::SIZE, "DEACTIVATE")?;
        Ok(Self {
            activation_id: r.u32(4)?,
            opt_vc_teardown: r.u32(8)?,
        })
    }
}

/// STATUS (13): device information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusRequest {
    /// Kind of information (0 in the vendor runtime).
    pub info_type: u8,
}

impl NncRequest for StatusRequest {
    const COMMAND: NncCommand = NncCommand::Status;
    const SIZE: usize = 8;
    type Response = StatusResponse;
    fn encode(&self) -> Result<Vec<u8>> {
        Ok(writer(13, Self::SIZE).u8(4, self.info_type).finish())
    }
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, 13, Self::SIZE, "STATUS")?;
        Ok(Self {
            info_type: r.u8(4)?,
        })
    }
}

/// RESOURCE_INFO (32): resource usage of the system or of a resource group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfoRequest {
    /// Process id.
    pub pid: u32,
    /// Resource group, -1 for the whole system.
    pub res_grp_id: i32,
}

impl NncRequest for ResourceInfoRequest {
    const COMMAND: NncCommand = NncCommand::ResourceInfo;
    const SIZE: usize = 16;
    type Response = ResourceInfoResponse;
    fn encode(&self) -> Result<Vec<u8>> {
        Ok(writer(32, Self::SIZE)
            .u32(4, self.pid)
            .i32(8, self.res_grp_id)
            .finish())
    }
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, 32, Self::SIZE, "RESOURCE_INFO")?;
        Ok(Self {
            pid: r.u32(4)?,
            res_grp_id: r.i32(8)?,
        })
    }
}

/// PERFORMANCE_INFO (34): clock and bandwidth figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PerformanceInfoRequest;

impl NncRequest for PerformanceInfoRequest {
    const COMMAND: NncCommand = NncCommand::PerformanceInfo;
    const SIZE: usize = 8;
    type Response = PerformanceInfoResponse;
    fn encode(&self) -> Result<Vec<u8>> {
        Ok(writer(34, Self::SIZE).finish())
    }
    fn decode(buf: &[u8]) -> Result<Self> {
        reader(buf, 34, Self::SIZE, "PERFORMANCE_INFO")?;
        Ok(Self)
    }
}

// ---- answers ----------------------------------------------------------------------------------

/// Answer of the load commands: `{u32 id, i32 status, u32 pad}` after the
/// command id. `TYPE` is 2 for constants and 4 for ELF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadResponse<const TYPE: u32> {
    /// The new object's id (0 on failure).
    pub id: u32,
    /// Status code.
    pub status: NncStatus,
}

/// Answer to LOAD_CONSTANTS, LOAD_CONSTANTS_EX and LOAD_CONSTANTS_PAYLOAD.
pub type LoadConstantsResponse = LoadResponse<2>;
/// Answer to LOAD_ELF.
pub type LoadElfResponse = LoadResponse<4>;

impl<const TYPE: u32> NncResponse for LoadResponse<TYPE> {
    const TYPE: u32 = TYPE;
    const SIZE: usize = 16;
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, TYPE, Self::SIZE, "load answer")?;
        Ok(Self {
            id: r.u32(4)?,
            status: NncStatus(r.i32(8)?),
        })
    }
    fn encode(&self) -> Vec<u8> {
        writer(TYPE, Self::SIZE)
            .u32(4, self.id)
            .i32(8, self.status.0)
            .finish()
    }
    fn status(&self) -> NncStatus {
        self.status
    }
}

/// Answer carrying only a status: `{i32 status}` after the command id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusOnlyResponse<const TYPE: u32> {
    /// Status code.
    pub status: NncStatus,
}

/// Answer to UNLOAD_CONSTANTS.
pub type UnloadConstantsResponse = StatusOnlyResponse<6>;
/// Answer to UNLOAD_ELF.
pub type UnloadElfResponse = StatusOnlyResponse<8>;
/// Answer to DEACTIVATE.
pub type DeactivateResponse = StatusOnlyResponse<12>;

impl<const TYPE: u32> NncResponse for StatusOnlyResponse<TYPE> {
    const TYPE: u32 = TYPE;
    const SIZE: usize = 8;
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, TYPE, Self::SIZE, "status answer")?;
        Ok(Self {
            status: NncStatus(r.i32(4)?),
        })
    }
    fn encode(&self) -> Vec<u8> {
        writer(TYPE, Self::SIZE).i32(4, self.status.0).finish()
    }
    fn status(&self) -> NncStatus {
        self.status
    }
}

/// Answer to ACTIVATE (10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActivateResponse {
    /// Status code.
    pub status: i32,
    /// Id to pass to DEACTIVATE.
    pub activation_id: u32,
    /// Virtual channel = DMA bridge channel used for execution.
    pub virtual_channel_id: u32,
    /// Base added to DDR device offsets of the network's I/O.
    pub ddr_base: u64,
    /// Base of the dynamic DDR region.
    pub dynamic_ddr_base: u64,
    /// Base added to multicast-id device offsets.
    pub mcid_base: u64,
    /// Multicast base for DMA commands.
    pub mcid_base_dma_cmd: u64,
    /// DMA type.
    pub dma_type: u32,
    /// Physical channel mask.
    pub pc_mask: u32,
    /// NSP polling address.
    pub cmd_nsp_base_polling_addr: u64,
    /// Size of the polling information.
    pub cmd_nsp_polling_info_size: u32,
    /// Polling data.
    pub cmd_nsp_polling_data: u32,
    /// Command doorbell address.
    pub cmd_doorbell_addr: u64,
    /// Command doorbell length.
    pub cmd_doorbell_length: u8,
    /// Whether the command doorbell is valid.
    pub cmd_doorbell_valid: u8,
    /// Mask of the NSPs used.
    pub nsp_mask: u32,
}

impl NncResponse for ActivateResponse {
    const TYPE: u32 = 10;
    const SIZE: usize = 88;
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, 10, Self::SIZE, "ACTIVATE answer")?;
        Ok(Self {
            status: r.i32(4)?,
            activation_id: r.u32(8)?,
            virtual_channel_id: r.u32(12)?,
            ddr_base: r.u64(16)?,
            dynamic_ddr_base: r.u64(24)?,
            mcid_base: r.u64(32)?,
            mcid_base_dma_cmd: r.u64(40)?,
            dma_type: r.u32(48)?,
            pc_mask: r.u32(52)?,
            cmd_nsp_base_polling_addr: r.u64(56)?,
            cmd_nsp_polling_info_size: r.u32(64)?,
            cmd_nsp_polling_data: r.u32(68)?,
            cmd_doorbell_addr: r.u64(72)?,
            cmd_doorbell_length: r.u8(80)?,
            cmd_doorbell_valid: r.u8(81)?,
            nsp_mask: r.u32(82)?,
        })
    }
    fn encode(&self) -> Vec<u8> {
        writer(10, Self::SIZE)
            .i32(4, self.status)
            .u32(8, self.activation_id)
            .u32(12, self.virtual_channel_id)
            .u64(16, self.ddr_base)
            .u64(24, self.dynamic_ddr_base)
            .u64(32, self.mcid_base)
            .u64(40, self.mcid_base_dma_cmd)
            .u32(48, self.dma_type)
            .u32(52, self.pc_mask)
            .u64(56, self.cmd_nsp_base_polling_addr)
            .u32(64, self.cmd_nsp_polling_info_size)
            .u32(68, self.cmd_nsp_polling_data)
            .u64(72, self.cmd_doorbell_addr)
            .u8(80, self.cmd_doorbell_length)
            .u8(81, self.cmd_doorbell_valid)
            .u32(82, self.nsp_mask)
            .finish()
    }
    fn status(&self) -> NncStatus {
        NncStatus(self.status)
    }
}

/// Resource counters (40 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourceInfo {
    /// DDR in MiB.
    pub dram_total: u32,
    /// Free DDR in MiB.
    pub dram_free: u32,
    /// DDR fragmentation figure.
    pub dram_fragmentation: u32,
    /// Virtual channels.
    pub vc_total: u8,
    /// Free virtual channels.
    pub vc_free: u8,
    /// NSPs.
    pub nsp_total: u8,
    /// Free NSPs.
    pub nsp_free: u8,
    /// Multicast ids.
    pub mcid_total: u32,
    /// Free multicast ids.
    pub mcid_free: u32,
    /// Semaphores.
    pub sem_total: u32,
    /// Free semaphores.
    pub sem_free: u32,
    /// Physical DMA channels.
    pub pc_total: u8,
    /// Reserved physical DMA channels.
    pub pc_reserved: u8,
}

/// Encoded size of [`ResourceInfo`].
pub const RESOURCE_INFO_LEN: usize = 40;

impl ResourceInfo {
    fn read(r: &Reader<'_>, o: usize) -> Result<Self> {
        Ok(Self {
            dram_total: r.u32(o)?,
            dram_free: r.u32(o + 4)?,
            dram_fragmentation: r.u32(o + 8)?,
            vc_total: r.u8(o + 12)?,
            vc_free: r.u8(o + 13)?,
            nsp_total: r.u8(o + 14)?,
            nsp_free: r.u8(o + 15)?,
            mcid_total: r.u32(o + 16)?,
            mcid_free: r.u32(o + 20)?,
            sem_total: r.u32(o + 24)?,
            sem_free: r.u32(o + 28)?,
            pc_total: r.u8(o + 32)?,
            pc_reserved: r.u8(o + 33)?,
        })
    }
    fn write(&self, w: &mut Writer, o: usize) {
        w.u32(o, self.dram_total)
            .u32(o + 4, self.dram_free)
            .u32(o + 8, self.dram_fragmentation)
            .u8(o + 12, self.vc_total)
            .u8(o + 13, self.vc_free)
            .u8(o + 14, self.nsp_total)
            .u8(o + 15, self.nsp_free)
            .u32(o + 16, self.mcid_total)
            .u32(o + 20, self.mcid_free)
            .u32(o + 24, self.sem_total)
            .u32(o + 28, self.sem_free)
            .u8(o + 32, self.pc_total)
            .u8(o + 33, self.pc_reserved);
    }
}

/// Clocks and bandwidth (56 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PerformanceInfo {
    /// NSP clock in Hz.
    pub nsp_frequency_hz: u32,
    /// DDR clock in Hz.
    pub ddr_frequency_hz: u32,
    /// Compute clock in Hz.
    pub comp_frequency_hz: u32,
    /// Memory clock in Hz.
    pub mem_frequency_hz: u32,
    /// System clock in Hz.
    pub sys_frequency_hz: u32,
    /// Peak compute figure.
    pub peak_compute: u64,
    /// DDR bandwidth figure.
    pub dram_bw: u64,
}

/// Encoded size of [`PerformanceInfo`].
pub const PERFORMANCE_INFO_LEN: usize = 56;

impl PerformanceInfo {
    fn read(r: &Reader<'_>, o: usize) -> Result<Self> {
        Ok(Self {
            nsp_frequency_hz: r.u32(o)?,
            ddr_frequency_hz: r.u32(o + 4)?,
            comp_frequency_hz: r.u32(o + 8)?,
            mem_frequency_hz: r.u32(o + 12)?,
            sys_frequency_hz: r.u32(o + 16)?,
            peak_compute: r.u64(o + 24)?,
            dram_bw: r.u64(o + 32)?,
        })
    }
    fn write(&self, w: &mut Writer, o: usize) {
        w.u32(o, self.nsp_frequency_hz)
            .u32(o + 4, self.ddr_frequency_hz)
            .u32(o + 8, self.comp_frequency_hz)
            .u32(o + 12, self.mem_frequency_hz)
            .u32(o + 16, self.sys_frequency_hz)
            .u64(o + 24, self.peak_compute)
            .u64(o + 32, self.dram_bw);
    }
}

/// Answer to RESOURCE_INFO (33). Note the status comes after the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourceInfoResponse {
    /// Resource group described.
    pub res_grp_id: i32,
    /// The counters.
    pub info: ResourceInfo,
    /// Status code.
    pub status: i32,
}

impl NncResponse for ResourceInfoResponse {
    const TYPE: u32 = 33;
    const SIZE: usize = 56;
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, 33, Self::SIZE, "RESOURCE_INFO answer")?;
        Ok(Self {
            res_grp_id: r.i32(4)?,
            info: ResourceInfo::read(&r, 8)?,
            status: r.i32(48)?,
        })
    }
    fn encode(&self) -> Vec<u8> {
        let mut w = writer(33, Self::SIZE);
        w.i32(4, self.res_grp_id).i32(48, self.status);
        self.info.write(&mut w, 8);
        w.finish()
    }
    fn status(&self) -> NncStatus {
        NncStatus(self.status)
    }
}

/// Answer to PERFORMANCE_INFO (35).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PerformanceInfoResponse {
    /// Status code.
    pub status: i32,
    /// The figures.
    pub info: PerformanceInfo,
}

impl NncResponse for PerformanceInfoResponse {
    const TYPE: u32 = 35;
    const SIZE: usize = 64;
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = reader(buf, 35, Self::SIZE, "PERFORMANCE_INFO answer")?;
        Ok(Self {
            status: r.i32(4)?,
            info: PerformanceInfo::read(&r, 8)?,
        })
    }
    fn encode(&self) -> Vec<u8> {
        let mut w = writer(35, Self::SIZE);
        w.i32(4, self.status);
        self.info.write(&mut w, 8);
        w.finish()
    }
    fn status(&self) -> NncStatus {
        NncStatus(self.status)
    }
}

/// A four-part version number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FwVersion {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Patch.
    pub patch: u8,
    /// Build.
    pub build: u8,
}

impl fmt::Display for FwVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.major, self.minor, self.patch, self.build
        )
    }
}

/// Device information returned by STATUS (the 496-byte info block).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceInfo {
    /// Format version of this block (at least 12).
    pub format_version: u8,
    /// Firmware version.
    pub fw_version: FwVersion,
    /// Qualcomm firmware version string.
    pub fw_qc_version: String,
    /// OEM firmware version string.
    pub fw_oem_version: String,
    /// Firmware variant.
    pub fw_variant: String,
    /// Hardware version (`>> 16` is the major, 1 for AIC100).
    pub hw_version: u32,
    /// Serial number.
    pub serial: String,
    /// Board serial number.
    pub board_serial: String,
    /// Compiler version the firmware expects.
    pub compiler_version: u32,
    /// Resource counters.
    pub resources: ResourceInfo,
    /// Performance figures.
    pub performance: PerformanceInfo,
    /// Loaded constants.
    pub num_loaded_constants: u32,
    /// Constants in use.
    pub num_constants_in_use: u32,
    /// Loaded networks.
    pub num_loaded_networks: u8,
    /// Active networks.
    pub num_active_networks: u8,
    /// Network metadata version (major, minor).
    pub metadata_version: (u16, u16),
    /// NNC command protocol version (major, minor).
    pub nnc_command_protocol: (u16, u16),
    /// SBL image name.
    pub sbl_image_name: String,
    /// Whether a reset is needed to retire memory pages.
    pub need_reset_to_retire_pages: u8,
    /// PVS image version.
    pub pvs_image_version: u32,
    /// Mask of usable NSPs.
    pub nsp_pgmask: u64,
    /// Offset of the device clock to host time, µs.
    pub qts_time_offset_usecs: u64,
    /// Retired memory pages.
    pub num_retired_pages: u32,
    /// SKU.
    pub sku_type: u8,
    /// Complex id.
    pub complex_id: u8,
    /// NSP firmware version.
    pub nsp_version: FwVersion,
    /// NSP Qualcomm version string.
    pub nsp_qc_version: String,
    /// NSP OEM version string.
    pub nsp_oem_version: String,
    /// NSP variant.
    pub nsp_variant: String,
}

/// Encoded size of [`DeviceInfo`].
pub const DEVICE_INFO_LEN: usize = 496;

impl DeviceInfo {
    /// Decodes the info block starting at `o` in `r`.
    fn read(r: &Reader<'_>, o: usize) -> Result<Self> {
        let d = o + 8; // device data
        let n = d + 320; // NSP data
        Ok(Self {
            format_version: r.u8(o)?,
            fw_version: FwVersion {
                major: r.u8(d)?,
                minor: r.u8(d + 1)?,
                patch: r.u8(d + 2)?,
                build: r.u8(d + 3)?,
            },
            fw_qc_version: r.cstr(d + 4, 38)?,
            fw_oem_version: r.cstr(d + 42, 38)?,
            fw_variant: r.cstr(d + 80, 16)?,
            hw_version: r.u32(d + 96)?,
            serial: r.cstr(d + 100, 16)?,
            board_serial: r.cstr(d + 116, 32)?,
            compiler_version: r.u32(d + 148)?,
            resources: ResourceInfo::read(r, d + 152)?,
            performance: PerformanceInfo::read(r, d + 192)?,
            num_loaded_constants: r.u32(d + 248)?,
            num_constants_in_use: r.u32(d + 252)?,
            num_loaded_networks: r.u8(d + 256)?,
            num_active_networks: r.u8(d + 257)?,
            metadata_version: (r.u16(d + 258)?, r.u16(d + 260)?),
            nnc_command_protocol: (r.u16(d + 262)?, r.u16(d + 264)?),
            sbl_image_name: r.cstr(d + 266, 24)?,
            need_reset_to_retire_pages: r.u8(d + 290)?,
            pvs_image_version: r.u32(d + 292)?,
            nsp_pgmask: r.u64(d + 296)?,
            qts_time_offset_usecs: r.u64(d + 304)?,
            num_retired_pages: r.u32(d + 312)?,
            sku_type: r.u8(d + 316)?,
            complex_id: r.u8(d + 317)?,
            nsp_version: FwVersion {
                major: r.u8(n)?,
                minor: r.u8(n + 1)?,
                patch: r.u8(n + 2)?,
                build: r.u8(n + 3)?,
            },
            nsp_qc_version: r.cstr(n + 8, 64)?,
            nsp_oem_version: r.cstr(n + 72, 48)?,
            nsp_variant: r.cstr(n + 120, 48)?,
        })
    }

    /// The checks the vendor runtime applies before using a device: info
    /// format ≥ 12, command protocol 17.x, metadata 1.0.
    pub fn check_compatible(&self) -> Result<()> {
        if self.format_version < DEVICE_INFO_FORMAT_VERSION {
            return Err(Error::Unsupported(format!(
                "device info format {}",
                self.format_version
            )));
        }
        if self.nnc_command_protocol.0 != NNC_COMMAND_PROTOCOL_MAJOR {
            return Err(Error::Unsupported(format!(
                "NNC command protocol {}.{}, this runtime speaks {NNC_COMMAND_PROTOCOL_MAJOR}.x",
                self.nnc_command_protocol.0, self.nnc_command_protocol.1
            )));
        }
        if self.metadata_version != METADATA_VERSION {
            return Err(Error::Unsupported(format!(
                "network metadata {}.{}",
                self.metadata_version.0, self.metadata_version.1
            )));
        }
        Ok(())
    }
}

/// Answer to STATUS (14): status plus device information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusResponse {
    /// Status code.
    pub status: i32,
    /// The information.
    pub info: DeviceInfo,
}

impl NncResponse for StatusResponse {
    const TYPE: u32 = 14;
    const SIZE: usize = 8 + DEVICE_INFO_LEN;
    fn decode(buf: &[u8]) -> Result<Self> {
        let r = Reader::new(buf, 8, "STATUS answer")?;
        if r.u32(0)? != 14 {
            return Err(Error::protocol(format!(
                "STATUS answer: command id {}",
                r.u32(0)?
            )));
        }
        let status = r.i32(4)?;
        if status != 0 && buf.len() < Self::SIZE {
            // a failed STATUS may come without the info block
            return Ok(Self {
                status,
                info: DeviceInfo::default(),
            });
        }
        let r = reader(buf, 14, Self::SIZE, "STATUS answer")?;
        Ok(Self {
            status,
            info: DeviceInfo::read(&r, 8)?,
        })
    }
    fn encode(&self) -> Vec<u8> {
        let i = &self.info;
        let mut w = writer(14, Self::SIZE);
        let (o, d, n) = (8, 16, 16 + 320);
        let s = |s: &str, len: usize| {
            let mut v = s.as_bytes().to_vec();
            v.truncate(len - 1);
            v
        };
        w.i32(4, self.status).u8(o, i.format_version);
        w.bytes(
            d,
            &[
                i.fw_version.major,
                i.fw_version.minor,
                i.fw_version.patch,
                i.fw_version.build,
            ],
        )
        .bytes(d + 4, &s(&i.fw_qc_version, 38))
        .bytes(d + 42, &s(&i.fw_oem_version, 38))
        .bytes(d + 80, &s(&i.fw_variant, 16))
        .u32(d + 96, i.hw_version)
        .bytes(d + 100, &s(&i.serial, 16))
        .bytes(d + 116, &s(&i.board_serial, 32))
        .u32(d + 148, i.compiler_version);
        i.resources.write(&mut w, d + 152);
        i.performance.write(&mut w, d + 192);
        w.u32(d + 248, i.num_loaded_constants)
            .u32(d + 252, i.num_constants_in_use)
            .u8(d + 256, i.num_loaded_networks)
            .u8(d + 257, i.num_active_networks)
            .u16(d + 258, i.metadata_version.0)
            .u16(d + 260, i.metadata_version.1)
            .u16(d + 262, i.nnc_command_protocol.0)
            .u16(d + 264, i.nnc_command_protocol.1)
            .bytes(d + 266, &s(&i.sbl_image_name, 24))
            .u8(d + 290, i.need_reset_to_retire_pages)
            .u32(d + 292, i.pvs_image_version)
            .u64(d + 296, i.nsp_pgmask)
            .u64(d + 304, i.qts_time_offset_usecs)
            .u32(d + 312, i.num_retired_pages)
            .u8(d + 316, i.sku_type)
            .u8(d + 317, i.complex_id);
        w.bytes(
            n,
            &[
                i.nsp_version.major,
                i.nsp_version.minor,
                i.nsp_version.patch,
                i.nsp_version.build,
            ],
        )
        .bytes(n + 8, &s(&i.nsp_qc_version, 64))
        .bytes(n + 72, &s(&i.nsp_oem_version, 48))
        .bytes(n + 120, &s(&i.nsp_variant, 48));
        w.finish()
    }
    fn status(&self) -> NncStatus {
        NncStatus(self.status)
    }
}

/// Decodes the answer to `R` from a passthrough payload and checks its
/// status.
///
/// A firmware that rejects a command may answer with only `{u32 id, i32
/// status}` instead of the full answer structure (this is what an unknown
/// command gets). Such a short answer with the right id and a non-zero
/// status is reported as [`Error::Nnc`] with that status rather than as a
/// malformed answer.
pub fn decode_checked<R: NncRequest>(payload: &[u8]) -> Result<R::Response> {
    let resp = match R::Response::decode(payload) {
        Ok(r) => r,
        Err(e) => {
            if payload.len() >= 8 && payload.len() < R::Response::SIZE {
                let r = Reader::new(payload, 8, "short answer")?;
                let status = NncStatus(r.i32(4)?);
                if r.u32(0)? == R::Response::TYPE && !status.is_ok() {
                    return Err(Error::Nnc {
                        command: R::COMMAND,
                        status,
                    });
                }
            }
            return Err(e);
        }
    };
    resp.status().check(R::COMMAND)?;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le32(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }
    fn le64(b: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    }

    #[test]
    fn sizes_match_protocol() {
        assert_eq!(LoadElfRequest::SIZE, 96);
        assert_eq!(LoadConstantsRequest::SIZE, 88);
        assert_eq!(LoadConstantsExRequest::SIZE, 104);
        assert_eq!(LoadConstantsPayloadRequest::SIZE, 32);
        assert_eq!(<LoadElfResponse as NncResponse>::SIZE, 16);
        assert_eq!(ActivateRequest::SIZE, 48);
        assert_eq!(<ActivateResponse as NncResponse>::SIZE, 88);
        assert_eq!(DeactivateRequest::SIZE, 16);
        assert_eq!(StatusRequest::SIZE, 8);
        assert_eq!(<StatusResponse as NncResponse>::SIZE, 504);
        assert_eq!(<ResourceInfoResponse as NncResponse>::SIZE, 56);
        assert_eq!(<PerformanceInfoResponse as NncResponse>::SIZE, 64);
        // every encoding has the declared size, a multiple of 8
        let all: Vec<Vec<u8>> = vec![
            LoadElfRequest::default().encode().unwrap(),
            LoadConstantsRequest::default().encode().unwrap(),
            LoadConstantsExRequest::default().encode().unwrap(),
            LoadConstantsPayloadRequest::default().encode().unwrap(),
            UnloadElfRequest::default().encode().unwrap(),
            UnloadConstantsRequest::default().encode().unwrap(),
            ActivateRequest::default().encode().unwrap(),
            DeactivateRequest {
                activation_id: 1,
                opt_vc_teardown: 1,
            }
            .encode()
            .unwrap(),
            StatusRequest::default().encode().unwrap(),
            ResourceInfoRequest {
                pid: 1,
                res_grp_id: -1,
            }
            .encode()
            .unwrap(),
            PerformanceInfoRequest.encode().unwrap(),
            ActivateResponse::default().encode(),
            StatusResponse {
                status: 0,
                info: DeviceInfo::default(),
            }
            .encode(),
        ];
        for b in all {
            assert_eq!(b.len() % 8, 0);
        }
    }

    #[test]
    fn command_ids() {
        use NncCommand::*;
        let pairs: Vec<(u32, u32)> = [
            LoadConstants,
            LoadElf,
            UnloadConstants,
            UnloadElf,
            Activate,
            Deactivate,
            Status,
        ]
        .iter()
        .map(|c| (c.id(), c.response_id()))
        .collect();
        assert_eq!(
            pairs,
            [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14)]
        );
        assert_eq!(
            (LoadConstantsEx.id(), LoadConstantsEx.response_id()),
            (15, 2)
        );
        assert_eq!(
            (
                LoadConstantsPayload.id(),
                LoadConstantsPayload.response_id()
            ),
            (16, 2)
        );
        assert_eq!(
            (ResourceInfo.response_id(), PerformanceInfo.response_id()),
            (33, 35)
        );
        assert_eq!(<LoadConstantsExRequest as NncRequest>::Response::TYPE, 2);
        assert_eq!(<LoadElfRequest as NncRequest>::Response::TYPE, 4);
        assert_eq!(<DeactivateRequest as NncRequest>::Response::TYPE, 12);
        assert_eq!(Activate.to_string(), "NNC ACTIVATE");
    }

    #[test]
    fn load_elf_layout() {
        let req = LoadElfRequest {
            tag: 0x11,
            pid: 0x22,
            metadata_crc: 0x33,
            name: "mlp".into(),
            data_length: 0x1_0000_0001,
            metadata_flatbuffer_crc: 0x44,
        };
        let b = req.encode().unwrap();
        assert_eq!(
            (le32(&b, 0), le32(&b, 4), le32(&b, 8), le32(&b, 12)),
            (3, 0x11, 0x22, 0x33)
        );
        assert_eq!(&b[16..20], b"mlp\0");
        assert!(b[20..80].iter().all(|&c| c == 0));
        assert_eq!(le64(&b, 80), 0x1_0000_0001);
        assert_eq!((le32(&b, 88), le32(&b, 92)), (0x44, 0));
        assert_eq!(LoadElfRequest::decode(&b).unwrap(), req);
        let pt = passthrough_payload(&req).unwrap();
        assert_eq!(pt.len(), 96 + 8);
        assert!(pt[96..].iter().all(|&c| c == 0));
        assert!(LoadElfRequest {
            name: "x".repeat(64),
            ..req
        }
        .encode()
        .is_err());
    }

    #[test]
    fn load_constants_layouts() {
        let ex = LoadConstantsExRequest {
            pid: 7,
            name: "consts".into(),
            descriptor: ConstantsDescriptor {
                static_size: 4096,
                dynamic_size: 512,
                static_ecc: 1,
                dynamic_ecc: 0,
            },
        };
        let b = ex.encode().unwrap();
        assert_eq!(b.len(), 104);
        assert_eq!((le32(&b, 0), le32(&b, 4)), (15, 7));
        assert_eq!(&b[8..15], b"consts\0");
        assert_eq!((le32(&b, 72), le32(&b, 76)), (24, 0));
        assert_eq!(
            (le64(&b, 80), le64(&b, 88), b[96], b[97]),
            (4096, 512, 1, 0)
        );
        assert_eq!(LoadConstantsExRequest::decode(&b).unwrap(), ex);

        let p = LoadConstantsPayloadRequest {
            pid: 7,
            tag: 9,
            constants_id: 3,
            data_length: 512,
            offset: 4096,
        };
        let b = p.encode().unwrap();
        assert_eq!(
            (le32(&b, 0), le32(&b, 4), le32(&b, 8), le32(&b, 12)),
            (16, 7, 9, 3)
        );
        assert_eq!((le64(&b, 16), le64(&b, 24)), (512, 4096));
        assert_eq!(LoadConstantsPayloadRequest::decode(&b).unwrap(), p);

        let l = LoadConstantsRequest {
            pid: 1,
            tag: 2,
            crc: 3,
            data_length: 4,
            name: "c".into(),
        };
        let b = l.encode().unwrap();
        assert_eq!(
            (
                le32(&b, 0),
                le32(&b, 4),
                le32(&b, 8),
                le32(&b, 12),
                le64(&b, 16)
            ),
            (1, 1, 2, 3, 4)
        );
        assert_eq!(&b[24..26], b"c\0");
        assert_eq!(LoadConstantsRequest::decode(&b).unwrap(), l);
    }

    #[test]
    fn activate_layouts() {
        let a = ActivateRequest {
            pid: 100,
            constants_id: 2,
            elf_id: 3,
            initial_state: ActivationState::Ready,
            ..Default::default()
        };
        let b = a.encode().unwrap();
        let words: Vec<u32> = (0..10).map(|i| le32(&b, i * 4)).collect();
        assert_eq!(words, [9, 100, 2, 3, 0, u32::MAX, 1, u32::MAX, 1, 0]);
        assert!(b[40..48].iter().all(|&c| c == 0));
        assert_eq!(ActivateRequest::decode(&b).unwrap(), a);

        // answer image built by hand at the protocol's offsets
        let mut img = vec![0u8; 88];
        img[0..4].copy_from_slice(&10u32.to_le_bytes());
        img[8..12].copy_from_slice(&77u32.to_le_bytes());
        img[12..16].copy_from_slice(&4u32.to_le_bytes());
        img[16..24].copy_from_slice(&0x1000_0000u64.to_le_bytes());
        img[32..40].copy_from_slice(&0x2000_0000u64.to_le_bytes());
        img[52..56].copy_from_slice(&0xf0u32.to_le_bytes());
        img[80] = 4;
        img[81] = 1;
        img[82..86].copy_from_slice(&0x0000_ffffu32.to_le_bytes());
        let r = decode_checked::<ActivateRequest>(&img).unwrap();
        assert_eq!(
            (
                r.activation_id,
                r.virtual_channel_id,
                r.ddr_base,
                r.mcid_base
            ),
            (77, 4, 0x1000_0000, 0x2000_0000)
        );
        assert_eq!(
            (
                r.pc_mask,
                r.cmd_doorbell_length,
                r.cmd_doorbell_valid,
                r.nsp_mask
            ),
            (0xf0, 4, 1, 0xffff)
        );
        assert_eq!(r.encode(), img);

        img[4..8].copy_from_slice(&(-36i32).to_le_bytes());
        match decode_checked::<ActivateRequest>(&img) {
            Err(Error::Nnc {
                command: NncCommand::Activate,
                status,
            }) => assert_eq!(status, NncStatus::UNDER_SSR),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deactivate_and_unload_layouts() {
        let d = DeactivateRequest {
            activation_id: 5,
            opt_vc_teardown: 1,
        };
        let b = d.encode().unwrap();
        assert_eq!(
            (le32(&b, 0), le32(&b, 4), le32(&b, 8), le32(&b, 12)),
            (11, 5, 1, 0)
        );
        assert_eq!(DeactivateRequest::decode(&b).unwrap(), d);
        assert_eq!(
            UnloadElfRequest { elf_id: 9 }.encode().unwrap(),
            [7, 0, 0, 0, 9, 0, 0, 0]
        );
        assert_eq!(
            UnloadConstantsRequest { constants_id: 8 }.encode().unwrap(),
            [5, 0, 0, 0, 8, 0, 0, 0]
        );
        assert_eq!(
            UnloadElfRequest::decode(&[7, 0, 0, 0, 9, 0, 0, 0])
                .unwrap()
                .elf_id,
            9
        );
        assert!(UnloadElfRequest::decode(&[5, 0, 0, 0, 9, 0, 0, 0]).is_err());

        let ok = [12, 0, 0, 0, 0, 0, 0, 0];
        assert!(decode_checked::<DeactivateRequest>(&ok).is_ok());
        let bad = [8, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff];
        let e = decode_checked::<UnloadElfRequest>(&bad).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Nnc {
                    status: NncStatus::UNDEFINED_REQUEST,
                    ..
                }
            ),
            "{e}"
        );
        // wrong answer id
        assert!(decode_checked::<UnloadConstantsRequest>(&ok).is_err());
        // too short
        assert!(UnloadConstantsResponse::decode(&[6, 0, 0, 0]).is_err());
    }

    #[test]
    fn short_error_answers() {
        // {id 4, status -3}: LOAD_ELF rejected as an unknown command
        let short = [4, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff];
        match decode_checked::<LoadElfRequest>(&short) {
            Err(Error::Nnc {
                command: NncCommand::LoadElf,
                status,
            }) => assert_eq!(status, NncStatus::UNDEFINED_REQUEST),
            other => panic!("{other:?}"),
        }
        let short = [10, 0, 0, 0, 0xdc, 0xff, 0xff, 0xff];
        assert!(matches!(
            decode_checked::<ActivateRequest>(&short),
            Err(Error::Nnc {
                status: NncStatus::UNDER_SSR,
                ..
            })
        ));
        // a short answer claiming success, or with the wrong id, stays malformed
        assert!(matches!(
            decode_checked::<LoadElfRequest>(&[4, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            decode_checked::<LoadElfRequest>(&[6, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff]),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            decode_checked::<LoadElfRequest>(&[4, 0, 0]),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn load_answers() {
        let b = [4, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_checked::<LoadElfRequest>(&b).unwrap().id, 42);
        assert!(decode_checked::<LoadConstantsExRequest>(&b).is_err()); // id 4 is not a constants answer
        let c = LoadConstantsResponse {
            id: 3,
            status: NncStatus(0),
        }
        .encode();
        assert_eq!(
            decode_checked::<LoadConstantsPayloadRequest>(&c)
                .unwrap()
                .id,
            3
        );
        // answers followed by trailing bytes are accepted
        let mut long = c.clone();
        long.extend_from_slice(&[0; 8]);
        assert_eq!(LoadConstantsResponse::decode(&long).unwrap().id, 3);
    }

    /// A STATUS answer built by hand at the protocol's offsets.
    fn status_image() -> Vec<u8> {
        let mut b = vec![0u8; 504];
        let put = |b: &mut Vec<u8>, o: usize, v: &[u8]| b[o..o + v.len()].copy_from_slice(v);
        put(&mut b, 0, &14u32.to_le_bytes());
        b[8] = 12; // format version
        let d = 16;
        put(&mut b, d, &[1, 2, 3, 4]);
        put(&mut b, d + 4, b"1.2.3.4-qc");
        put(&mut b, d + 42, b"oem-x");
        put(&mut b, d + 80, b"AIC100");
        put(&mut b, d + 96, &0x0001_0002u32.to_le_bytes());
        put(&mut b, d + 100, b"SN123");
        put(&mut b, d + 116, b"BOARD9");
        put(&mut b, d + 148, &77u32.to_le_bytes());
        put(&mut b, d + 152, &32768u32.to_le_bytes()); // dram total
        put(&mut b, d + 156, &30000u32.to_le_bytes()); // dram free
        b[d + 152 + 12] = 16; // vc total
        b[d + 152 + 13] = 15; // vc free
        b[d + 152 + 14] = 16; // nsp total
        b[d + 152 + 15] = 14; // nsp free
        put(&mut b, d + 152 + 24, &32u32.to_le_bytes()); // sem total
        put(&mut b, d + 192, &1_450_000_000u32.to_le_bytes()); // nsp Hz
        put(&mut b, d + 192 + 24, &400u64.to_le_bytes()); // peak compute
        put(&mut b, d + 248, &2u32.to_le_bytes());
        b[d + 256] = 3;
        b[d + 257] = 1;
        put(&mut b, d + 258, &1u16.to_le_bytes());
        put(&mut b, d + 260, &0u16.to_le_bytes());
        put(&mut b, d + 262, &17u16.to_le_bytes());
        put(&mut b, d + 264, &2u16.to_le_bytes());
        put(&mut b, d + 266, b"sbl-img");
        put(&mut b, d + 296, &0xffffu64.to_le_bytes());
        put(&mut b, d + 312, &5u32.to_le_bytes());
        b[d + 316] = 2;
        b[d + 317] = 1;
        let n = d + 320;
        put(&mut b, n, &[9, 8, 7, 6]);
        put(&mut b, n + 8, b"nsp-qc");
        put(&mut b, n + 72, b"nsp-oem");
        put(&mut b, n + 120, b"nsp-var");
        b
    }

    #[test]
    fn status_answer_decodes_every_field() {
        let img = status_image();
        let r = decode_checked::<StatusRequest>(&img).unwrap();
        let i = &r.info;
        assert_eq!(i.format_version, 12);
        assert_eq!(i.fw_version.to_string(), "1.2.3.4");
        assert_eq!(
            (
                i.fw_qc_version.as_str(),
                i.fw_oem_version.as_str(),
                i.fw_variant.as_str()
            ),
            ("1.2.3.4-qc", "oem-x", "AIC100")
        );
        assert_eq!(
            (
                i.hw_version >> 16,
                i.serial.as_str(),
                i.board_serial.as_str()
            ),
            (1, "SN123", "BOARD9")
        );
        assert_eq!(i.compiler_version, 77);
        assert_eq!(
            (i.resources.dram_total, i.resources.dram_free),
            (32768, 30000)
        );
        assert_eq!(
            (
                i.resources.vc_total,
                i.resources.vc_free,
                i.resources.nsp_total,
                i.resources.nsp_free
            ),
            (16, 15, 16, 14)
        );
        assert_eq!(i.resources.sem_total, 32);
        assert_eq!(
            (i.performance.nsp_frequency_hz, i.performance.peak_compute),
            (1_450_000_000, 400)
        );
        assert_eq!(
            (
                i.num_loaded_constants,
                i.num_loaded_networks,
                i.num_active_networks
            ),
            (2, 3, 1)
        );
        assert_eq!(
            (i.metadata_version, i.nnc_command_protocol),
            ((1, 0), (17, 2))
        );
        assert_eq!(i.sbl_image_name, "sbl-img");
        assert_eq!(
            (i.nsp_pgmask, i.num_retired_pages, i.sku_type, i.complex_id),
            (0xffff, 5, 2, 1)
        );
        assert_eq!(i.nsp_version.to_string(), "9.8.7.6");
        assert_eq!(
            (
                i.nsp_qc_version.as_str(),
                i.nsp_oem_version.as_str(),
                i.nsp_variant.as_str()
            ),
            ("nsp-qc", "nsp-oem", "nsp-var")
        );
        i.check_compatible().unwrap();
        // encode is the inverse of decode
        assert_eq!(r.encode(), img);
    }

    #[test]
    fn status_compatibility_gates() {
        let mut img = status_image();
        img[16 + 262] = 18; // protocol major 18
        let r = StatusResponse::decode(&img).unwrap();
        assert!(matches!(
            r.info.check_compatible(),
            Err(Error::Unsupported(_))
        ));
        let mut img = status_image();
        img[8] = 11;
        assert!(StatusResponse::decode(&img)
            .unwrap()
            .info
            .check_compatible()
            .is_err());
        let mut img = status_image();
        img[16 + 260] = 1; // metadata 1.1
        assert!(StatusResponse::decode(&img)
            .unwrap()
            .info
            .check_compatible()
            .is_err());
        // truncated successful answer is an error, a short failed one is not
        assert!(StatusResponse::decode(&status_image()[..200]).is_err());
        let failed = [14, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff];
        assert_eq!(StatusResponse::decode(&failed).unwrap().status, -3);
        assert!(decode_checked::<StatusRequest>(&failed).is_err());
    }

    /// Whole MANAGE buffers for the program-management sequences.
    #[test]
    fn composite_messages() {
        // ACTIVATE + SETUP_VC
        let act = ActivateRequest {
            pid: 5,
            elf_id: 2,
            ..Default::default()
        };
        let e = message(
            &act,
            vec![Transaction::Activate {
                queue_size: 256,
                options: 0,
            }],
        )
        .unwrap()
        .encode()
        .unwrap();
        let b = e.bytes();
        assert_eq!(e.count(), 2);
        assert_eq!(e.len() as usize, 8 + 48 + 8 + 24);
        assert_eq!((le32(b, 0), le32(b, 4)), (1, 64)); // passthrough, 8 + 48 + 8 trailer
        assert_eq!(&b[8..56], act.encode().unwrap().as_slice());
        assert!(b[56..64].iter().all(|&c| c == 0));
        assert_eq!((le32(b, 64), le32(b, 68), le32(b, 72)), (7, 24, 256)); // SETUP_VC

        // DEACTIVATE + TEARDOWN_VC
        let d = DeactivateRequest {
            activation_id: 9,
            opt_vc_teardown: 1,
        };
        let e = message(&d, vec![Transaction::Deactivate { dbc_id: 3 }])
            .unwrap()
            .encode()
            .unwrap();
        let b = e.bytes();
        assert_eq!(
            (le32(b, 0), le32(b, 4), le32(b, 8), le32(b, 12)),
            (1, 32, 11, 9)
        );
        assert_eq!(
            (le32(b, 32), le32(b, 36), le32(b, 40), le32(b, 44)),
            (10, 16, 3, 0)
        );

        // LOAD_ELF + DMA transfer with the same tag
        let elf = vec![0x7fu8; 300];
        let l = LoadElfRequest {
            tag: 42,
            name: "n".into(),
            data_length: 300,
            ..Default::default()
        };
        let e = message(
            &l,
            vec![Transaction::DmaXfer {
                tag: 42,
                data: &elf,
            }],
        )
        .unwrap()
        .encode()
        .unwrap();
        let b = e.bytes();
        assert_eq!(
            (le32(b, 0), le32(b, 4), le32(b, 8), le32(b, 12)),
            (1, 112, 3, 42)
        );
        assert_eq!((le32(b, 112), le32(b, 116), le32(b, 120)), (5, 32, 42));
        assert_eq!((le64(b, 128), le64(b, 136)), (elf.as_ptr() as u64, 300));

        // STATUS alone
        let e = message(&StatusRequest::default(), vec![])
            .unwrap()
            .encode()
            .unwrap();
        assert_eq!(
            e.bytes(),
            &[1, 0, 0, 0, 24, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn info_requests_and_answers() {
        assert_eq!(
            StatusRequest { info_type: 2 }.encode().unwrap(),
            [13, 0, 0, 0, 2, 0, 0, 0]
        );
        let b = ResourceInfoRequest {
            pid: 3,
            res_grp_id: -1,
        }
        .encode()
        .unwrap();
        assert_eq!(
            (le32(&b, 0), le32(&b, 4), le32(&b, 8), le32(&b, 12)),
            (32, 3, u32::MAX, 0)
        );
        let ri = ResourceInfoResponse {
            res_grp_id: -1,
            info: ResourceInfo {
                dram_total: 10,
                vc_free: 3,
                pc_reserved: 1,
                ..Default::default()
            },
            status: 0,
        };
        let b = ri.encode();
        assert_eq!(
            (le32(&b, 0), le32(&b, 8), b[8 + 13], b[8 + 33], le32(&b, 48)),
            (33, 10, 3, 1, 0)
        );
        assert_eq!(ResourceInfoResponse::decode(&b).unwrap(), ri);
        let pi = PerformanceInfoResponse {
            status: 0,
            info: PerformanceInfo {
                ddr_frequency_hz: 5,
                dram_bw: 6,
                ..Default::default()
            },
        };
        let b = pi.encode();
        assert_eq!((le32(&b, 0), le32(&b, 12), le64(&b, 8 + 32)), (35, 5, 6));
        assert_eq!(PerformanceInfoResponse::decode(&b).unwrap(), pi);
    }
}
