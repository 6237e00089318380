// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * c-datapath: the data path of the emulated AIC100 through the uapi (uapi/qaic_accel.h), run
 * in a guest on the upstream C qaic driver: load constants and a network whose ELF carries the
 * compute stand-in (Documentation/workload.rst), activate it, create/mmap/attach BOs, execute
 * and partially execute inferences, wait, read perf stats, check every output against a CPU
 * reference, detach, deactivate, unload. Prints "PASS name: ..." / "FAIL name: ..." lines;
 * exit 1 if any check failed.
 *
 *   c-datapath [ROUNDS]     (default 20 rounds of 4 inferences)
 *
 * The NNC command layouts and the workload format are encoded here independently of the
 * emulator and the runtime.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "qaic_accel.h"

#define PAIRS 4
#define IN 64
#define HID 32
#define OUT 16
#define DONE_SEM 5
#define IN_OFF 0x0
#define OUT_OFF 0x10000
#define DB_OFF 0x100

static int fails;
static uint8_t msg[4096];

static void check(int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;
	printf("%s %s: ", ok ? "PASS" : "FAIL", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	fails += !ok;
}

static void p32(uint8_t *b, int o, uint32_t v) { memcpy(b + o, &v, 4); }
static void p64(uint8_t *b, int o, uint64_t v) { memcpy(b + o, &v, 8); }
static uint32_t g32(const uint8_t *b, int o) { uint32_t v; memcpy(&v, b + o, 4); return v; }
static uint64_t g64(const uint8_t *b, int o) { uint64_t v; memcpy(&v, b + o, 8); return v; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffff;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320 & -(c & 1));
	}
	return ~c;
}

/* ---- the model: constants, workload section, ELF, CPU reference ---- */

struct layer { uint32_t in, out; uint64_t w, b; uint32_t mult; uint8_t shift, act; };
static const struct layer layers[2] = {
	{ IN, HID, 0, IN * HID, 1, 6, 1 },
	{ HID, OUT, IN * HID + 4 * HID, IN * HID + 4 * HID + HID * OUT, 3, 5, 0 },
};
#define CONSTANTS_LEN (IN * HID + 4 * HID + HID * OUT + 4 * OUT)
static uint8_t constants[CONSTANTS_LEN];

static void make_constants(void)
{
	for (int l = 0; l < 2; l++) {
		for (uint32_t i = 0; i < layers[l].in * layers[l].out; i++)
			constants[layers[l].w + i] = (uint8_t)(int8_t)((int)(rnd() % 255) - 127);
		for (uint32_t j = 0; j < layers[l].out; j++)
			p32(constants, layers[l].b + 4 * j, (uint32_t)((int)(rnd() % 4001) - 2000));
	}
}

static void reference(const int8_t *x, int8_t *y)
{
	int8_t a[HID > OUT ? HID : OUT], b[IN];
	memcpy(b, x, IN);
	for (int l = 0; l < 2; l++) {
		const struct layer *L = &layers[l];
		int64_t lo = L->act ? 0 : -128;
		for (uint32_t j = 0; j < L->out; j++) {
			int64_t acc = (int32_t)g32(constants, L->b + 4 * j);
			for (uint32_t i = 0; i < L->in; i++)
				acc += (int64_t)(int8_t)constants[L->w + j * L->in + i] * b[i];
			int64_t p = acc * (int64_t)L->mult;
			int64_t r = L->shift ? (p + ((int64_t)1 << (L->shift - 1))) >> L->shift : p;
			a[j] = (int8_t)(r < lo ? lo : r > 127 ? 127 : r);
		}
		memcpy(b, a, L->out);
	}
	memcpy(y, b, OUT);
}

static size_t make_section(uint8_t *s)
{
	uint8_t *t = s + 64;
	memset(s, 0, 64 + 2 * 32);
	for (int l = 0; l < 2; l++) {
		uint8_t *d = t + 32 * l;
		p32(d, 0, layers[l].in);
		p32(d, 4, layers[l].out);
		p64(d, 8, layers[l].w);
		p64(d, 16, layers[l].b);
		p32(d, 24, layers[l].mult);
		d[28] = layers[l].shift;
		d[29] = layers[l].act;
	}
	memcpy(s, "QEMUWKLD", 8);
	s[8] = 1;			/* version 1.0 */
	p32(s, 12, 64);
	p32(s, 16, 32);
	p32(s, 20, 2);
	p32(s, 24, IN_OFF);
	p32(s, 28, OUT_OFF);
	p32(s, 32, DB_OFF);
	s[36] = DONE_SEM;
	p32(s, 40, 0);			/* nominal latency */
	p32(s, 44, CONSTANTS_LEN);
	p32(s, 48, crc32(t, 64));
	return 64 + 64;
}

/* ELF64 LE: null, .text, qaic_emu_workload, .shstrtab */
static size_t make_elf(uint8_t *e)
{
	static const char str[] = "\0.text\0qaic_emu_workload\0.shstrtab";
	const uint32_t name[4] = { 0, 1, 7, 25 };
	uint8_t sec[256];
	size_t slen = make_section(sec), off = 64, o[4] = { 0 }, n[4] = { 0 };
	memset(e, 0, 4096);
	o[1] = off; n[1] = 16; memset(e + off, 0x5a, 16); off += 16;
	o[2] = off; n[2] = slen; memcpy(e + off, sec, slen); off += (slen + 7) & ~7ul;
	o[3] = off; n[3] = sizeof(str); memcpy(e + off, str, sizeof(str)); off += (sizeof(str) + 7) & ~7ul;
	size_t shoff = off;
	for (int i = 1; i < 4; i++) {
		uint8_t *h = e + shoff + 64 * i;
		p32(h, 0, name[i]);
		p32(h, 4, i == 3 ? 3 : 1);
		p64(h, 0x18, o[i]);
		p64(h, 0x20, n[i]);
		p64(h, 0x30, 1);
	}
	memcpy(e, "\x7f" "ELF", 4);
	e[4] = 2; e[5] = 1; e[6] = 1;
	e[0x10] = 2; e[0x12] = 164; e[0x14] = 1;
	p64(e, 0x28, shoff);
	e[0x34] = 64; e[0x3a] = 64; e[0x3c] = 4; e[0x3e] = 3;
	return shoff + 4 * 64;
}

/* ---- MANAGE helpers ---- */

static int manage(int fd, uint32_t len, uint32_t count, struct qaic_manage_msg *m)
{
	m->len = len;
	m->count = count;
	m->data = (uint64_t)(uintptr_t)msg;
	return ioctl(fd, DRM_IOCTL_QAIC_MANAGE, m) ? -errno : 0;
}

/* Start a passthrough of `cmdlen` command bytes (+8 trailing zero bytes) at msg[0]. */
static uint8_t *pt(uint32_t cmdlen)
{
	memset(msg, 0, sizeof(msg));
	p32(msg, 0, QAIC_TRANS_PASSTHROUGH_FROM_USR);
	p32(msg, 4, 8 + cmdlen + 8);
	return msg + 8;
}

static void dma(uint32_t at, uint32_t tag, const void *p, uint64_t size)
{
	struct qaic_manage_trans_dma_xfer x = { { QAIC_TRANS_DMA_XFER_FROM_USR, sizeof(x) }, tag, 0,
						(uint64_t)(uintptr_t)p, size };
	memcpy(msg + at, &x, sizeof(x));
}

/* NNC answer in the first returned passthrough */
static const uint8_t *answer(void) { return msg + 8; }

static uint32_t unload(int fd, uint32_t cmd, uint32_t id)
{
	struct qaic_manage_msg m;
	uint8_t *c = pt(8);
	p32(c, 0, cmd);
	p32(c, 4, id);
	int r = manage(fd, 24, 1, &m);
	return r ? (uint32_t)r : g32(answer(), 4);
}

/* ---- data path ---- */

struct bo { uint32_t handle; uint8_t *p; };

static int create_bo(int fd, struct bo *b, uint64_t size)
{
	struct qaic_create_bo c = { .size = size };
	struct qaic_mmap_bo m = { 0 };
	if (ioctl(fd, DRM_IOCTL_QAIC_CREATE_BO, &c))
		return -errno;
	m.handle = c.handle;
	if (ioctl(fd, DRM_IOCTL_QAIC_MMAP_BO, &m))
		return -errno;
	b->handle = c.handle;
	b->p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, m.offset);
	return b->p == MAP_FAILED ? -errno : 0;
}

static int attach(int fd, uint32_t handle, uint32_t dbc, uint32_t dir, struct qaic_attach_slice_entry *e)
{
	struct qaic_attach_slice a = { { 1, dbc, handle, dir, 4096 }, (uint64_t)(uintptr_t)e };
	return ioctl(fd, DRM_IOCTL_QAIC_ATTACH_SLICE_BO, &a) ? -errno : 0;
}

static int execute(int fd, uint32_t dbc, struct bo *in, struct bo *out, int n, const uint64_t *resize)
{
	struct qaic_partial_execute_entry pe[2 * PAIRS];
	struct qaic_execute_entry fe[2 * PAIRS];
	for (int i = 0; i < n; i++) {
		fe[2 * i] = (struct qaic_execute_entry){ in[i].handle, 1 };
		fe[2 * i + 1] = (struct qaic_execute_entry){ out[i].handle, 2 };
		if (resize) {
			pe[2 * i] = (struct qaic_partial_execute_entry){ in[i].handle, 1, resize[0] };
			pe[2 * i + 1] = (struct qaic_partial_execute_entry){ out[i].handle, 2, resize[1] };
		}
	}
	struct qaic_execute x = { { 2 * n, dbc }, (uint64_t)(uintptr_t)(resize ? (void *)pe : (void *)fe) };
	return ioctl(fd, resize ? DRM_IOCTL_QAIC_PARTIAL_EXECUTE_BO : DRM_IOCTL_QAIC_EXECUTE_BO, &x) ? -errno : 0;
}

static int wait_bo(int fd, uint32_t dbc, uint32_t handle)
{
	struct qaic_wait w = { handle, 5000, dbc, 0 };
	return ioctl(fd, DRM_IOCTL_QAIC_WAIT_BO, &w) ? -errno : 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20;
	struct qaic_manage_msg m;
	static uint8_t elf[4096];
	int r;

	int fd = open("/dev/accel/accel0", O_RDWR);
	if (fd < 0) {
		perror("open /dev/accel/accel0");
		return 1;
	}
	make_constants();
	size_t elf_len = make_elf(elf);

	/* LOAD_CONSTANTS_EX: pid, name[64], descriptor_len 24, pad, {static, dynamic, ecc...} */
	uint8_t *c = pt(104);
	p32(c, 0, 15);
	p32(c, 4, getpid());
	strcpy((char *)c + 8, "c-datapath-constants");
	p32(c, 72, 24);
	p64(c, 80, CONSTANTS_LEN);
	r = manage(fd, 8 + 104 + 8, 1, &m);
	uint32_t cid = g32(answer(), 4);
	check(r == 0 && g32(answer(), 0) == 2 && g32(answer(), 8) == 0 && cid, "load-constants-ex",
	      "r=%d type=%u status=%d id=%u", r, g32(answer(), 0), (int)g32(answer(), 8), cid);

	/* LOAD_CONSTANTS_PAYLOAD + DMA_XFER, two parts */
	uint32_t half = CONSTANTS_LEN / 2;
	for (int k = 0; k < 2; k++) {
		uint64_t off = k ? half : 0, len = k ? CONSTANTS_LEN - half : half;
		c = pt(32);
		p32(c, 0, 16); p32(c, 4, getpid()); p32(c, 8, 10 + k); p32(c, 12, cid);
		p64(c, 16, len); p64(c, 24, off);
		dma(8 + 32 + 8, 10 + k, constants + off, len);
		r = manage(fd, 48 + 32, 2, &m);
		check(r == 0 && g32(answer(), 0) == 2 && g32(answer(), 8) == 0 && g32(answer(), 4) == cid,
		      k ? "load-constants-payload-2" : "load-constants-payload-1", "r=%d status=%d", r,
		      (int)g32(answer(), 8));
	}

	/* LOAD_ELF + DMA_XFER */
	c = pt(96);
	p32(c, 0, 3); p32(c, 4, 20); p32(c, 8, getpid());
	strcpy((char *)c + 16, "c-datapath-mlp");
	p64(c, 80, elf_len);
	dma(8 + 96 + 8, 20, elf, elf_len);
	r = manage(fd, 112 + 32, 2, &m);
	uint32_t eid = g32(answer(), 4);
	check(r == 0 && g32(answer(), 0) == 4 && g32(answer(), 8) == 0 && eid, "load-elf",
	      "r=%d type=%u status=%d id=%u (%zu bytes)", r, g32(answer(), 0), (int)g32(answer(), 8), eid, elf_len);

	/* ACTIVATE + SETUP_VC */
	c = pt(48);
	p32(c, 0, 9); p32(c, 4, getpid()); p32(c, 8, cid); p32(c, 12, eid);
	p32(c, 20, (uint32_t)-1); p32(c, 24, 1); p32(c, 28, (uint32_t)-1); p32(c, 32, 1);
	struct qaic_manage_trans_activate_to_dev act = { { QAIC_TRANS_ACTIVATE_FROM_USR, sizeof(act) }, 64, 0, 0, 0 };
	memcpy(msg + 64, &act, sizeof(act));
	r = manage(fd, 64 + sizeof(act), 2, &m);
	const uint8_t *a = answer();
	uint32_t aid = g32(a, 8), vc = g32(a, 12);
	uint64_t ddr = g64(a, 16), mcid = g64(a, 32);
	uint32_t plen = g32(msg, 4);
	struct qaic_manage_trans_activate_from_dev fromdev;
	memcpy(&fromdev, msg + plen, sizeof(fromdev));
	check(r == 0 && m.count == 2 && g32(a, 0) == 10 && g32(a, 4) == 0 && fromdev.hdr.type == QAIC_TRANS_ACTIVATE_FROM_DEV &&
	      fromdev.status == 0 && fromdev.dbc_id == vc && vc < 16, "activate",
	      "r=%d count=%u status=%d activation %u vc %u dbc %u ddr %#llx mcid %#llx", r, m.count, (int)g32(a, 4), aid,
	      vc, fromdev.dbc_id, (unsigned long long)ddr, (unsigned long long)mcid);
	if (fails)
		return 1;

	/* BOs and slices (workload.rst "Slices the host must attach") */
	struct bo in[PAIRS], out[PAIRS];
	int ok = 1;
	for (int i = 0; i < PAIRS && ok; i++) {
		struct qaic_attach_slice_entry ei = { 0 }, eo = { 0 };
		ei.size = IN; ei.dev_addr = ddr + IN_OFF; ei.db_addr = mcid + DB_OFF; ei.db_len = 32; ei.db_data = i;
		eo.size = OUT; eo.dev_addr = ddr + OUT_OFF;
		eo.sem0 = (struct qaic_sem){ .val = 1, .index = DONE_SEM, .presync = 1, .cmd = QAIC_SEM_WAIT_GT_EQ };
		eo.sem1 = (struct qaic_sem){ .index = DONE_SEM, .cmd = QAIC_SEM_DEC };
		ok = !create_bo(fd, &in[i], 4096) && !create_bo(fd, &out[i], 4096) &&
		     !attach(fd, in[i].handle, vc, 1, &ei) && !attach(fd, out[i].handle, vc, 2, &eo);
	}
	check(ok, "create-mmap-attach", "%d input and %d output BOs on DBC %u", PAIRS, PAIRS, vc);
	if (!ok)
		return 1;

	/* Full executes: PAIRS inferences per EXECUTE_BO, checked against the CPU reference */
	int8_t x[PAIRS][IN], y[OUT], last[IN];
	int bad = 0, errs = 0;
	double t0 = now();
	for (int k = 0; k < rounds; k++) {
		for (int i = 0; i < PAIRS; i++) {
			for (int j = 0; j < IN; j++)
				x[i][j] = (int8_t)rnd();
			memcpy(in[i].p, x[i], IN);
			memset(out[i].p, 0xee, OUT);
		}
		if ((r = execute(fd, vc, in, out, PAIRS, NULL))) {
			errs++;
			printf("execute: %d\n", r);
			break;
		}
		for (int i = 0; i < PAIRS; i++) {
			if ((r = wait_bo(fd, vc, out[i].handle))) {
				errs++;
				printf("wait round %d pair %d: %d\n", k, i, r);
				continue;
			}
			reference(x[i], y);
			if (memcmp(out[i].p, y, OUT))
				bad++;
		}
	}
	double dt = now() - t0;
	memcpy(last, x[PAIRS - 1], IN);
	check(!errs && !bad, "execute-wait-compare", "%d inferences, %d wrong outputs, %d errors", rounds * PAIRS, bad, errs);
	printf("TIMING inferences-per-s %.0f (%d in %.3f s)\n", rounds * PAIRS / dt, rounds * PAIRS, dt);

	/* Perf stats of the last output BO */
	struct qaic_perf_stats_entry pe = { 0 };
	struct qaic_perf_stats ps = { { 1, 0, vc }, (uint64_t)(uintptr_t)&pe };
	pe.handle = out[PAIRS - 1].handle;
	r = ioctl(fd, DRM_IOCTL_QAIC_PERF_STATS_BO, &ps) ? -errno : 0;
	check(r == 0 && pe.num_queue_element >= 1 && pe.device_latency_us > 0, "perf-stats",
	      "r=%d queue level %u, %u elements, submit %u us, device %u us", r, pe.queue_level_before,
	      pe.num_queue_element, pe.submit_latency_us, pe.device_latency_us);

	/* Partial execute: 20 fresh input bytes, the rest stays from the previous inference */
	int8_t px[IN];
	memcpy(px, last, IN);
	for (int j = 0; j < 20; j++)
		px[j] = (int8_t)rnd();
	memcpy(in[0].p, px, 20);
	memset(in[0].p + 20, 0x77, IN - 20);	/* must not reach the device */
	memset(out[0].p, 0xee, OUT);
	uint64_t rs[2] = { 20, OUT };
	r = execute(fd, vc, in, out, 1, rs);
	int w = r ? r : wait_bo(fd, vc, out[0].handle);
	reference(px, y);
	check(!r && !w && !memcmp(out[0].p, y, OUT), "partial-execute-input", "r=%d wait=%d output %s", r, w,
	      memcmp(out[0].p, y, OUT) ? "wrong" : "matches");

	/* Partial output: only the first 8 output bytes reach the BO; input resize 0 reuses px */
	memset(out[0].p, 0xee, OUT);
	rs[0] = 0;
	rs[1] = 8;
	r = execute(fd, vc, in, out, 1, rs);
	w = r ? r : wait_bo(fd, vc, out[0].handle);
	int tail_ok = 1;
	for (int j = 8; j < OUT; j++)
		tail_ok &= out[0].p[j] == 0xee;
	check(!r && !w && !memcmp(out[0].p, y, 8) && tail_ok, "partial-execute-output", "r=%d wait=%d head %s, tail %s",
	      r, w, memcmp(out[0].p, y, 8) ? "wrong" : "ok", tail_ok ? "untouched" : "overwritten");

	/* Detach: a detached BO can no longer be executed */
	int dok = 1;
	for (int i = 0; i < PAIRS; i++) {
		struct qaic_detach_slice d = { in[i].handle, 0 }, e = { out[i].handle, 0 };
		dok &= !ioctl(fd, DRM_IOCTL_QAIC_DETACH_SLICE_BO, &d) && !ioctl(fd, DRM_IOCTL_QAIC_DETACH_SLICE_BO, &e);
	}
	r = execute(fd, vc, in, out, 1, NULL);
	check(dok && r == -EINVAL, "detach", "detach %s, execute after detach %d", dok ? "ok" : "failed", r);

	/* DEACTIVATE + TEARDOWN_VC: the device answers DEACTIVATE_FROM_DEV, the DBC is released */
	c = pt(16);
	p32(c, 0, 11); p32(c, 4, aid); p32(c, 8, 1);
	struct qaic_manage_trans_deactivate de = { { QAIC_TRANS_DEACTIVATE_FROM_USR, sizeof(de) }, vc, 0 };
	memcpy(msg + 32, &de, sizeof(de));
	r = manage(fd, 32 + sizeof(de), 2, &m);
	check(r == 0 && g32(answer(), 0) == 12 && g32(answer(), 4) == 0, "deactivate", "r=%d count=%u type=%u status=%d",
	      r, m.count, g32(answer(), 0), (int)g32(answer(), 4));
	struct qaic_attach_slice_entry ei = { .size = IN, .dev_addr = ddr };
	r = attach(fd, in[0].handle, vc, 1, &ei);
	check(r != 0, "dbc-released", "attach to the deactivated DBC: %d", r);

	/* Unload, then the misuse the device must refuse */
	uint32_t s1 = unload(fd, 7, eid), s2 = unload(fd, 5, cid), s3 = unload(fd, 7, eid);
	check(s1 == 0 && s2 == 0 && (int)s3 == -11, "unload", "elf %d constants %d, again %d", (int)s1, (int)s2, (int)s3);
	close(fd);
	return fails != 0;
}
