/*
 * The block layer on a real block device (host_device): a loop device the
 * test attaches to a sparse file.  The size comes from BLKGETSIZE64, zeroes
 * written without unmap (BLKZEROOUT, as QEMU's host_device) keep the loop's
 * backing file allocated while zeroes that may unmap free it, and both
 * read back as zeroes.  Needs root and /dev/loop-control: skipped without.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"

#define MiB (1u << 20)

static char backing[64], dev[32];
static int loop_fd = -1;

static int attach(void)
{
	int ctl, n, f;

	snprintf(backing, sizeof(backing), "/tmp/kestrel-loop.XXXXXX");
	f = mkstemp(backing);
	if (f < 0 || ftruncate(f, 8 * MiB) < 0)
		return -1;
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	n = ctl >= 0 ? ioctl(ctl, LOOP_CTL_GET_FREE) : -1;
	if (ctl >= 0)
		close(ctl);
	snprintf(dev, sizeof(dev), "/dev/loop%d", n);
	loop_fd = n >= 0 ? open(dev, O_RDWR | O_CLOEXEC) : -1;
	if (loop_fd < 0 || ioctl(loop_fd, LOOP_SET_FD, f) < 0) {
		close(f);
		return -1;
	}
	close(f);
	return 0;
}

static int setup(void **state)
{
	if (geteuid() != 0 || access("/dev/loop-control", F_OK) < 0 || attach() < 0) {
		loop_fd = -1;
		unlink(backing);
	}
	return 0;
}

static int teardown(void **state)
{
	if (loop_fd >= 0) {
		ioctl(loop_fd, LOOP_CLR_FD, 0);
		close(loop_fd);
	}
	unlink(backing);
	return 0;
}

static uint64_t allocated(void)
{
	struct stat st;

	assert_int_equal(stat(backing, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void test_size_and_zeroes_on_a_loop_device(void **state)
{
	static uint8_t buf[MiB], zero[MiB];
	struct block_dev *bd;
	char err[256];

	if (loop_fd < 0)
		skip();			/* no root or no loop devices here */
	assert_int_equal(block_open(dev, "raw", BLOCK_NO_LOCK, &bd, err, sizeof(err)), 0);
	assert_int_equal(block_length(bd), 8 * MiB);
	memset(buf, 0xee, sizeof(buf));
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(block_pwrite(bd, (uint64_t)i * MiB, buf, MiB), 0);
	assert_int_equal(block_flush(bd), 0);
	assert_true(allocated() >= 8 * MiB);
	/* Without unmap: zeroes, and the space stays (the loop turns it into a zero range). */
	assert_int_equal(block_write_zeroes(bd, 2 * MiB, 2 * MiB, false), 0);
	assert_int_equal(block_flush(bd), 0);
	assert_int_equal(block_pread(bd, 2 * MiB, buf, MiB), 0);
	assert_memory_equal(buf, zero, MiB);
	assert_true(allocated() >= 8 * MiB);
	/* With unmap: zeroes, and the backing file's blocks go. */
	assert_int_equal(block_write_zeroes(bd, 4 * MiB, 2 * MiB, true), 0);
	assert_int_equal(block_flush(bd), 0);
	assert_int_equal(block_pread(bd, 5 * MiB, buf, MiB), 0);
	assert_memory_equal(buf, zero, MiB);
	assert_true(allocated() <= 6 * MiB + 64 * 1024);
	/* Untouched data stays. */
	assert_int_equal(block_pread(bd, 7 * MiB, buf, 1), 0);
	assert_int_equal(buf[0], 0xee);
	block_close(bd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_and_zeroes_on_a_loop_device),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
