// SPDX-License-Identifier: GPL-2.0-only
/*
 * prime-foreign: a buffer exported by one driver's card and imported into the other's
 * (tests/guest/rs-lifecycle.sh, coexist mode, both drivers loaded on two cards).
 *
 *   prime-foreign EXPORTER-NODE IMPORTER-NODE
 *
 * Creates a buffer on EXPORTER-NODE, exports it (PRIME), imports it on IMPORTER-NODE and asks
 * the importer for its mmap offset: both drivers answer 0 for an imported buffer (they refuse
 * to map it) and the import keeps the size. Prints PASS/FAIL lines; exit 1 on a failure.
 * The ioctl ABI is written down here (no kernel or runtime headers).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct create_bo { uint64_t size; uint32_t handle, pad; };
struct mmap_bo { uint32_t handle, pad; uint64_t offset; };
struct prime_handle { uint32_t handle, flags; int32_t fd; };

#define IOCTL_CREATE_BO _IOWR('d', 0x41, struct create_bo)
#define IOCTL_MMAP_BO _IOWR('d', 0x42, struct mmap_bo)
#define IOCTL_PRIME_HANDLE_TO_FD _IOWR('d', 0x2d, struct prime_handle)
#define IOCTL_PRIME_FD_TO_HANDLE _IOWR('d', 0x2e, struct prime_handle)

static int fails;

static void check(int ok, const char *name, const char *why)
{
	printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name, ok ? "" : " - ", ok ? "" : why);
	fails += !ok;
}

int main(int argc, char **argv)
{
	char why[128];

	if (argc != 3) {
		fprintf(stderr, "usage: prime-foreign EXPORTER-NODE IMPORTER-NODE\n");
		return 2;
	}
	int ex = open(argv[1], O_RDWR), im = open(argv[2], O_RDWR);
	snprintf(why, sizeof(why), "%s", strerror(errno));
	check(ex >= 0 && im >= 0, "open-both", why);
	if (ex < 0 || im < 0)
		return 1;

	struct create_bo c = { .size = 3 * 4096 };
	int r = ioctl(ex, IOCTL_CREATE_BO, &c);
	snprintf(why, sizeof(why), "%s", strerror(errno));
	check(r == 0, "create", why);
	struct prime_handle p = { .handle = c.handle, .flags = O_CLOEXEC | O_RDWR, .fd = -1 };
	r = r ?: ioctl(ex, IOCTL_PRIME_HANDLE_TO_FD, &p);
	snprintf(why, sizeof(why), "%s", strerror(errno));
	check(r == 0 && p.fd >= 0, "export", why);
	struct prime_handle q = { .fd = p.fd };
	r = r ?: ioctl(im, IOCTL_PRIME_FD_TO_HANDLE, &q);
	snprintf(why, sizeof(why), "%s", strerror(errno));
	check(r == 0, "import", why);
	struct mmap_bo m = { .handle = q.handle, .offset = 0x1234 };
	r = r ?: ioctl(im, IOCTL_MMAP_BO, &m);
	snprintf(why, sizeof(why), "r=%d (%s), offset %#llx", r, strerror(errno), (unsigned long long)m.offset);
	check(r == 0 && m.offset == 0, "imported-mmap-offset-0", why);
	return fails != 0;
}
