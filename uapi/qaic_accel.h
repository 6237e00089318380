/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * qaic_accel.h - user-space interface of the Qualcomm Cloud AI 100 (AIC100)
 * accelerator driver.
 *
 * Written for the qaic-rs project. It describes the same binary interface as
 * the "qaic" driver that ships with Linux (identical ioctl numbers, structure
 * and member names, sizes, offsets and constant values), so that programs
 * written against the in-tree header build and run unchanged. Both the C
 * driver and the Rust driver (qaic_rs) are compiled against this file.
 *
 * Every pointer crossing this interface is carried in a __u64, and every
 * structure is laid out with explicit padding, so 32-bit and 64-bit callers
 * see the same layout and no compat translation is needed.
 *
 * All ioctls are issued on the accel node /dev/accel/accel<N>. Besides the
 * driver specific ones below, the generic DRM ioctls GEM_CLOSE,
 * PRIME_HANDLE_TO_FD, PRIME_FD_TO_HANDLE and VERSION work on that node.
 */

#ifndef QAIC_ACCEL_H_
#define QAIC_ACCEL_H_

#include "drm.h"

#if defined(__cplusplus)
extern "C" {
#endif

/*
 * Size in bytes of the transaction buffer of a MANAGE call (4 KiB). The
 * device response is written back into the caller's buffer, so the buffer
 * handed to DRM_IOCTL_QAIC_MANAGE should always be this large. SZ_4K is the
 * kernel's constant from <linux/sizes.h>; user space that uses this macro
 * has to provide SZ_4K (4096) itself.
 */
#define QAIC_MANAGE_MAX_MSG_LENGTH SZ_4K

/* Bits of qaic_sem.flags: hold the command until earlier DMA has finished. */
#define QAIC_SEM_INSYNCFENCE	2	/* wait for host-to-device DMA */
#define QAIC_SEM_OUTSYNCFENCE	1	/* wait for device-to-host DMA */

/* Values of qaic_sem.cmd. */
#define QAIC_SEM_NOP		0	/* no operation */
#define QAIC_SEM_INIT		1	/* set the semaphore to val */
#define QAIC_SEM_INC		2	/* add one */
#define QAIC_SEM_DEC		3	/* subtract one */
#define QAIC_SEM_WAIT_EQUAL	4	/* block until semaphore == val */
#define QAIC_SEM_WAIT_GT_EQ	5	/* block until semaphore >= val */
#define QAIC_SEM_WAIT_GT_0	6	/* block until semaphore > 0, then decrement */

/*
 * Transaction types (qaic_manage_trans_hdr.type). User space submits the
 * *_FROM_USR kinds and receives the *_FROM_DEV kinds back; the *_TO_DEV kinds
 * and the remaining values name messages between the driver and the device
 * firmware and are listed so that both sides share one numbering.
 */
#define QAIC_TRANS_UNDEFINED			0
#define QAIC_TRANS_PASSTHROUGH_FROM_USR		1
#define QAIC_TRANS_PASSTHROUGH_TO_USR		2
#define QAIC_TRANS_PASSTHROUGH_FROM_DEV		3
#define QAIC_TRANS_PASSTHROUGH_TO_DEV		4
#define QAIC_TRANS_DMA_XFER_FROM_USR		5
#define QAIC_TRANS_DMA_XFER_TO_DEV		6
#define QAIC_TRANS_ACTIVATE_FROM_USR		7
#define QAIC_TRANS_ACTIVATE_FROM_DEV		8
#define QAIC_TRANS_ACTIVATE_TO_DEV		9
#define QAIC_TRANS_DEACTIVATE_FROM_USR		10
#define QAIC_TRANS_DEACTIVATE_FROM_DEV		11
#define QAIC_TRANS_STATUS_FROM_USR		12
#define QAIC_TRANS_STATUS_TO_USR		13
#define QAIC_TRANS_STATUS_FROM_DEV		14
#define QAIC_TRANS_STATUS_TO_DEV		15
#define QAIC_TRANS_TERMINATE_FROM_DEV		16
#define QAIC_TRANS_TERMINATE_TO_DEV		17
#define QAIC_TRANS_DMA_XFER_CONT		18
#define QAIC_TRANS_VALIDATE_PARTITION_FROM_DEV	19
#define QAIC_TRANS_VALIDATE_PARTITION_TO_DEV	20

/**
 * struct qaic_manage_trans_hdr - common prefix of every MANAGE transaction
 * @type: kind of transaction, one of QAIC_TRANS_*.
 * @len: size in bytes of the whole transaction, this prefix included.
 *
 * Transactions are packed back to back in the MANAGE buffer; the next one
 * starts @len bytes after the start of this one.
 */
struct qaic_manage_trans_hdr {
	__u32 type;
	__u32 len;
};

/**
 * struct qaic_manage_trans_passthrough - opaque firmware command
 * @hdr: @hdr.type is QAIC_TRANS_PASSTHROUGH_FROM_USR in a request and
 *	 QAIC_TRANS_PASSTHROUGH_FROM_DEV in a response.
 * @data: command bytes, forwarded to the device without interpretation.
 *	  They must be little endian and @hdr.len must be a multiple of 8.
 */
struct qaic_manage_trans_passthrough {
	struct qaic_manage_trans_hdr hdr;
	__u8 data[];
};

/**
 * struct qaic_manage_trans_dma_xfer - hand a user buffer to the device
 * @hdr: @hdr.type is QAIC_TRANS_DMA_XFER_FROM_USR, @hdr.len is 32.
 * @tag: caller chosen value; firmware commands use it to refer to this data.
 * @pad: padding, not interpreted.
 * @addr: user virtual address of the first byte to transfer.
 * @size: number of bytes to transfer, not zero.
 *
 * The driver pins the memory for the duration of the call and describes it
 * to the device, which reads it before it answers.
 */
struct qaic_manage_trans_dma_xfer {
	struct qaic_manage_trans_hdr hdr;
	__u32 tag;
	__u32 pad;
	__u64 addr;
	__u64 size;
};

/**
 * struct qaic_manage_trans_activate_to_dev - ask for a DMA bridge channel
 * @hdr: @hdr.type is QAIC_TRANS_ACTIVATE_FROM_USR, @hdr.len is 24.
 * @queue_size: depth of the channel's request and response queues, in
 *		elements; must not be zero.
 * @eventfd: ignored by the driver.
 * @options: handed to the device unchanged.
 * @pad: must be zero.
 */
struct qaic_manage_trans_activate_to_dev {
	struct qaic_manage_trans_hdr hdr;
	__u32 queue_size;
	__u32 eventfd;
	__u32 options;
	__u32 pad;
};

/**
 * struct qaic_manage_trans_activate_from_dev - answer to an activate request
 * @hdr: @hdr.type is QAIC_TRANS_ACTIVATE_FROM_DEV.
 * @status: zero when the device granted the channel.
 * @dbc_id: number of the DMA bridge channel now owned by the caller.
 * @options: device specific value returned with the answer.
 */
struct qaic_manage_trans_activate_from_dev {
	struct qaic_manage_trans_hdr hdr;
	__u32 status;
	__u32 dbc_id;
	__u64 options;
};

/**
 * struct qaic_manage_trans_deactivate - give a DMA bridge channel back
 * @hdr: @hdr.type is QAIC_TRANS_DEACTIVATE_FROM_USR, @hdr.len is 16.
 * @dbc_id: channel to release; the caller must own it.
 * @pad: must be zero.
 */
struct qaic_manage_trans_deactivate {
	struct qaic_manage_trans_hdr hdr;
	__u32 dbc_id;
	__u32 pad;
};

/**
 * struct qaic_manage_trans_status_to_dev - query the control protocol version
 * @hdr: @hdr.type is QAIC_TRANS_STATUS_FROM_USR, @hdr.len should be 8.
 */
struct qaic_manage_trans_status_to_dev {
	struct qaic_manage_trans_hdr hdr;
};

/**
 * struct qaic_manage_trans_status_from_dev - answer to a status query
 * @hdr: @hdr.type is QAIC_TRANS_STATUS_FROM_DEV.
 * @major: major version of the control protocol spoken by the device.
 * @minor: minor version of that protocol.
 * @status: zero on success.
 * @status_flags: device properties; bit 0 set means messages carry a CRC.
 */
struct qaic_manage_trans_status_from_dev {
	struct qaic_manage_trans_hdr hdr;
	__u16 major;
	__u16 minor;
	__u32 status;
	__u64 status_flags;
};

/**
 * struct qaic_manage_msg - argument of DRM_IOCTL_QAIC_MANAGE
 * @len: on entry the number of transaction bytes at @data; on return the
 *	 number of response bytes written there.
 * @count: on entry the number of transactions at @data; on return the
 *	   number of transactions in the device's answer.
 * @data: user pointer to the transactions. The answer overwrites them, so
 *	  the buffer must provide QAIC_MANAGE_MAX_MSG_LENGTH bytes.
 */
struct qaic_manage_msg {
	__u32 len;
	__u32 count;
	__u64 data;
};

/**
 * struct qaic_create_bo - argument of DRM_IOCTL_QAIC_CREATE_BO
 * @size: requested size in bytes; the driver rounds it up to whole pages.
 * @handle: returned GEM handle of the new, zero filled buffer object.
 * @pad: must be zero.
 */
struct qaic_create_bo {
	__u64 size;
	__u32 handle;
	__u32 pad;
};

/**
 * struct qaic_mmap_bo - argument of DRM_IOCTL_QAIC_MMAP_BO
 * @handle: GEM handle of the buffer object to map.
 * @pad: padding, should be zero.
 * @offset: returned offset to pass to mmap() on the same file descriptor.
 */
struct qaic_mmap_bo {
	__u32 handle;
	__u32 pad;
	__u64 offset;
};

/**
 * struct qaic_sem - one semaphore operation attached to a slice
 * @val: operand of the operation; 12 bits.
 * @index: which of the channel's semaphores to use; 5 bits.
 * @presync: 1 to run the operation before the slice's data transfer,
 *	     0 to run it afterwards.
 * @cmd: the operation, one of QAIC_SEM_*.
 * @flags: QAIC_SEM_INSYNCFENCE and/or QAIC_SEM_OUTSYNCFENCE.
 * @pad: must be zero.
 *
 * A structure that is all zeroes means "no semaphore operation".
 */
struct qaic_sem {
	__u16 val;
	__u8  index;
	__u8  presync;
	__u8  cmd;
	__u8  flags;
	__u16 pad;
};

/**
 * struct qaic_attach_slice_entry - one slice of a buffer object
 * @size: bytes moved by this slice; zero for a slice that only performs its
 *	  semaphore and doorbell actions.
 * @sem0: first semaphore operation.
 * @sem1: second semaphore operation.
 * @sem2: third semaphore operation.
 * @sem3: fourth semaphore operation.
 * @dev_addr: device address the slice is written to or read from.
 * @db_addr: device address of the doorbell written after the transfer.
 * @db_data: value written to the doorbell.
 * @db_len: doorbell width in bits (8, 16 or 32), or 0 for no doorbell.
 * @offset: where the slice starts inside the buffer object, in bytes.
 */
struct qaic_attach_slice_entry {
	__u64 size;
	struct qaic_sem	sem0;
	struct qaic_sem	sem1;
	struct qaic_sem	sem2;
	struct qaic_sem	sem3;
	__u64 dev_addr;
	__u64 db_addr;
	__u32 db_data;
	__u32 db_len;
	__u64 offset;
};

/**
 * struct qaic_attach_slice_hdr - what a set of slices applies to
 * @count: number of entries in the slice array, at least one.
 * @dbc_id: DMA bridge channel the buffer object is bound to.
 * @handle: GEM handle of the buffer object.
 * @dir: 1 for host-to-device (DMA_TO_DEVICE), 2 for device-to-host
 *	 (DMA_FROM_DEVICE).
 * @size: obsolete; the driver uses the size of the buffer object.
 */
struct qaic_attach_slice_hdr {
	__u32 count;
	__u32 dbc_id;
	__u32 handle;
	__u32 dir;
	__u64 size;
};

/**
 * struct qaic_attach_slice - argument of DRM_IOCTL_QAIC_ATTACH_SLICE_BO
 * @hdr: buffer object, channel and direction.
 * @data: user pointer to @hdr.count struct qaic_attach_slice_entry.
 */
struct qaic_attach_slice {
	struct qaic_attach_slice_hdr hdr;
	__u64 data;
};

/**
 * struct qaic_execute_entry - one buffer object to queue
 * @handle: GEM handle of a sliced buffer object.
 * @dir: direction, 1 or 2 as in qaic_attach_slice_hdr; informational only.
 */
struct qaic_execute_entry {
	__u32 handle;
	__u32 dir;
};

/**
 * struct qaic_partial_execute_entry - one buffer object to queue, shortened
 * @handle: GEM handle of a sliced buffer object.
 * @dir: direction, 1 or 2 as in qaic_attach_slice_hdr; informational only.
 * @resize: only the first @resize bytes of the object take part in data
 *	    transfers; at most the object's size. Zero disables all data
 *	    transfers of this submission while keeping semaphores, doorbells
 *	    and completions.
 */
struct qaic_partial_execute_entry {
	__u32 handle;
	__u32 dir;
	__u64 resize;
};

/**
 * struct qaic_execute_hdr - common part of an execute request
 * @count: number of entries in the array, at least one.
 * @dbc_id: DMA bridge channel to queue the buffer objects on.
 */
struct qaic_execute_hdr {
	__u32 count;
	__u32 dbc_id;
};

/**
 * struct qaic_execute - argument of the EXECUTE_BO and PARTIAL_EXECUTE_BO ioctls
 * @hdr: channel and number of entries.
 * @data: user pointer to the entries: struct qaic_execute_entry for
 *	  EXECUTE_BO, struct qaic_partial_execute_entry for
 *	  PARTIAL_EXECUTE_BO.
 */
struct qaic_execute {
	struct qaic_execute_hdr hdr;
	__u64 data;
};

/**
 * struct qaic_wait - argument of DRM_IOCTL_QAIC_WAIT_BO
 * @handle: GEM handle of the buffer object to wait for.
 * @timeout: longest wait in milliseconds; 0 selects the driver's default.
 * @dbc_id: DMA bridge channel the object was queued on.
 * @pad: must be zero.
 */
struct qaic_wait {
	__u32 handle;
	__u32 timeout;
	__u32 dbc_id;
	__u32 pad;
};

/**
 * struct qaic_perf_stats_hdr - common part of a statistics request
 * @count: number of entries in the array.
 * @pad: padding, should be zero.
 * @dbc_id: DMA bridge channel the buffer objects were queued on.
 */
struct qaic_perf_stats_hdr {
	__u16 count;
	__u16 pad;
	__u32 dbc_id;
};

/**
 * struct qaic_perf_stats - argument of DRM_IOCTL_QAIC_PERF_STATS_BO
 * @hdr: channel and number of entries.
 * @data: user pointer to @hdr.count struct qaic_perf_stats_entry, filled
 *	  in by the driver.
 */
struct qaic_perf_stats {
	struct qaic_perf_stats_hdr hdr;
	__u64 data;
};

/**
 * struct qaic_perf_stats_entry - timing of the last submission of one object
 * @handle: GEM handle of the buffer object (input).
 * @queue_level_before: queue elements already pending when it was queued.
 * @num_queue_element: queue elements the submission used.
 * @submit_latency_us: microseconds the driver spent queueing it.
 * @device_latency_us: microseconds from queueing to completion, or 0 when
 *		       it has not completed yet.
 * @pad: padding, should be zero.
 */
struct qaic_perf_stats_entry {
	__u32 handle;
	__u32 queue_level_before;
	__u32 num_queue_element;
	__u32 submit_latency_us;
	__u32 device_latency_us;
	__u32 pad;
};

/**
 * struct qaic_detach_slice - argument of DRM_IOCTL_QAIC_DETACH_SLICE_BO
 * @handle: GEM handle of a sliced buffer object that is not in flight.
 * @pad: must be zero.
 */
struct qaic_detach_slice {
	__u32 handle;
	__u32 pad;
};

/* Driver specific ioctl numbers, relative to DRM_COMMAND_BASE. */
#define DRM_QAIC_MANAGE				0x00
#define DRM_QAIC_CREATE_BO			0x01
#define DRM_QAIC_MMAP_BO			0x02
#define DRM_QAIC_ATTACH_SLICE_BO		0x03
#define DRM_QAIC_EXECUTE_BO			0x04
#define DRM_QAIC_PARTIAL_EXECUTE_BO		0x05
#define DRM_QAIC_WAIT_BO			0x06
#define DRM_QAIC_PERF_STATS_BO			0x07
#define DRM_QAIC_DETACH_SLICE_BO		0x08

#define DRM_IOCTL_QAIC_MANAGE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_QAIC_MANAGE, struct qaic_manage_msg)
#define DRM_IOCTL_QAIC_CREATE_BO \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_QAIC_CREATE_BO, struct qaic_create_bo)
#define DRM_IOCTL_QAIC_MMAP_BO \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_QAIC_MMAP_BO, struct qaic_mmap_bo)
#define DRM_IOCTL_QAIC_ATTACH_SLICE_BO \
	DRM_IOW(DRM_COMMAND_BASE + DRM_QAIC_ATTACH_SLICE_BO, struct qaic_attach_slice)
#define DRM_IOCTL_QAIC_EXECUTE_BO \
	DRM_IOW(DRM_COMMAND_BASE + DRM_QAIC_EXECUTE_BO, struct qaic_execute)
#define DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO \
	DRM_IOW(DRM_COMMAND_BASE + DRM_QAIC_PARTIAL_EXECUTE_BO, struct qaic_execute)
#define DRM_IOCTL_QAIC_WAIT_BO \
	DRM_IOW(DRM_COMMAND_BASE + DRM_QAIC_WAIT_BO, struct qaic_wait)
#define DRM_IOCTL_QAIC_PERF_STATS_BO \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_QAIC_PERF_STATS_BO, struct qaic_perf_stats)
#define DRM_IOCTL_QAIC_DETACH_SLICE_BO \
	DRM_IOW(DRM_COMMAND_BASE + DRM_QAIC_DETACH_SLICE_BO, struct qaic_detach_slice)

#if defined(__cplusplus)
}
#endif

#endif /* QAIC_ACCEL_H_ */
