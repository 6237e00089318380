// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * emu-probe: guest-side probe of the emulated AIC100 through the upstream qaic uapi.
 *
 *   emu-probe            MANAGE checks (STATUS, NNC STATUS passthrough, unknown NNC command,
 *                        DMA transfer, passthrough + status, ACTIVATE, TERMINATE on close)
 *                        and the control round-trip time; exit 1 if a check failed
 *   emu-probe status ERR one MANAGE STATUS request; exit 0 if it ends with -ERR (0 = success)
 *   emu-probe bar BDF    time BAR0 reads (QTimer register) through sysfs resource0; run it
 *                        while no driver is bound (qaic claims the BAR exclusively)
 *   emu-probe bench N M  benchmark (scripts/bench-manage.sh): N STATUS round trips and M DMA
 *                        transfers of 64 MiB, each timed; prints the median of each as
 *                        "BENCH status_us=X dma64_ms=Y"; exit 1 if a request failed
 *
 * The ioctl ABI is written down here on purpose (no kernel or runtime headers): the emulator
 * side of the project encodes everything independently.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

struct manage_msg { uint32_t len, count; uint64_t data; };
/* DRM_IOWR(DRM_COMMAND_BASE + 0, struct manage_msg) */
#define IOCTL_MANAGE _IOWR('d', 0x40, struct manage_msg)

enum { T_PT_USR = 1, T_PT_DEV = 3, T_DMA_USR = 5, T_ACT_USR = 7, T_ACT_DEV = 8,
       T_STATUS_USR = 12, T_STATUS_DEV = 14 };

static uint8_t buf[4096];
static int fails;

static void put32(int o, uint32_t v) { memcpy(buf + o, &v, 4); }
static void put64(int o, uint64_t v) { memcpy(buf + o, &v, 8); }
static uint32_t get32(int o) { uint32_t v; memcpy(&v, buf + o, 4); return v; }
static uint16_t get16(int o) { uint16_t v; memcpy(&v, buf + o, 2); return v; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static void check(int ok, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static void check(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;
	printf("%s %s: ", ok ? "PASS" : "FAIL", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fails += !ok;
}

static int manage(int fd, uint32_t len, uint32_t count, struct manage_msg *m)
{
	m->len = len;
	m->count = count;
	m->data = (uint64_t)(uintptr_t)buf;
	return ioctl(fd, IOCTL_MANAGE, m) ? -errno : 0;
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

/* DMA-transfer `sz` bytes (tag `tag`) and print the CRC the emulator must log for it. */
static int dma_xfer(int fd, uint32_t tag, size_t sz, const char *name)
{
	struct manage_msg m;
	uint8_t *data = malloc(sz + 8);
	if (!data)
		return -ENOMEM;
	for (size_t i = 0; i < sz + 8; i++)
		data[i] = (uint8_t)(i * 13 + (i >> 12));
	memset(buf, 0, sizeof(buf));
	put32(0, T_DMA_USR); put32(4, 32); put32(8, tag);
	put64(16, (uint64_t)(uintptr_t)(data + 5)); put64(24, sz);
	int r = manage(fd, 32, 1, &m);
	check(r == 0 && m.count == 0, name, "r=%d count=%u (%zu bytes)", r, m.count, sz);
	printf("DMA-CRC tag %u size %zu crc %#010x\n", tag, sz, crc32(data + 5, sz));
	free(data);
	return r;
}

static int bar_timing(const char *bdf)
{
	char p[128];
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/resource0", bdf);
	int fd = open(p, O_RDWR | O_SYNC);
	volatile uint32_t *bar = fd < 0 ? MAP_FAILED : mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (bar == MAP_FAILED) {
		perror(p);
		return 1;
	}
	const int n = 5000;
	uint32_t a = bar[0xa28 / 4];
	double t0 = now();
	for (int i = 0; i < n; i++)
		(void)bar[0xa28 / 4];
	double dt = now() - t0;
	uint32_t b = bar[0xa28 / 4];
	printf("TIMING bar0-read-us %.1f (%d reads, QTimer %u -> %u)\n", dt / n * 1e6, n, a, b);
	return b > a ? 0 : 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int bench(int n, int m)
{
	struct manage_msg msg;
	const size_t sz = 64 << 20;
	double *t = calloc(n > m ? n : m, sizeof(double));
	uint8_t *data = malloc(sz);
	int fd = open("/dev/accel/accel0", O_RDWR);
	int r = 0;

	if (!t || !data || fd < 0 || n < 1 || m < 1) {
		fprintf(stderr, "bench: setup failed\n");
		return 1;
	}
	memset(data, 0x5a, sz);
	for (int i = 0; i < n + 10 && !r; i++) {
		memset(buf, 0, 16);
		put32(0, T_STATUS_USR); put32(4, 8);
		double t0 = now();
		r = manage(fd, 8, 1, &msg);
		if (i >= 10) /* the first ten warm up */
			t[i - 10] = (now() - t0) * 1e6;
	}
	double status_us = median(t, n);
	for (int i = 0; i < m && !r; i++) {
		memset(buf, 0, sizeof(buf));
		put32(0, T_DMA_USR); put32(4, 32); put32(8, 90);
		put64(16, (uint64_t)(uintptr_t)data); put64(24, sz);
		double t0 = now();
		r = manage(fd, 32, 1, &msg);
		t[i] = (now() - t0) * 1e3;
	}
	if (r) {
		fprintf(stderr, "bench: request failed: %s\n", strerror(-r));
		return 1;
	}
	printf("BENCH status_us=%.1f dma64_ms=%.1f\n", status_us, median(t, m));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct manage_msg m;
	int r;

	if (argc > 2 && !strcmp(argv[1], "bar"))
		return bar_timing(argv[2]);
	if (argc > 3 && !strcmp(argv[1], "bench"))
		return bench(atoi(argv[2]), atoi(argv[3]));
	if (argc > 2 && !strcmp(argv[1], "status")) {
		int fd = open("/dev/accel/accel0", O_RDWR);
		memset(buf, 0, sizeof(buf));
		put32(0, T_STATUS_USR); put32(4, 8);
		r = fd < 0 ? -errno : manage(fd, 8, 1, &m);
		int want = -atoi(argv[2]);
		check(r == want, "status-errno", "r=%d (%s), want %d", r, strerror(-r), want);
		return r != want;
	}
	int fd = open(argc > 1 ? argv[1] : "/dev/accel/accel0", O_RDWR);
	if (fd < 0) {
		perror("open accel node");
		return 1;
	}

	memset(buf, 0, sizeof(buf));
	put32(0, T_STATUS_USR); put32(4, 8);
	r = manage(fd, 8, 1, &m);
	check(r == 0 && m.count == 1 && get32(0) == T_STATUS_DEV && get16(8) == 5 && get16(10) == 0 && get32(12) == 0,
	      "status", "r=%d count=%u type=%u version %u.%u status=%u", r, m.count, get32(0), get16(8), get16(10), get32(12));

	memset(buf, 0, sizeof(buf));
	put32(0, T_PT_USR); put32(4, 24); put32(8, 13); /* NNC STATUS_REQ + 8 trailing bytes */
	r = manage(fd, 24, 1, &m);
	check(r == 0 && m.count == 1 && get32(0) == T_PT_DEV && get32(4) == 512 && get32(8) == 14 && get32(12) == 0,
	      "nnc-status", "r=%d type=%u len=%u nnc type=%u status=%d", r, get32(0), get32(4), get32(8), (int)get32(12));
	/* device info at 16: header 8, device data at 24 */
	check(buf[16] >= 12 && get16(24 + 258) == 1 && get16(24 + 260) == 0 && get16(24 + 262) == 17 && (get32(24 + 96) >> 16) == 1,
	      "nnc-device-info", "format %u metadata %u.%u nnc %u.%u hw %#x serial '%.16s'", buf[16],
	      get16(24 + 258), get16(24 + 260), get16(24 + 262), get16(24 + 264), get32(24 + 96), (char *)buf + 24 + 100);

	memset(buf, 0, sizeof(buf));
	put32(0, T_PT_USR); put32(4, 32); put32(8, 32); /* RESOURCE_INFO: not implemented */
	r = manage(fd, 32, 1, &m);
	check(r == 0 && m.count == 1 && get32(8) == 33 && (int)get32(12) == -3,
	      "nnc-undefined", "r=%d type=%u status=%d", r, get32(8), (int)get32(12));

	dma_xfer(fd, 77, (1 << 20) + 123, "dma-xfer");
	/* 40 MiB: more address/size pairs than one message can carry -> chunked transfer */
	dma_xfer(fd, 78, 40 << 20, "dma-xfer-chunked");

	memset(buf, 0, sizeof(buf));
	put32(0, T_PT_USR); put32(4, 16); put32(8, 13);
	put32(16, T_STATUS_USR); put32(20, 8);
	r = manage(fd, 24, 2, &m);
	check(r == 0 && m.count == 2 && get32(0) == T_PT_DEV && get32(512) == T_STATUS_DEV,
	      "passthrough-and-status", "r=%d count=%u types %u %u", r, m.count, get32(0), get32(512));

	memset(buf, 0, sizeof(buf));
	put32(0, T_ACT_USR); put32(4, 24); put32(8, 64);
	r = manage(fd, 24, 1, &m);
	check(r == 0 && m.count == 1 && get32(0) == T_ACT_DEV && get32(8) == 0 && get32(12) < 16,
	      "activate", "r=%d type=%u status=%u dbc=%u", r, get32(0), get32(8), get32(12));
	close(fd); /* the driver sends TERMINATE */

	fd = open(argc > 1 ? argv[1] : "/dev/accel/accel0", O_RDWR);
	const int n = 200;
	double t0 = now();
	for (int i = 0; i < n; i++) {
		memset(buf, 0, 16);
		put32(0, T_STATUS_USR); put32(4, 8);
		r |= manage(fd, 8, 1, &m);
	}
	double dt = now() - t0;
	check(r == 0, "status-after-terminate", "r=%d", r);
	printf("TIMING control-round-trip-us %.1f (%d STATUS requests)\n", dt / n * 1e6, n);
	close(fd);
	printf("emu-probe: %d failed\n", fails);
	return fails != 0;
}
