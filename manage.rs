// SPDX-License-Identifier: GPL-2.0-only

//! `DRM_IOCTL_QAIC_MANAGE` messages: the user format, the wire format of the control protocol,
//! and the translation between them. Pure logic: pinning user memory, allocating DMA bridge
//! queues and the channel bookkeeping are the caller's, reached through `EncodeOps` and
//! `DecodeOps`.
