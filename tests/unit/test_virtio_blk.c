/*
 * virtio/blk.c (virtio 1.2 §5.2) over a raw image in a temporary file:
 * requests are built in fake guest RAM as a driver would, and the device runs
 * them when virtio_blk_ops.queue_notify is called, as a kick would.  Checked:
 * the status byte of every request type, what reaches the file, and that a
 * request too malformed to answer puts the device in NEEDS_RESET instead of
 * crashing or writing outside guest RAM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake.h"
#include "virtio/devices.h"
#include "virtio/pci.h"

#define RAM_SIZE (4 * MIB)
#define DISK_SECTORS 128
#define DISK_SIZE (DISK_SECTORS * 512)
#define QSIZE 16
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA 0x3000
#define TABLE_GPA 0x8000
#define HDR_GPA(k) (0x10000 + 0x100 * (k))
#define STATUS_GPA(k) (0x18000 + 0x10 * (k))
#define DATA_GPA 0x100000

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct blk_header {
	uint32_t type, reserved;
	uint64_t sector;
};

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

struct fx {
	struct guest_memory mem;
	struct pci_bus bus;
	struct virtio_pci vp;
	struct virtio_blk blk;
	char path[64];
	int fd;			/* the image, for checking what landed */
	uint16_t avail_idx;
	uint16_t next_desc;
	unsigned nreq;		/* requests submitted: each gets its own header and status */
};

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 9));
}

static uint8_t *ram(struct fx *f, uint64_t gpa)
{
	return f->mem.host + gpa;
}

static int open_disk(struct fx *f, unsigned flags)
{
	char err[256];

	if (f->blk.disk)
		block_close(f->blk.disk);
	f->blk.disk = NULL;
	if (block_open(f->path, "raw", flags | BLOCK_NO_LOCK, &f->blk.disk, err, sizeof(err)) < 0) {
		fprintf(stderr, "block_open: %s\n", err);
		return -1;
	}
	f->blk.readonly = (flags & BLOCK_RDONLY) != 0;
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t *image;
	struct virtqueue *vq;

	if (!f || fake_memory_init(&f->mem, RAM_SIZE) < 0 || pci_bus_init(&f->bus) < 0)
		return -1;
	strcpy(f->path, "/tmp/kestrel-test-blk-XXXXXX");
	f->fd = mkstemp(f->path);
	image = malloc(DISK_SIZE);
	if (f->fd < 0 || !image)
		return -1;
	for (uint64_t i = 0; i < DISK_SIZE; i++)
		image[i] = pattern(i);
	if (pwrite(f->fd, image, DISK_SIZE, 0) != DISK_SIZE)
		return -1;
	free(image);
	if (open_disk(f, 0) < 0)
		return -1;
	strcpy(f->blk.serial, "kestrel-disk-0");
	f->blk.discard = true;
	if (virtio_pci_create(&f->vp, &f->bus, -1, &virtio_blk_ops, &f->blk, 0, &f->mem, -1, NULL) < 0)
		return -1;

	/* The queue as a driver leaves it after initialisation (§3.1.1). */
	vq = &f->vp.vdev.vqs[0];
	vq->size = QSIZE;
	vq->desc_gpa = DESC_GPA;
	vq->avail_gpa = AVAIL_GPA;
	vq->used_gpa = USED_GPA;
	if (!vq_check_rings(vq))
		return -1;
	vq->ready = true;
	f->vp.vdev.driver_features = VIRTIO_F_VERSION_1;
	f->vp.vdev.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	virtio_pci_destroy(&f->vp);
	virtio_blk_release(&f->blk);	/* joins the request workers */
	pci_bus_destroy(&f->bus);
	if (f->blk.disk)
		block_close(f->blk.disk);
	close(f->fd);
	unlink(f->path);
	fake_memory_free(&f->mem);
	free(f);
	return 0;
}

static void put_desc(struct fx *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	memcpy(ram(f, table + 16 * i), &d, 16);
}

static void make_avail(struct fx *f, uint16_t head)
{
	memcpy(ram(f, AVAIL_GPA + 4 + 2 * (f->avail_idx % QSIZE)), &head, 2);
	f->avail_idx++;
	memcpy(ram(f, AVAIL_GPA + 2), &f->avail_idx, 2);
}

/* Chains the segments from the next free descriptors and makes the chain available. */
static uint16_t submit(struct fx *f, const struct seg *segs, unsigned n)
{
	uint16_t head = f->next_desc;

	assert_true(n > 0 && f->next_desc + n <= QSIZE);
	for (unsigned i = 0; i < n; i++) {
		uint16_t flags = (segs[i].write ? F_WRITE : 0) | (i + 1 < n ? F_NEXT : 0);
		put_desc(f, DESC_GPA, f->next_desc, segs[i].gpa, segs[i].len, flags,
			 (uint16_t)(f->next_desc + 1));
		f->next_desc++;
	}
	make_avail(f, head);
	return head;
}

static void put_header(struct fx *f, unsigned k, uint32_t type, uint64_t sector)
{
	struct blk_header h = { .type = type, .reserved = 0, .sector = sector };

	memcpy(ram(f, HDR_GPA(k)), &h, sizeof(h));
	*ram(f, STATUS_GPA(k)) = 0xee;	/* so we see whether the device wrote it */
}

/*
 * The usual three-part request: header, data (device-writable for IN),
 * status.  Returns k, the request's number, for status_of().
 */
static unsigned request(struct fx *f, uint32_t type, uint64_t sector, uint64_t data,
			uint32_t len)
{
	unsigned k = f->nreq++;
	struct seg segs[3];
	unsigned n = 0;

	put_header(f, k, type, sector);
	segs[n++] = (struct seg){ HDR_GPA(k), sizeof(struct blk_header), false };
	if (len)
		segs[n++] = (struct seg){ data, len, type == T_IN || type == T_GET_ID };
	segs[n++] = (struct seg){ STATUS_GPA(k), 1, true };
	submit(f, segs, n);
	return k;
}

static uint8_t status_of(struct fx *f, unsigned k)
{
	return *ram(f, STATUS_GPA(k));
}

static void kick(struct fx *f)
{
	virtio_blk_ops.queue_notify(&f->vp.vdev, 0);
}

static uint16_t used_idx(struct fx *f)
{
	uint16_t v;

	memcpy(&v, ram(f, USED_GPA + 2), 2);
	return v;
}

static void used_elem(struct fx *f, unsigned i, uint32_t *id, uint32_t *len)
{
	memcpy(id, ram(f, USED_GPA + 4 + 8 * (i % QSIZE)), 4);
	memcpy(len, ram(f, USED_GPA + 8 + 8 * (i % QSIZE)), 4);
}

static bool needs_reset(struct fx *f)
{
	return f->vp.vdev.status & VIRTIO_STATUS_NEEDS_RESET;
}

static void assert_disk_is(struct fx *f, uint64_t off, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len);

	assert_non_null(got);
	assert_int_equal(pread(f->fd, got, len, (off_t)off), (ssize_t)len);
	assert_memory_equal(got, want, len);
	free(got);
}

static void assert_disk_pristine(struct fx *f)
{
	uint8_t *got = malloc(DISK_SIZE);

	assert_non_null(got);
	assert_int_equal(pread(f->fd, got, DISK_SIZE, 0), DISK_SIZE);
	for (uint64_t i = 0; i < DISK_SIZE; i++)
		if (got[i] != pattern(i))
			fail_msg("disk byte %llu changed", (unsigned long long)i);
	free(got);
}

static void assert_ram_is_disk(struct fx *f, uint64_t gpa, uint64_t disk_off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (*ram(f, gpa + i) != pattern(disk_off + i))
			fail_msg("guest byte %zu differs from disk byte %llu", i,
				 (unsigned long long)(disk_off + i));
}

/* ---- reads ---------------------------------------------------------------------- */

static void test_read(void **state)
{
	struct fx *f = *state;
	uint32_t id, len;
	unsigned k = request(f, T_IN, 2, DATA_GPA, 1024);

	kick(f);
	assert_false(needs_reset(f));
	assert_int_equal(status_of(f, k), S_OK);
	assert_ram_is_disk(f, DATA_GPA, 2 * 512, 1024);
	assert_int_equal(used_idx(f), 1);
	used_elem(f, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 1024 + 1);	/* data and status (§5.2.6) */
	assert_int_equal(f->blk.reads, 1);
	/* No MSI-X: the used-buffer interrupt went to the ISR. */
	assert_int_equal(f->vp.isr & 1, 1);
}

static void test_read_scattered(void **state)
{
	struct fx *f = *state;
	unsigned k = f->nreq++;
	struct seg segs[] = {
		{ HDR_GPA(k), 16, false },
		{ DATA_GPA + 0x3000, 100, true },
		{ DATA_GPA + 0x1000, 412, true },
		{ DATA_GPA + 0x5000, 512, true },
		{ STATUS_GPA(k), 1, true },
	};

	put_header(f, k, T_IN, DISK_SECTORS - 2);
	submit(f, segs, 5);
	kick(f);
	assert_int_equal(status_of(f, k), S_OK);
	uint64_t base = (DISK_SECTORS - 2) * 512ULL;
	assert_ram_is_disk(f, DATA_GPA + 0x3000, base, 100);
	assert_ram_is_disk(f, DATA_GPA + 0x1000, base + 100, 412);
	assert_ram_is_disk(f, DATA_GPA + 0x5000, base + 512, 512);
}

static void test_read_status_shares_buffer(void **state)
{
	struct fx *f = *state;
	unsigned k = f->nreq++;
	/* One writable buffer of 512 data bytes and the status byte after them. */
	struct seg segs[] = { { HDR_GPA(k), 16, false }, { DATA_GPA, 513, true } };

	put_header(f, k, T_IN, 7);
	memset(ram(f, DATA_GPA), 0xee, 513);
	submit(f, segs, 2);
	kick(f);
	assert_int_equal(*ram(f, DATA_GPA + 512), S_OK);
	assert_ram_is_disk(f, DATA_GPA, 7 * 512, 512);
	uint32_t id, len;
	used_elem(f, 0, &id, &len);
	assert_int_equal(len, 513);
}

static void test_read_header_split(void **state)
{
	struct fx *f = *state;
	unsigned k = f->nreq++;
	/* The header in two pieces: the device may not assume framing (§2.6.4). */
	struct seg segs[] = {
		{ HDR_GPA(k), 5, false }, { HDR_GPA(k) + 5, 11, false },
		{ DATA_GPA, 512, true }, { STATUS_GPA(k), 1, true },
	};

	put_header(f, k, T_IN, 9);
	submit(f, segs, 4);
	kick(f);
	assert_int_equal(status_of(f, k), S_OK);
	assert_ram_is_disk(f, DATA_GPA, 9 * 512, 512);
}

static void test_read_last_sector(void **state)
{
	struct fx *f = *state;
	unsigned k = request(f, T_IN, DISK_SECTORS - 1, DATA_GPA, 512);

	kick(f);
	assert_int_equal(status_of(f, k), S_OK);
	assert_ram_is_disk(f, DATA_GPA, (DISK_SECTORS - 1) * 512ULL, 512);
}

static void test_read_out_of_range(void **state)
{
	struct fx *f = *state;
	uint64_t sectors[] = {
		DISK_SECTORS,		/* one past the end */
		DISK_SECTORS - 1,	/* starts inside, ends outside (1024 bytes) */
		UINT64_MAX / 512 + 1,	/* sector * 512 wraps to 0 */
		UINT64_MAX,
		(1ULL << 55) + 1,	/* * 512 wraps to 512 */
	};
	unsigned k[5];

	memset(ram(f, DATA_GPA), 0x5a, 5 * 1024);
	for (unsigned i = 0; i < 5; i++)
		k[i] = request(f, T_IN, sectors[i], DATA_GPA + 1024 * i, 1024);
	kick(f);
	assert_int_equal(used_idx(f), 5);
	for (unsigned i = 0; i < 5; i++) {
		uint32_t id, len;
		assert_int_equal(status_of(f, k[i]), S_IOERR);
		used_elem(f, i, &id, &len);
		assert_int_equal(len, 1);	/* only the status was written */
	}
	assert_false(needs_reset(f));
	assert_int_equal(f->blk.reads, 0);
}

static void test_read_not_sector_multiple(void **state)
{
	struct fx *f = *state;
	unsigned k = request(f, T_IN, 0, DATA_GPA, 100);

	kick(f);
	assert_int_equal(status_of(f, k), S_IOERR);
}

/* ---- writes ---------------------------------------------------------------------- */

static void test_write(void **state)
{
	struct fx *f = *state;
	uint8_t buf[1024];
	uint32_t id, len;

	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(0xa0 ^ i);
	memcpy(ram(f, DATA_GPA), buf, sizeof(buf));
	unsigned k = request(f, T_OUT, 5, DATA_GPA, 1024);
	kick(f);
	assert_int_equal(status_of(f, k), S_OK);
	assert_disk_is(f, 5 * 512, buf, sizeof(buf));
	/* Neighbours untouched. */
	assert_int_equal(f->blk.writes, 1);
	used_elem(f, 0, &id, &len);
	assert_int_equal(len, 1);	/* the device wrote only the status byte */
	uint8_t before[512], after[512];
	for (unsigned i = 0; i < 512; i++) {
		before[i] = pattern(4 * 512 + i);
		after[i] = pattern(7 * 512 + i);
	}
	assert_disk_is(f, 4 * 512, before, 512);
	assert_disk_is(f, 7 * 512, after, 512);
}

static void test_write_header_and_data_in_one_buffer(void **state)
{
	struct fx *f = *state;
	unsigned k = f->nreq++;
	struct blk_header h = { .type = T_OUT, .sector = DISK_SECTORS - 1 };
	uint8_t data[512];
	struct seg segs[] = { { DATA_GPA, 16 + 512, false }, { STATUS_GPA(k), 1, true } };

	memset(data, 0x3c, sizeof(data));
	memcpy(ram(f, DATA_GPA), &h, 16);
	memcpy(ram(f, DATA_GPA + 16), data, 512);
	*ram(f, STATUS_GPA(k)) = 0xee;
	submit(f, segs, 2);
	kick(f);
	assert_int_equal(status_of(f, k), S_OK);
	assert_disk_is(f, (DISK_SECTORS - 1) * 512ULL, data, 512);
}

static void test_write_out_of_range(void **state)
{
	struct fx *f = *state;
	unsigned a = request(f, T_OUT, DISK_SECTORS, DATA_GPA, 512);
	unsigned b = request(f, T_OUT, DISK_SECTORS - 1, DATA_GPA, 1024);
	unsigned c = request(f, T_OUT, UINT64_MAX / 512 + 1, DATA_GPA, 512);

	memset(ram(f, DATA_GPA), 0x11, 1024);
	kick(f);
	assert_int_equal(status_of(f, a), S_IOERR);
	assert_int_equal(status_of(f, b), S_IOERR);
	assert_int_equal(status_of(f, c), S_IOERR);
	assert_disk_pristine(f);
	assert_int_equal(f->blk.writes, 0);
}

static void test_write_not_sector_multiple(void **state)
{
	struct fx *f = *state;
	unsigned k = request(f, T_OUT, 0, DATA_GPA, 511);

	memset(ram(f, DATA_GPA), 0x11, 511);
	kick(f);
	assert_int_equal(status_of(f, k), S_IOERR);
	assert_disk_pristine(f);
}

static void test_write_readonly_flag(void **state)
{
	struct fx *f = *state;

	/* The device model's readonly=on, over an image that would accept the write. */
	f->blk.readonly = true;
	memset(ram(f, DATA_GPA), 0x77, 512);
	unsigned k = request(f, T_OUT, 0, DATA_GPA, 512);
	kick(f);
	assert_int_equal(status_of(f, k), S_IOERR);
	assert_disk_pristine(f);
	assert_false(needs_reset(f));
}

static void test_write_readonly_image(void **state)
{
	struct fx *f = *state;

	/* An image opened read-only: the block layer refuses, the guest sees IOERR. */
	assert_int_equal(open_disk(f, BLOCK_RDONLY), 0);
	f->blk.readonly = false;	/* even if the device model forgot */
	memset(ram(f, DATA_GPA), 0x77, 512);
	unsigned k = request(f, T_OUT, 0, DATA_GPA, 512);
	unsigned r = request(f, T_IN, 3, DATA_GPA + 0x1000, 512);
	kick(f);
	assert_int_equal(status_of(f, k), S_IOERR);
	assert_int_equal(status_of(f, r), S_OK);
	assert_ram_is_disk(f, DATA_GPA + 0x1000, 3 * 512, 512);
	assert_disk_pristine(f);
}

/* ---- other request types --------------------------------------------------------- */

static void test_flush(void **state)
{
	struct fx *f = *state;
	unsigned k = request(f, T_FLUSH, 0, 0, 0);

	kick(f);
	assert_int_equal(status_of(f, k), S_OK);
	assert_int_equal(f->blk.flushes, 1);
	uint32_t id, len;
	used_elem(f, 0, &id, &len);
	assert_int_equal(len, 1);
}

static void test_get_id(void **state)
{
	struct fx *f = *state;
	uint32_t id, len;

	memset(ram(f, DATA_GPA), 0xee, 20);
	unsigned k = request(f, T_GET_ID, 0, DATA_GPA, 20);
	kick(f);
	assert_int_equal(status_of(f, k), S_OK);
	/* NUL-padded to VIRTIO_BLK_ID_BYTES (§5.2.6). */
	assert_memory_equal(ram(f, DATA_GPA), "kestrel-disk-0\0\0\0\0\0\0", 20);
	used_elem(f, 0, &id, &len);
	assert_int_equal(len, 21);
}

static void test_get_id_full_length(void **state)
{
	struct fx *f = *state;

	/* A 20-byte serial fills the field with no terminator. */
	strcpy(f->blk.serial, "ABCDEFGHIJKLMNOPQRST");
	memset(ram(f, DATA_GPA), 0xee, 32);
	unsigned k = request(f, T_GET_ID, 0, DATA_GPA, 32);
	kick(f);
	assert_int_equal(status_of(f, k), S_OK);
	assert_memory_equal(ram(f, DATA_GPA), "ABCDEFGHIJKLMNOPQRST", 20);
	assert_int_equal(*ram(f, DATA_GPA + 20), 0xee);
}

static void test_get_id_short_buffer(void **state)
{
	struct fx *f = *state;
	uint32_t id, len;

	memset(ram(f, DATA_GPA), 0xee, 16);
	unsigned k = request(f, T_GET_ID, 0, DATA_GPA, 4);
	kick(f);
	assert_int_equal(status_of(f, k), S_OK);
	assert_memory_equal(ram(f, DATA_GPA), "kest", 4);
	assert_int_equal(*ram(f, DATA_GPA + 4), 0xee);
	used_elem(f, 0, &id, &len);
	assert_int_equal(len, 5);
}

static void test_unsupported_type(void **state)
{
	struct fx *f = *state;
	uint32_t types[] = { 2, 3, 0x99, 0x80000000u, UINT32_MAX };
	unsigned k[5];

	for (unsigned i = 0; i < 5; i++)
		k[i] = request(f, types[i], 0, DATA_GPA, 512);
	memset(ram(f, DATA_GPA), 0x22, 512);
	kick(f);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(status_of(f, k[i]), S_UNSUPP);
	assert_false(needs_reset(f));
	assert_disk_pristine(f);
}

/* A discard or write-zeroes request: header, one range, status. */
static unsigned range_request(struct fx *f, uint32_t type, uint64_t sector, uint32_t num,
			      uint32_t flags)
{
	struct { uint64_t sector; uint32_t num_sectors, flags; } r = { sector, num, flags };

	memcpy(ram(f, DATA_GPA + 0x100 * f->nreq), &r, sizeof(r));
	return request(f, type, 0, DATA_GPA + 0x100 * f->nreq, sizeof(r));
}

static void test_discard_and_write_zeroes(void **state)
{
	struct fx *f = *state;
	unsigned a = range_request(f, T_DISCARD, 0, 8, 0);
	unsigned b = range_request(f, T_WRITE_ZEROES, DISK_SECTORS - 8, 8, 1);
	unsigned c = range_request(f, T_DISCARD, DISK_SECTORS - 8, 9, 0);	/* one too many */
	unsigned d = range_request(f, T_WRITE_ZEROES, UINT64_MAX / 512 + 1, 1, 0);
	unsigned e = range_request(f, T_DISCARD, 0, UINT32_MAX, 0);

	kick(f);
	assert_int_equal(status_of(f, a), S_OK);
	assert_int_equal(status_of(f, b), S_OK);
	assert_int_equal(status_of(f, c), S_IOERR);
	assert_int_equal(status_of(f, d), S_IOERR);
	assert_int_equal(status_of(f, e), S_IOERR);
}

static void test_discard_short_payload(void **state)
{
	struct fx *f = *state;
	unsigned k = request(f, T_DISCARD, 0, DATA_GPA, 8);	/* half a range */

	kick(f);
	assert_int_equal(status_of(f, k), S_IOERR);
	assert_false(needs_reset(f));
}

static void test_discard_readonly(void **state)
{
	struct fx *f = *state;

	f->blk.readonly = true;
	unsigned a = range_request(f, T_DISCARD, 0, 1, 0);
	unsigned b = range_request(f, T_WRITE_ZEROES, 0, 1, 0);
	kick(f);
	assert_int_equal(status_of(f, a), S_IOERR);
	assert_int_equal(status_of(f, b), S_IOERR);
	assert_disk_pristine(f);
}

/* ---- requests too broken to answer ----------------------------------------------- */

static void test_no_status_byte(void **state)
{
	struct fx *f = *state;
	unsigned k = f->nreq++;
	struct seg segs[] = { { HDR_GPA(k), 16, false }, { DATA_GPA, 512, false } };

	put_header(f, k, T_OUT, 0);
	submit(f, segs, 2);
	kick(f);
	assert_true(needs_reset(f));
	assert_int_equal(used_idx(f), 0);
	assert_disk_pristine(f);
	/* The dead queue takes nothing more. */
	unsigned r = request(f, T_IN, 0, DATA_GPA, 512);
	kick(f);
	assert_int_equal(status_of(f, r), 0xee);
	assert_int_equal(used_idx(f), 0);
}

static void test_short_header(void **state)
{
	struct fx *f = *state;
	unsigned k = f->nreq++;
	struct seg segs[] = { { HDR_GPA(k), 8, false }, { STATUS_GPA(k), 1, true } };

	put_header(f, k, T_IN, 0);
	submit(f, segs, 2);
	kick(f);
	assert_true(needs_reset(f));
	assert_int_equal(used_idx(f), 0);
	assert_int_equal(status_of(f, k), 0xee);
}

static void test_only_writable_buffers(void **state)
{
	struct fx *f = *state;
	unsigned k = f->nreq++;
	struct seg segs[] = { { DATA_GPA, 512, true }, { STATUS_GPA(k), 1, true } };

	*ram(f, STATUS_GPA(k)) = 0xee;
	submit(f, segs, 2);
	kick(f);
	assert_true(needs_reset(f));
	assert_int_equal(used_idx(f), 0);
}

static void test_bad_chain_after_good_request(void **state)
{
	struct fx *f = *state;
	unsigned good = request(f, T_IN, 1, DATA_GPA, 512);
	unsigned k = f->nreq++;
	struct seg bad[] = { { HDR_GPA(k), 16, false }, { RAM_SIZE - 256, 512, true } };

	put_header(f, k, T_IN, 0);
	submit(f, bad, 2);
	kick(f);
	/* The first was answered; the second broke the queue before any I/O. */
	assert_int_equal(status_of(f, good), S_OK);
	assert_int_equal(used_idx(f), 1);
	assert_true(needs_reset(f));
}

/* ---- many segments, config ------------------------------------------------------- */

static void test_seg_max_data_segments(void **state)
{
	struct fx *f = *state;
	uint32_t seg_max = 0;
	unsigned n, k = f->nreq++;

	virtio_blk_ops.read_config(&f->vp.vdev, 12, &seg_max, 4);
	assert_true(seg_max >= 1);
	/* seg_max data buffers of 512 bytes each, plus header and status, in an indirect table. */
	n = 0;
	put_header(f, k, T_IN, 0);
	put_desc(f, TABLE_GPA, n, HDR_GPA(k), 16, F_NEXT, (uint16_t)(n + 1));
	n++;
	for (unsigned i = 0; i < seg_max; i++, n++)
		put_desc(f, TABLE_GPA, n, DATA_GPA + 512ULL * i, 512, F_WRITE | F_NEXT, (uint16_t)(n + 1));
	put_desc(f, TABLE_GPA, n, STATUS_GPA(k), 1, F_WRITE, 0);
	n++;
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 16 * n, F_INDIRECT, 0);
	make_avail(f, 0);
	kick(f);
	assert_false(needs_reset(f));
	assert_int_equal(status_of(f, k), S_OK);
	assert_ram_is_disk(f, DATA_GPA, 0, 512ULL * (seg_max < DISK_SECTORS ? seg_max : DISK_SECTORS));
}

static void test_config_space(void **state)
{
	struct fx *f = *state;
	uint64_t capacity = 0;
	uint32_t blk_size = 0, seg_max = 0;
	uint8_t beyond[4] = { 0x5a, 0x5a, 0x5a, 0x5a };

	virtio_blk_ops.read_config(&f->vp.vdev, 0, &capacity, 8);
	assert_int_equal(capacity, DISK_SECTORS);
	virtio_blk_ops.read_config(&f->vp.vdev, 20, &blk_size, 4);
	assert_int_equal(blk_size, 512);
	virtio_blk_ops.read_config(&f->vp.vdev, 12, &seg_max, 4);
	/* A request with seg_max data segments must fit what the queue accepts. */
	assert_true(seg_max + 2 <= VQ_MAX_SEGS);
	/* Reads past the structure leave the buffer alone (the transport zeroes it). */
	virtio_blk_ops.read_config(&f->vp.vdev, virtio_blk_ops.config_size, beyond, 4);
	assert_int_equal(beyond[0], 0x5a);
	assert_int_equal(virtio_blk_ops.device_id, VIRTIO_ID_BLOCK);
	assert_int_equal(virtio_blk_ops.num_queues, 1);
	assert_true(virtio_blk_ops.features & (1ULL << 9));	/* FLUSH */
}

static void test_many_requests_one_kick(void **state)
{
	struct fx *f = *state;
	unsigned k[5];

	for (unsigned i = 0; i < 5; i++)
		k[i] = request(f, T_IN, i, DATA_GPA + 512 * i, 512);
	kick(f);
	assert_int_equal(used_idx(f), 5);
	for (unsigned i = 0; i < 5; i++) {
		uint32_t id, len;
		assert_int_equal(status_of(f, k[i]), S_OK);
		used_elem(f, i, &id, &len);
		assert_int_equal(id, 3 * i);	/* each chain's head, in order */
		assert_int_equal(len, 513);
	}
	assert_ram_is_disk(f, DATA_GPA, 0, 5 * 512);
	assert_int_equal(f->blk.reads, 5);
}

static void test_poll_window_adapts(void **state)
{
	(void)state;
	/* Back within 32 us: start at 4 us, then double up to 32 us. */
	assert_int_equal(virtio_blk_poll_window(0, 10000), 4000);
	assert_int_equal(virtio_blk_poll_window(4000, 10000), 8000);
	assert_int_equal(virtio_blk_poll_window(16000, 31000), 32000);
	assert_int_equal(virtio_blk_poll_window(32000, 20000), 32000);
	/* Away longer: halve, and below 4 us stop polling. */
	assert_int_equal(virtio_blk_poll_window(32000, 1000000), 16000);
	assert_int_equal(virtio_blk_poll_window(4000, 1000000), 0);
	assert_int_equal(virtio_blk_poll_window(0, 1000000), 0);
}

/* Kicks are switched off only while polling: after the kick, the driver must kick again. */
static void test_poll_leaves_kicks_on(void **state)
{
	struct fx *f = *state;
	uint16_t flags;

	f->blk.poll_ns = 32000;
	request(f, T_IN, 0, DATA_GPA, 512);
	kick(f);
	assert_int_equal(used_idx(f), 1);
	memcpy(&flags, ram(f, USED_GPA), 2);
	assert_int_equal(flags & 1, 0);		/* VRING_USED_F_NO_NOTIFY */
	assert_true(f->blk.idle_since_ns != 0);
	/* It slept: the next kick sizes the window from that. */
	request(f, T_IN, 1, DATA_GPA, 512);
	kick(f);
	assert_int_equal(used_idx(f), 2);
	assert_true(f->blk.poll_ns == 32000 || f->blk.poll_ns == 16000);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_read),
		T(test_read_scattered),
		T(test_read_status_shares_buffer),
		T(test_read_header_split),
		T(test_read_last_sector),
		T(test_read_out_of_range),
		T(test_read_not_sector_multiple),
		T(test_write),
		T(test_write_header_and_data_in_one_buffer),
		T(test_write_out_of_range),
		T(test_write_not_sector_multiple),
		T(test_write_readonly_flag),
		T(test_write_readonly_image),
		T(test_flush),
		T(test_get_id),
		T(test_get_id_full_length),
		T(test_get_id_short_buffer),
		T(test_unsupported_type),
		T(test_discard_and_write_zeroes),
		T(test_discard_short_payload),
		T(test_discard_readonly),
		T(test_no_status_byte),
		T(test_short_header),
		T(test_only_writable_buffers),
		T(test_bad_chain_after_good_request),
		T(test_seg_max_data_segments),
		T(test_config_space),
		T(test_many_requests_one_kick),
		T(test_poll_window_adapts),
		T(test_poll_leaves_kicks_on),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
