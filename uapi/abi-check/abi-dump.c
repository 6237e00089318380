// SPDX-License-Identifier: GPL-2.0-only
/*
 * abi-dump.c - print the binary interface described by a qaic_accel.h.
 *
 * Build it once per header (the header is chosen with -DQAIC_HEADER="path")
 * and compare the outputs: identical output means identical struct sizes and
 * alignments, member offsets, sizes and signedness, ioctl request values and
 * constant values. Because the program names every struct, member and macro,
 * compiling it also proves that the header is source compatible.
 */
#include <stddef.h>
#include <stdio.h>

/* The signedness probe compares unsigned values with 0 on purpose. */
#pragma GCC diagnostic ignored "-Wtype-limits"

/* The kernel constant that QAIC_MANAGE_MAX_MSG_LENGTH expands to. */
#ifndef SZ_4K
#define SZ_4K 0x00001000
#endif

#ifndef QAIC_HEADER
#error "build with -DQAIC_HEADER='\"path/to/qaic_accel.h\"'"
#endif
#include QAIC_HEADER

static unsigned int n_structs, n_fields, n_consts, n_ioctls;

#define STRUCT(s) do {							\
	printf("struct %-40s size %3zu align %zu\n", #s,		\
	       sizeof(struct s), _Alignof(struct s));			\
	n_structs++;							\
} while (0)

/* An integer member: offset, size and signedness. */
#define FIELD(s, f) do {						\
	printf("  %-48s off %3zu size %2zu %s\n", #s "." #f,		\
	       offsetof(struct s, f), sizeof(((struct s *)0)->f),	\
	       (__typeof__(((struct s *)0)->f))-1 < 0 ? "signed" : "unsigned"); \
	n_fields++;							\
} while (0)

/* A member that is itself a struct: offset and size. */
#define SUB(s, f, t) do {						\
	struct t *chk_ = &((struct s *)0)->f;				\
	(void)chk_;							\
	printf("  %-48s off %3zu size %2zu struct %s\n", #s "." #f,	\
	       offsetof(struct s, f), sizeof(((struct s *)0)->f), #t);	\
	n_fields++;							\
} while (0)

/* A flexible array member: offset and element size. */
#define FLEX(s, f) do {							\
	printf("  %-48s off %3zu elem %2zu flexible\n", #s "." #f,	\
	       offsetof(struct s, f), sizeof(((struct s *)0)->f[0]));	\
	n_fields++;							\
} while (0)

#define CONST(c) do {							\
	printf("const %-42s = %lld\n", #c, (long long)(c));		\
	n_consts++;							\
} while (0)

#define IOCTL(c) do {							\
	printf("ioctl %-42s = 0x%08lx\n", #c, (unsigned long)(c));	\
	n_ioctls++;							\
} while (0)

int main(void)
{
	STRUCT(qaic_manage_trans_hdr);
	FIELD(qaic_manage_trans_hdr, type);
	FIELD(qaic_manage_trans_hdr, len);

	STRUCT(qaic_manage_trans_passthrough);
	SUB(qaic_manage_trans_passthrough, hdr, qaic_manage_trans_hdr);
	FLEX(qaic_manage_trans_passthrough, data);

	STRUCT(qaic_manage_trans_dma_xfer);
	SUB(qaic_manage_trans_dma_xfer, hdr, qaic_manage_trans_hdr);
	FIELD(qaic_manage_trans_dma_xfer, tag);
	FIELD(qaic_manage_trans_dma_xfer, pad);
	FIELD(qaic_manage_trans_dma_xfer, addr);
	FIELD(qaic_manage_trans_dma_xfer, size);

	STRUCT(qaic_manage_trans_activate_to_dev);
	SUB(qaic_manage_trans_activate_to_dev, hdr, qaic_manage_trans_hdr);
	FIELD(qaic_manage_trans_activate_to_dev, queue_size);
	FIELD(qaic_manage_trans_activate_to_dev, eventfd);
	FIELD(qaic_manage_trans_activate_to_dev, options);
	FIELD(qaic_manage_trans_activate_to_dev, pad);

	STRUCT(qaic_manage_trans_activate_from_dev);
	SUB(qaic_manage_trans_activate_from_dev, hdr, qaic_manage_trans_hdr);
	FIELD(qaic_manage_trans_activate_from_dev, status);
	FIELD(qaic_manage_trans_activate_from_dev, dbc_id);
	FIELD(qaic_manage_trans_activate_from_dev, options);

	STRUCT(qaic_manage_trans_deactivate);
	SUB(qaic_manage_trans_deactivate, hdr, qaic_manage_trans_hdr);
	FIELD(qaic_manage_trans_deactivate, dbc_id);
	FIELD(qaic_manage_trans_deactivate, pad);

	STRUCT(qaic_manage_trans_status_to_dev);
	SUB(qaic_manage_trans_status_to_dev, hdr, qaic_manage_trans_hdr);

	STRUCT(qaic_manage_trans_status_from_dev);
	SUB(qaic_manage_trans_status_from_dev, hdr, qaic_manage_trans_hdr);
	FIELD(qaic_manage_trans_status_from_dev, major);
	FIELD(qaic_manage_trans_status_from_dev, minor);
	FIELD(qaic_manage_trans_status_from_dev, status);
	FIELD(qaic_manage_trans_status_from_dev, status_flags);

	STRUCT(qaic_manage_msg);
	FIELD(qaic_manage_msg, len);
	FIELD(qaic_manage_msg, count);
	FIELD(qaic_manage_msg, data);

	STRUCT(qaic_create_bo);
	FIELD(qaic_create_bo, size);
	FIELD(qaic_create_bo, handle);
	FIELD(qaic_create_bo, pad);

	STRUCT(qaic_mmap_bo);
	FIELD(qaic_mmap_bo, handle);
	FIELD(qaic_mmap_bo, pad);
	FIELD(qaic_mmap_bo, offset);

	STRUCT(qaic_sem);
	FIELD(qaic_sem, val);
	FIELD(qaic_sem, index);
	FIELD(qaic_sem, presync);
	FIELD(qaic_sem, cmd);
	FIELD(qaic_sem, flags);
	FIELD(qaic_sem, pad);

	STRUCT(qaic_attach_slice_entry);
	FIELD(qaic_attach_slice_entry, size);
	SUB(qaic_attach_slice_entry, sem0, qaic_sem);
	SUB(qaic_attach_slice_entry, sem1, qaic_sem);
	SUB(qaic_attach_slice_entry, sem2, qaic_sem);
	SUB(qaic_attach_slice_entry, sem3, qaic_sem);
	FIELD(qaic_attach_slice_entry, dev_addr);
	FIELD(qaic_attach_slice_entry, db_addr);
	FIELD(qaic_attach_slice_entry, db_data);
	FIELD(qaic_attach_slice_entry, db_len);
	FIELD(qaic_attach_slice_entry, offset);

	STRUCT(qaic_attach_slice_hdr);
	FIELD(qaic_attach_slice_hdr, count);
	FIELD(qaic_attach_slice_hdr, dbc_id);
	FIELD(qaic_attach_slice_hdr, handle);
	FIELD(qaic_attach_slice_hdr, dir);
	FIELD(qaic_attach_slice_hdr, size);

	STRUCT(qaic_attach_slice);
	SUB(qaic_attach_slice, hdr, qaic_attach_slice_hdr);
	FIELD(qaic_attach_slice, data);

	STRUCT(qaic_execute_entry);
	FIELD(qaic_execute_entry, handle);
	FIELD(qaic_execute_entry, dir);

	STRUCT(qaic_partial_execute_entry);
	FIELD(qaic_partial_execute_entry, handle);
	FIELD(qaic_partial_execute_entry, dir);
	FIELD(qaic_partial_execute_entry, resize);

	STRUCT(qaic_execute_hdr);
	FIELD(qaic_execute_hdr, count);
	FIELD(qaic_execute_hdr, dbc_id);

	STRUCT(qaic_execute);
	SUB(qaic_execute, hdr, qaic_execute_hdr);
	FIELD(qaic_execute, data);

	STRUCT(qaic_wait);
	FIELD(qaic_wait, handle);
	FIELD(qaic_wait, timeout);
	FIELD(qaic_wait, dbc_id);
	FIELD(qaic_wait, pad);

	STRUCT(qaic_perf_stats_hdr);
	FIELD(qaic_perf_stats_hdr, count);
	FIELD(qaic_perf_stats_hdr, pad);
	FIELD(qaic_perf_stats_hdr, dbc_id);

	STRUCT(qaic_perf_stats);
	SUB(qaic_perf_stats, hdr, qaic_perf_stats_hdr);
	FIELD(qaic_perf_stats, data);

	STRUCT(qaic_perf_stats_entry);
	FIELD(qaic_perf_stats_entry, handle);
	FIELD(qaic_perf_stats_entry, queue_level_before);
	FIELD(qaic_perf_stats_entry, num_queue_element);
	FIELD(qaic_perf_stats_entry, submit_latency_us);
	FIELD(qaic_perf_stats_entry, device_latency_us);
	FIELD(qaic_perf_stats_entry, pad);

	STRUCT(qaic_detach_slice);
	FIELD(qaic_detach_slice, handle);
	FIELD(qaic_detach_slice, pad);

	CONST(QAIC_MANAGE_MAX_MSG_LENGTH);
	CONST(QAIC_SEM_INSYNCFENCE);
	CONST(QAIC_SEM_OUTSYNCFENCE);
	CONST(QAIC_SEM_NOP);
	CONST(QAIC_SEM_INIT);
	CONST(QAIC_SEM_INC);
	CONST(QAIC_SEM_DEC);
	CONST(QAIC_SEM_WAIT_EQUAL);
	CONST(QAIC_SEM_WAIT_GT_EQ);
	CONST(QAIC_SEM_WAIT_GT_0);
	CONST(QAIC_TRANS_UNDEFINED);
	CONST(QAIC_TRANS_PASSTHROUGH_FROM_USR);
	CONST(QAIC_TRANS_PASSTHROUGH_TO_USR);
	CONST(QAIC_TRANS_PASSTHROUGH_FROM_DEV);
	CONST(QAIC_TRANS_PASSTHROUGH_TO_DEV);
	CONST(QAIC_TRANS_DMA_XFER_FROM_USR);
	CONST(QAIC_TRANS_DMA_XFER_TO_DEV);
	CONST(QAIC_TRANS_ACTIVATE_FROM_USR);
	CONST(QAIC_TRANS_ACTIVATE_FROM_DEV);
	CONST(QAIC_TRANS_ACTIVATE_TO_DEV);
	CONST(QAIC_TRANS_DEACTIVATE_FROM_USR);
	CONST(QAIC_TRANS_DEACTIVATE_FROM_DEV);
	CONST(QAIC_TRANS_STATUS_FROM_USR);
	CONST(QAIC_TRANS_STATUS_TO_USR);
	CONST(QAIC_TRANS_STATUS_FROM_DEV);
	CONST(QAIC_TRANS_STATUS_TO_DEV);
	CONST(QAIC_TRANS_TERMINATE_FROM_DEV);
	CONST(QAIC_TRANS_TERMINATE_TO_DEV);
	CONST(QAIC_TRANS_DMA_XFER_CONT);
	CONST(QAIC_TRANS_VALIDATE_PARTITION_FROM_DEV);
	CONST(QAIC_TRANS_VALIDATE_PARTITION_TO_DEV);
	CONST(DRM_QAIC_MANAGE);
	CONST(DRM_QAIC_CREATE_BO);
	CONST(DRM_QAIC_MMAP_BO);
	CONST(DRM_QAIC_ATTACH_SLICE_BO);
	CONST(DRM_QAIC_EXECUTE_BO);
	CONST(DRM_QAIC_PARTIAL_EXECUTE_BO);
	CONST(DRM_QAIC_WAIT_BO);
	CONST(DRM_QAIC_PERF_STATS_BO);
	CONST(DRM_QAIC_DETACH_SLICE_BO);

	IOCTL(DRM_IOCTL_QAIC_MANAGE);
	IOCTL(DRM_IOCTL_QAIC_CREATE_BO);
	IOCTL(DRM_IOCTL_QAIC_MMAP_BO);
	IOCTL(DRM_IOCTL_QAIC_ATTACH_SLICE_BO);
	IOCTL(DRM_IOCTL_QAIC_EXECUTE_BO);
	IOCTL(DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO);
	IOCTL(DRM_IOCTL_QAIC_WAIT_BO);
	IOCTL(DRM_IOCTL_QAIC_PERF_STATS_BO);
	IOCTL(DRM_IOCTL_QAIC_DETACH_SLICE_BO);

	printf("summary: %u structs, %u members, %u constants, %u ioctls\n",
	       n_structs, n_fields, n_consts, n_ioctls);
	return 0;
}
