# SPDX-License-Identifier: GPL-2.0-only
#
# Two makefiles in one:
#  - inside Kbuild (the kernel build descends here as drivers/accel/qaic_rs, or `make M=`) it only
#    describes the qaic_rs module;
#  - run directly it is the project's entry point: `make demo`, `make check` and helpers.

ifneq ($(KERNELRELEASE),)

obj-$(CONFIG_DRM_ACCEL_QAIC_RS) += qaic_rs.o
qaic_rs-y := qaic.o

else

.PHONY: all demo check check-debug kernel-deb check-deb setup kernel kunit smoke summary clean help

all: kernel

help:
	@echo "make demo    build everything, boot QEMU with the driver (see README.md)"
	@echo "make check   run every test: KUnit, guest smoke test, cargo tests"
	@echo "make check-debug  the qaic_rs guest tests on a KASAN/lockdep/kmemleak kernel"
	@echo "make kernel-deb   installable Debian kernel packages with qaic_rs (Documentation/operator.rst)"
	@echo "make check-deb    the end-to-end suite on the kernel of those packages"

setup:
	scripts/setup.sh

kernel: setup
	scripts/build-kernel.sh

demo: kernel
	scripts/demo.sh

check:
	scripts/check.sh

check-debug:
	scripts/check-debug.sh

kernel-deb:
	scripts/kernel-deb.sh

check-deb:
	scripts/check-deb.sh

endif
