/*
 * virtio/balloon.c (virtio 1.2 §5.5) over page-aligned anonymous guest RAM:
 * requests are built in guest RAM as a driver would and run through
 * virtio_balloon_ops.queue_notify, as a kick would.  Checked: inflated and
 * reported pages really leave the host (they read back as zero), others stay;
 * deflate discards nothing; "actual" from the driver reaches the host with an
 * eventfd poke; the host's target reaches the config space with a new
 * generation; statistics are kept and the buffer held until asked for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "virtio/devices.h"
#include "virtio/pci.h"

#include "fake_virtio.h"

#define RAM_SIZE (8 * MIB)
#define QSIZE 16
#define DESC(q) FAKE_RING(q)
#define AVAIL(q) FAKE_AVAIL(q)
#define USED(q) FAKE_USED(q)
#define BUF_GPA 0x80000
#define DATA_GPA 0x200000	/* pages the tests give away */
#define F_WRITE 2

struct fx {
	struct guest_memory mem;
	struct pci_bus bus;
	struct virtio_pci vp;
	struct virtio_balloon b;
	uint16_t avail_idx[4];
	uint16_t next_desc[4];
};

static uint8_t *ram(struct fx *f, uint64_t gpa)
{
	return f->mem.host + gpa;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	memory_layout(&f->mem, RAM_SIZE);
	f->mem.host = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	if (f->mem.host == MAP_FAILED || pci_bus_init(&f->bus) < 0)
		return -1;
	f->mem.regions[0].host = f->mem.host;
	f->b.free_page_reporting = true;
	if (virtio_balloon_init(&f->b) < 0 ||
	    virtio_pci_create(&f->vp, &f->bus, -1, &virtio_balloon_ops, &f->b, 4, &f->mem, -1,
			      NULL) < 0 ||
	    virtio_balloon_attach(&f->b, &f->vp.vdev, &f->mem, NULL) < 0)
		return -1;
	if (!fake_virtio_rings_ready(&f->vp.vdev, 4, QSIZE))
		return -1;
	f->vp.vdev.driver_features = VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BALLOON_F_STATS_VQ |
				     1ULL << VIRTIO_BALLOON_F_REPORTING;
	f->vp.vdev.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	virtio_balloon_detach(&f->b, NULL);
	virtio_pci_destroy(&f->vp);
	pci_bus_destroy(&f->bus);
	close(f->b.change_fd);
	close(f->b.timer_fd);
	munmap(f->mem.host, RAM_SIZE);
	free(f);
	return 0;
}

/* One descriptor per buffer, chained, made available on queue q. */
static void submit(struct fx *f, unsigned q, const uint64_t *gpa, const uint32_t *len,
		   unsigned n, bool writable)
{
	uint16_t head = f->next_desc[q];

	for (unsigned i = 0; i < n; i++) {
		uint16_t d = f->next_desc[q]++ % QSIZE;
		uint16_t flags = (uint16_t)((writable ? F_WRITE : 0) | (i + 1 < n ? 1 : 0));
		uint16_t next = (uint16_t)((d + 1) % QSIZE);
		memcpy(ram(f, DESC(q) + 16 * d), &gpa[i], 8);
		memcpy(ram(f, DESC(q) + 16 * d + 8), &len[i], 4);
		memcpy(ram(f, DESC(q) + 16 * d + 12), &flags, 2);
		memcpy(ram(f, DESC(q) + 16 * d + 14), &next, 2);
	}
	head %= QSIZE;
	memcpy(ram(f, AVAIL(q) + 4 + 2 * (f->avail_idx[q] % QSIZE)), &head, 2);
	f->avail_idx[q]++;
	memcpy(ram(f, AVAIL(q) + 2), &f->avail_idx[q], 2);
	virtio_balloon_ops.queue_notify(&f->vp.vdev, q);
}

static uint16_t used_idx(struct fx *f, unsigned q)
{
	uint16_t idx;

	memcpy(&idx, ram(f, USED(q) + 2), 2);
	return idx;
}

static void fill(struct fx *f, uint64_t gpa, uint64_t len)
{
	memset(ram(f, gpa), 0x5a, len);
}

static bool page_is_zero(struct fx *f, uint64_t gpa)
{
	for (unsigned i = 0; i < 4096; i++)
		if (*ram(f, gpa + i))
			return false;
	return true;
}

static void send_pfns(struct fx *f, unsigned q, const uint32_t *pfns, unsigned n)
{
	uint64_t gpa = BUF_GPA;
	uint32_t len = 4 * n;

	memcpy(ram(f, BUF_GPA), pfns, len);
	submit(f, q, &gpa, &len, 1, false);
}

static void test_inflate_discards_exactly_the_listed_pages(void **state)
{
	struct fx *f = *state;
	uint32_t pfns[] = { DATA_GPA / 4096 + 3, DATA_GPA / 4096 + 2, DATA_GPA / 4096 + 1,
			    DATA_GPA / 4096 + 7 };	/* a descending run, then a lone page */

	fill(f, DATA_GPA, 16 * 4096);
	send_pfns(f, 0, pfns, 4);
	assert_int_equal(used_idx(f, 0), 1);
	for (unsigned i = 0; i < 16; i++) {
		bool gone = (i >= 1 && i <= 3) || i == 7;
		assert_int_equal(page_is_zero(f, DATA_GPA + i * 4096ULL), gone);
	}
	assert_int_equal(f->b.inflated, 4);

	/* Deflating tells the host; the pages are simply the guest's again. */
	fill(f, DATA_GPA, 16 * 4096);
	send_pfns(f, 1, pfns, 4);
	assert_int_equal(used_idx(f, 1), 1);
	assert_false(page_is_zero(f, DATA_GPA + 3 * 4096));
	assert_int_equal(f->b.deflated, 4);
}

static void test_pfns_outside_ram_are_ignored(void **state)
{
	struct fx *f = *state;
	uint32_t pfns[] = { 0xfffff, RAM_SIZE / 4096, (uint32_t)(DATA_GPA / 4096) };

	fill(f, DATA_GPA, 4096);
	send_pfns(f, 0, pfns, 3);
	assert_int_equal(used_idx(f, 0), 1);
	assert_true(page_is_zero(f, DATA_GPA));
	assert_int_equal(f->vp.vdev.status & VIRTIO_STATUS_NEEDS_RESET, 0);
}

static void test_free_page_reporting_discards_the_buffers(void **state)
{
	struct fx *f = *state;
	uint64_t gpa[2] = { DATA_GPA, DATA_GPA + 8 * 4096 };
	uint32_t len[2] = { 4 * 4096, 2 * 4096 };

	fill(f, DATA_GPA, 16 * 4096);
	submit(f, 3, gpa, len, 2, true);
	assert_int_equal(used_idx(f, 3), 1);
	for (unsigned i = 0; i < 16; i++) {
		bool gone = i < 4 || i == 8 || i == 9;
		assert_int_equal(page_is_zero(f, DATA_GPA + i * 4096ULL), gone);
	}
	assert_int_equal(f->b.reported, 6);
}

static void test_actual_and_target(void **state)
{
	struct fx *f = *state;
	struct pollfd p = { .fd = f->b.change_fd, .events = POLLIN };
	uint32_t v = 1234, got;
	uint8_t gen = f->vp.vdev.config_generation;

	/* The driver writes actual (offset 4); the host hears of it through the eventfd. */
	assert_int_equal(poll(&p, 1, 0), 0);
	pthread_mutex_lock(&f->vp.vdev.lock);
	virtio_balloon_ops.write_config(&f->vp.vdev, 4, &v, 4);
	/* num_pages (offset 0) is the device's: a driver write changes nothing. */
	virtio_balloon_ops.write_config(&f->vp.vdev, 0, &v, 4);
	pthread_mutex_unlock(&f->vp.vdev.lock);
	assert_int_equal(poll(&p, 1, 0), 1);
	assert_int_equal(virtio_balloon_actual(&f->b), 1234);

	/* balloon 6 MiB on 8 MiB of RAM: 2 MiB = 512 pages to give. */
	virtio_balloon_set_target(&f->b, RAM_SIZE, 6 * MIB);
	virtio_balloon_ops.read_config(&f->vp.vdev, 0, &got, 4);
	assert_int_equal(got, 512);
	assert_int_not_equal(f->vp.vdev.config_generation, gen);
	/* A target above RAM means "give everything back". */
	virtio_balloon_set_target(&f->b, RAM_SIZE, 64 * MIB);
	virtio_balloon_ops.read_config(&f->vp.vdev, 0, &got, 4);
	assert_int_equal(got, 0);

	/* A driver reset returns every page to the guest. */
	virtio_balloon_ops.reset(&f->vp.vdev);
	assert_int_equal(virtio_balloon_actual(&f->b), 0);
}

/*
 * "actual" is what the guest says it gave, but it cannot give more than its
 * RAM: the host reports RAM minus actual (query-balloon, BALLOON_CHANGE),
 * which a larger value would wrap below zero.
 */
static void test_actual_is_at_most_ram(void **state)
{
	struct fx *f = *state;
	uint32_t v = UINT32_MAX, got;
	uint8_t top = 0x80;

	pthread_mutex_lock(&f->vp.vdev.lock);
	virtio_balloon_ops.write_config(&f->vp.vdev, 4, &v, 4);
	pthread_mutex_unlock(&f->vp.vdev.lock);
	assert_int_equal(virtio_balloon_actual(&f->b), RAM_SIZE >> 12);
	virtio_balloon_ops.read_config(&f->vp.vdev, 4, &got, 4);
	assert_int_equal(got, RAM_SIZE >> 12);

	/* Byte by byte as well: the top byte alone is 2^31 pages. */
	v = 0;
	pthread_mutex_lock(&f->vp.vdev.lock);
	virtio_balloon_ops.write_config(&f->vp.vdev, 4, &v, 4);
	virtio_balloon_ops.write_config(&f->vp.vdev, 7, &top, 1);
	pthread_mutex_unlock(&f->vp.vdev.lock);
	assert_int_equal(virtio_balloon_actual(&f->b), RAM_SIZE >> 12);
}

static void test_statistics_are_kept_and_the_buffer_held(void **state)
{
	struct fx *f = *state;
	uint8_t st[3 * 10] = { 0 };
	uint64_t gpa = BUF_GPA, stats[BALLOON_NR_STATS], interval;
	uint32_t len = sizeof(st);
	int64_t when;
	uint64_t total = 123456789, unknown_tag = 99;

	st[0] = 5;			/* total memory */
	memcpy(st + 2, &total, 8);
	st[10] = 4;			/* free memory */
	memcpy(st + 12, &(uint64_t){ 42 }, 8);
	st[20] = (uint8_t)unknown_tag;	/* ignored */
	memcpy(ram(f, BUF_GPA), st, sizeof(st));
	submit(f, 2, &gpa, &len, 1, false);
	/* Held until the host asks again: nothing used yet. */
	assert_int_equal(used_idx(f, 2), 0);
	virtio_balloon_stats(&f->b, stats, &when, &interval);
	assert_int_equal(stats[5], total);
	assert_int_equal(stats[4], 42);
	assert_true(stats[0] == UINT64_MAX);	/* never reported */
	assert_true(when > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inflate_discards_exactly_the_listed_pages,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_pfns_outside_ram_are_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_page_reporting_discards_the_buffers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_actual_and_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statistics_are_kept_and_the_buffer_held, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_actual_is_at_most_ram, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
