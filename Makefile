# Convenience targets; the build itself is Meson + Ninja.
BUILD ?= build
BUILD_ASAN ?= build-asan

.PHONY: all deps build build-asan test unit demo linux bench bench-img bench-img-cmd bench-img-matrix bench-storage bench-libvirt fuzz format clean \
	crash-campaign

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) >/dev/null
	@ninja -C $(BUILD)

# AddressSanitizer + UndefinedBehaviorSanitizer configuration for the tests.
build-asan: deps
	@test -f $(BUILD_ASAN)/build.ninja || \
		meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C $(BUILD_ASAN)

# The whole test suite: unit tests (plain and sanitized), system tests with the real
# binaries against the guest probe, QEMU 7.2 and the Linux test guest.
test: build build-asan
	@scripts/run-tests.sh

unit: build
	@meson test -C $(BUILD) --print-errorlogs

# Crash every kestrel-img operation that writes an image at its write/flush points and by
# kill -9 (tests/system/img_crash_campaign.py) and print the outcome table; the test suite
# runs a bounded smoke version (test_img_crash.py).  CRASH_TRIALS/CRASH_KILLS: per operation.
CRASH_TRIALS ?= 200
CRASH_KILLS ?= 20
crash-campaign: build
	@KESTREL_BUILD=$(BUILD) python3 tests/system/img_crash_campaign.py \
		--trials $(CRASH_TRIALS) --kills $(CRASH_KILLS)

# The main job: boot the demo VM (see scripts/demo.sh for what it picks and why).
demo: build
	@scripts/demo.sh

linux: deps
	@tests/guest/linux/build.sh

bench: build
	@bench/boot/run.sh

# kestrel-img vs qemu-img 7.2: convert (qcow2 and every other format both write), bench.
bench-img: build
	@bench/img/run.sh --size 2G

# kestrel-img bench vs qemu-img bench, same options: IOPS table (issue #24).
bench-img-cmd: build
	@/usr/bin/python3 bench/img/bench_cmd.py --build $(BUILD)

# The differential matrix (tests/system/img_matrix.py): total time, kestrel-img vs qemu-img 7.2.
bench-img-matrix: build
	@bench/img_matrix/run.sh

# Network storage (issue #20): kestrel-img convert to/from each protocol's real server and
# the guest probe on it, vs qemu-img / QEMU 7.2 on the same server; not part of CI.
bench-storage: build
	@bench/storage/run.sh --build $(BUILD)

# libvirt 9.0's capability probe, virsh start and destroy: Kestrel vs QEMU 7.2 as <emulator>.
bench-libvirt: build
	@bench/libvirt/run.sh --build $(BUILD)

# Firmware boot (SeaBIOS -> GRUB -> probe), Kestrel vs QEMU 7.2: minutes on PVM hosts.
bench-firmware: build
	@bench/firmware/run.sh

# libFuzzer targets (clang), each run briefly as a smoke test; see tests/fuzz/README.md.
fuzz: deps
	@test -f build-fuzz/build.ninja || CC=clang meson setup build-fuzz -Dfuzz=true >/dev/null
	@ninja -C build-fuzz
	@meson test -C build-fuzz --suite fuzz --print-errorlogs

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
