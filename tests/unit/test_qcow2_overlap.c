/*
 * Metadata overlap checks (src/block/qcow2/overlap.c) through the block API:
 * hostile images whose tables point data at metadata, written and read as
 * a guest would.  A refused write must be -EIO, leave every byte of the
 * file but the corrupt bit alone, and leave the image marked corrupt for
 * Kestrel and for qemu-img alike; the overlap-check modes must each change
 * what is caught, and healthy images must never be called corrupt.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/qcow2/qcow2.h"
#include "tmpdir.h"

#define CS	65536ULL	/* the default cluster size the images use */

struct file {
	uint8_t *buf;
	size_t len;
};

static struct file slurp(const char *name)
{
	struct file f = { 0 };
	struct stat st;
	FILE *fp = fopen(tmpdir_path(name), "rb");

	assert_non_null(fp);
	assert_int_equal(fstat(fileno(fp), &st), 0);
	f.len = (size_t)st.st_size;
	f.buf = malloc(f.len ? f.len : 1);
	assert_non_null(f.buf);
	assert_int_equal(fread(f.buf, 1, f.len, fp), f.len);
	fclose(fp);
	return f;
}

static void poke64(const char *name, uint64_t off, uint64_t v)
{
	FILE *fp = fopen(tmpdir_path(name), "r+b");
	uint8_t b[8];

	assert_non_null(fp);
	st_be64(b, v);
	assert_int_equal(fseek(fp, (long)off, SEEK_SET), 0);
	assert_int_equal(fwrite(b, 1, 8, fp), 8);
	fclose(fp);
}

/* Where qcow2 put its tables in an image built by make_base. */
struct layout {
	uint64_t l1, reftable, refblock, l2, size;
};

/* 16 MiB, 64 KiB clusters, guest clusters 0 and 2 written: one L2 table. */
static struct layout make_base(const char *name)
{
	struct block_create_opts o = { .size = 16 << 20 };
	struct block_dev *bd;
	struct layout l;
	struct file f;
	char err[256];
	uint8_t *data = malloc(CS);

	assert_non_null(data);
	assert_int_equal(block_create(tmpdir_path(name), "qcow2", &o, err, sizeof(err)), 0);
	assert_int_equal(block_open(tmpdir_path(name), "qcow2", 0, &bd, err, sizeof(err)), 0);
	memset(data, 0xaa, CS);
	assert_int_equal(block_pwrite(bd, 0, data, CS), 0);
	memset(data, 0xbb, CS);
	assert_int_equal(block_pwrite(bd, 2 * CS, data, CS), 0);
	block_close(bd);
	free(data);
	f = slurp(name);
	l.l1 = ld_be64(f.buf + 40);
	l.reftable = ld_be64(f.buf + 48);
	l.refblock = ld_be64(f.buf + l.reftable) & REFT_OFFSET_MASK;
	l.l2 = ld_be64(f.buf + l.l1) & L1E_OFFSET_MASK;
	l.size = f.len;
	free(f.buf);
	/* Each table in its own cluster, before the data: what the cases below aim at. */
	assert_true(l.l2 && l.refblock && l.l1 != l.l2 && l.size > l.l2);
	return l;
}

/* The hostile images of issue #16, defect 4. */
enum hostile { L2_AT_REFBLOCK, L1_PAST_EOF, L2_AT_ITSELF, COMPRESSED_MAX };

static struct layout make_hostile(const char *name, enum hostile kind)
{
	struct layout l = make_base(name);

	switch (kind) {
	case L2_AT_REFBLOCK:	/* guest cluster 1 -> the refcount block */
		poke64(name, l.l2 + 8, l.refblock | QCOW_OFLAG_COPIED);
		break;
	case L1_PAST_EOF:	/* the L2 table of guest [0, 512M) just past the end */
		poke64(name, l.l1, ((l.size + CS - 1) & ~(CS - 1)) | QCOW_OFLAG_COPIED);
		break;
	case L2_AT_ITSELF:	/* guest cluster 1 -> the L2 table that maps it */
		poke64(name, l.l2 + 8, l.l2 | QCOW_OFLAG_COPIED);
		break;
	case COMPRESSED_MAX:	/* 256 sectors (64 KiB clusters: 8 bits) from the L1 table on */
		poke64(name, l.l2 + 8, QCOW_OFLAG_COMPRESSED | (0xffULL << 54) | l.l1);
		break;
	}
	return l;
}

/* The guest cluster each case aims its write at. */
static uint64_t target(enum hostile kind)
{
	return kind == L1_PAST_EOF ? 0 : CS;
}

static bool has_qemu_img(void)
{
	return system("command -v qemu-img >/dev/null 2>&1") == 0;
}

/* Runs cmd and returns its stdout (malloc'd). */
static char *output_of(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char *out = calloc(1, 65536);
	size_t n;

	assert_non_null(p);
	assert_non_null(out);
	n = fread(out, 1, 65535, p);
	out[n] = '\0';
	pclose(p);
	return out;
}

/* QEMU's view: marked corrupt (qemu-img info), errors found (qemu-img check). */
static void assert_qemu_sees_corrupt(const char *name)
{
	char cmd[512], *out;

	if (!has_qemu_img()) {
		fprintf(stderr, "qemu-img not installed: QEMU's view not compared\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "qemu-img info --output=json %s", tmpdir_path(name));
	out = output_of(cmd);
	assert_non_null(strstr(out, "\"corrupt\": true"));
	free(out);
	snprintf(cmd, sizeof(cmd), "qemu-img check --output=json %s 2>/dev/null", tmpdir_path(name));
	out = output_of(cmd);
	assert_non_null(strstr(out, "\"corruptions\": "));
	assert_null(strstr(out, "\"corruptions\": 0,"));
	free(out);
}

/* Every byte as before, but the corrupt bit (qcow2 spec: incompatible feature bit 1). */
static void assert_only_corrupt_bit(const struct file *before, const char *name)
{
	struct file after = slurp(name);

	assert_int_equal(after.len, before->len);
	assert_int_equal(after.buf[79], before->buf[79] | QCOW2_INCOMPAT_CORRUPT);
	after.buf[79] = before->buf[79];
	assert_memory_equal(after.buf, before->buf, before->len);
	free(after.buf);
}

static bool is_marked_corrupt(const char *name)
{
	struct block_info info;
	struct block_dev *bd;
	char err[256];
	bool corrupt;

	assert_int_equal(block_open(tmpdir_path(name), "qcow2", BLOCK_RDONLY, &bd, err, sizeof(err)), 0);
	memset(&info, 0, sizeof(info));
	assert_int_equal(block_get_info(bd, &info), 0);
	corrupt = info.corrupt;
	block_close(bd);
	return corrupt;
}

/* The guest's write and flush on each hostile image: refused, nothing of it lands. */
static void test_hostile_writes_refused(void **state)
{
	static const char *names[] = { "l2-refblock", "l1-past-eof", "l2-itself", "comp-max" };
	uint8_t *data = malloc(CS);

	assert_non_null(data);
	memset(data, 0x5c, CS);
	for (int k = L2_AT_REFBLOCK; k <= COMPRESSED_MAX; k++) {
		struct block_dev *bd;
		struct file before;
		char err[256];
		int ret;

		make_hostile(names[k], k);
		before = slurp(names[k]);
		assert_int_equal(block_open(tmpdir_path(names[k]), "qcow2", 0, &bd, err, sizeof(err)), 0);
		/* A whole cluster (no copy on write) and a partial one. */
		assert_int_equal(block_pwrite(bd, target(k), data, CS), -EIO);
		assert_int_equal(block_pwrite(bd, target(k) + 512, data, 4096), -EIO);
		ret = block_flush(bd);
		assert_true(ret == 0 || ret == -EIO);
		/* Marked corrupt: no more writes anywhere, as QEMU makes the node unusable. */
		assert_int_equal(block_pwrite(bd, 2 * CS, data, 4096), -EIO);
		block_close(bd);
		assert_only_corrupt_bit(&before, names[k]);
		assert_true(is_marked_corrupt(names[k]));
		assert_int_equal(block_open(tmpdir_path(names[k]), "qcow2", 0, &bd, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "Image is corrupt; cannot be opened read/write"));
		assert_qemu_sees_corrupt(names[k]);
		free(before.buf);
	}
	free(data);
}

/* Reads through those entries fail too, instead of showing metadata or zeroes. */
static void test_hostile_reads_refused(void **state)
{
	static const char *names[] = { "r-l2-refblock", "r-l1-past-eof", "r-l2-itself",
				       "r-comp-max" };
	uint8_t *buf = malloc(CS);

	assert_non_null(buf);
	for (int k = L2_AT_REFBLOCK; k <= COMPRESSED_MAX; k++) {
		struct block_dev *bd;
		struct file before;
		char err[256];

		make_hostile(names[k], k);
		before = slurp(names[k]);
		/* Read-only: refused and reported, the file untouched. */
		assert_int_equal(block_open(tmpdir_path(names[k]), "qcow2", BLOCK_RDONLY, &bd, err,
					    sizeof(err)), 0);
		assert_int_equal(block_pread(bd, target(k), buf, 4096), -EIO);
		block_close(bd);
		struct file same = slurp(names[k]);
		assert_int_equal(same.len, before.len);
		assert_memory_equal(same.buf, before.buf, before.len);
		free(same.buf);
		/* Read-write: the same, and marked corrupt as QEMU marks what it finds. */
		assert_int_equal(block_open(tmpdir_path(names[k]), "qcow2", 0, &bd, err, sizeof(err)), 0);
		assert_int_equal(block_pread(bd, target(k), buf, 4096), -EIO);
		block_close(bd);
		assert_only_corrupt_bit(&before, names[k]);
		free(before.buf);
	}
	free(buf);
}

/* A data cluster past the end of the file reads as an error, not as zeroes. */
static void test_data_past_eof(void **state)
{
	struct layout l = make_base("eof");
	struct block_dev *bd;
	uint8_t buf[4096];
	char err[256];

	poke64("eof", l.l2 + 8, (((l.size + CS - 1) & ~(CS - 1)) + 8 * CS) | QCOW_OFLAG_COPIED);
	assert_int_equal(block_open(tmpdir_path("eof"), "qcow2", BLOCK_RDONLY, &bd, err, sizeof(err)), 0);
	assert_int_equal(block_pread(bd, CS, buf, sizeof(buf)), -EIO);
	/* The clusters around it still read. */
	assert_int_equal(block_pread(bd, 0, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0xaa);
	assert_int_equal(block_pread(bd, 2 * CS, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0xbb);
	block_close(bd);
}

/* Sets the 16-bit refcount of host cluster c (the default refcount width). */
static void poke_refcount(const char *name, const struct layout *l, uint64_t c, uint16_t rc)
{
	FILE *fp = fopen(tmpdir_path(name), "r+b");
	uint8_t b[2] = { (uint8_t)(rc >> 8), (uint8_t)rc };

	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)(l->refblock + 2 * c), SEEK_SET), 0);
	assert_int_equal(fwrite(b, 1, 2, fp), 2);
	fclose(fp);
}

/*
 * Entries the refcounts do not account for (QEMU loses data on each): a
 * data cluster with refcount 0 is handed to the next allocation, so two
 * guest clusters share it; COPIED with refcount 2 would write in place into
 * a cluster someone else holds; two COPIED entries on one cluster alias.
 * The first write through the table is refused before anything aliases.
 */
static void test_unaccounted_entries_refused(void **state)
{
	static const char *names[] = { "rc0", "rc2", "dup" };
	uint8_t *data = malloc(4 * CS);

	assert_non_null(data);
	memset(data, 0x5c, 4 * CS);
	for (int k = 0; k < 3; k++) {
		struct layout l = make_base(names[k]);
		struct file f = slurp(names[k]), before;
		uint64_t d0 = ld_be64(f.buf + l.l2) & L2E_OFFSET_MASK;
		struct block_dev *bd;
		char err[256];

		free(f.buf);
		if (k == 0)
			poke_refcount(names[k], &l, d0 / CS, 0);
		else if (k == 1)
			poke_refcount(names[k], &l, d0 / CS, 2);
		else	/* guest cluster 3 on guest cluster 0's data, both COPIED */
			poke64(names[k], l.l2 + 3 * 8, d0 | QCOW_OFLAG_COPIED);
		before = slurp(names[k]);
		assert_int_equal(block_open(tmpdir_path(names[k]), "qcow2", 0, &bd, err, sizeof(err)), 0);
		/* Guest clusters 4-7 are unallocated: this write would take new clusters. */
		assert_int_equal(block_pwrite(bd, 4 * CS, data, 4 * CS), -EIO);
		block_close(bd);
		assert_only_corrupt_bit(&before, names[k]);
		free(before.buf);
	}
	free(data);
}

/* Two L1 entries on one L2 table: guest [0, 512M) and [512M, 1G) would alias. */
static void test_l2_table_named_twice(void **state)
{
	struct block_create_opts o = { .size = 1ULL << 30 };
	struct block_dev *bd;
	struct file f, before;
	uint8_t b[4096];
	char err[256];

	memset(b, 0x11, sizeof(b));
	assert_int_equal(block_create(tmpdir_path("l1dup"), "qcow2", &o, err, sizeof(err)), 0);
	assert_int_equal(block_open(tmpdir_path("l1dup"), "qcow2", 0, &bd, err, sizeof(err)), 0);
	assert_int_equal(block_pwrite(bd, 0, b, sizeof(b)), 0);
	block_close(bd);
	f = slurp("l1dup");
	poke64("l1dup", ld_be64(f.buf + 40) + 8, ld_be64(f.buf + ld_be64(f.buf + 40)));
	free(f.buf);
	before = slurp("l1dup");
	assert_int_equal(block_open(tmpdir_path("l1dup"), "qcow2", 0, &bd, err, sizeof(err)), 0);
	assert_int_equal(block_pwrite(bd, 512 << 20, b, sizeof(b)), -EIO);
	block_close(bd);
	assert_only_corrupt_bit(&before, "l1dup");
	free(before.buf);
}

/* Opens name with an overlap-check mode and writes guest cluster at: the result. */
static int write_with_mode(const char *name, const char *mode, uint64_t at)
{
	unsigned flags = 0;
	struct block_dev *bd;
	uint8_t *data = malloc(CS);
	char err[256];
	int ret;

	assert_non_null(data);
	memset(data, 0x5c, CS);
	assert_int_equal(block_overlap_check_flags(mode, &flags), 0);
	assert_int_equal(block_open(tmpdir_path(name), "qcow2", flags, &bd, err, sizeof(err)), 0);
	ret = block_pwrite(bd, at, data, CS);
	if (ret == 0)
		ret = block_flush(bd);
	block_close(bd);
	free(data);
	return ret;
}

/*
 * Each mode changes what is caught, as in QEMU: none lets the write into
 * the refcount block (the damage the checks exist for), constant does not
 * look at refcount blocks but does at the L1 table, cached sees both.
 */
static void test_modes_differ(void **state)
{
	struct layout l;
	struct file before, after;

	l = make_hostile("m-none", L2_AT_REFBLOCK);
	before = slurp("m-none");
	assert_int_equal(write_with_mode("m-none", "none", CS), 0);
	after = slurp("m-none");
	assert_int_not_equal(memcmp(after.buf + l.refblock, before.buf + l.refblock, CS), 0);
	assert_int_equal(after.buf[79], before.buf[79]);	/* not marked */
	free(after.buf);
	free(before.buf);

	make_hostile("m-const-rb", L2_AT_REFBLOCK);
	assert_int_equal(write_with_mode("m-const-rb", "constant", CS), 0);
	assert_false(is_marked_corrupt("m-const-rb"));

	make_hostile("m-const-l1", COMPRESSED_MAX);
	assert_int_equal(write_with_mode("m-const-l1", "constant", CS), -EIO);
	assert_true(is_marked_corrupt("m-const-l1"));

	make_hostile("m-cached", L2_AT_REFBLOCK);
	assert_int_equal(write_with_mode("m-cached", "cached", CS), -EIO);
	assert_true(is_marked_corrupt("m-cached"));
	assert_int_equal(block_overlap_check_flags("sometimes", &(unsigned){ 0 }), -1);
}

/*
 * Only "all" reads the snapshots' L2 tables: an active entry that points at
 * one (the table the snapshot kept when the active one was copied) gets its
 * write through under cached and is refused under all.
 */
static void test_all_sees_snapshot_l2(void **state)
{
	const char *modes[] = { "cached", "all" };

	for (int m = 0; m < 2; m++) {
		char name[32], err[256];
		struct block_dev *bd;
		struct file f;
		uint8_t b[512];
		uint64_t snap_l2;

		snprintf(name, sizeof(name), "snap-%s", modes[m]);
		make_base(name);
		assert_int_equal(block_open(tmpdir_path(name), "qcow2", 0, &bd, err, sizeof(err)), 0);
		assert_int_equal(block_snapshot_create(bd, "s1", err, sizeof(err)), 0);
		memset(b, 0xcc, sizeof(b));
		assert_int_equal(block_pwrite(bd, 0, b, sizeof(b)), 0);	/* copies the L2 table */
		block_close(bd);
		f = slurp(name);
		/*
		 * The snapshot's own L2 table, wherever the snapshot code put it: its
		 * L1 is named by the first snapshot table entry (qcow2 spec:
		 * "Snapshot table entry", l1_table_offset at byte 0).
		 */
		uint64_t snap_l1 = ld_be64(f.buf + ld_be64(f.buf + 64));
		/* The header's L1 offset again: a snapshot may move the active L1 table. */
		uint64_t active_l2 = ld_be64(f.buf + ld_be64(f.buf + 40)) & L1E_OFFSET_MASK;
		snap_l2 = ld_be64(f.buf + snap_l1) & L1E_OFFSET_MASK;
		assert_int_not_equal(active_l2, snap_l2);	/* the write left them apart */
		poke64(name, active_l2 + 8 * 5, snap_l2 | QCOW_OFLAG_COPIED);
		free(f.buf);
		assert_int_equal(write_with_mode(name, modes[m], 5 * CS), m == 0 ? 0 : -EIO);
		assert_int_equal(is_marked_corrupt(name), m == 1);
	}
}

/*
 * No false alarms: ordinary work under every mode (allocation, overwrites,
 * compressed clusters, discards, snapshots, growth) leaves a clean image.
 */
static void test_healthy_images_stay_clean(void **state)
{
	const char *modes[] = { "none", "constant", "cached", "all" };
	uint8_t *data = malloc(4 * CS), *zc = malloc(CS);

	assert_non_null(data);
	assert_non_null(zc);
	for (int m = 0; m < 4; m++) {
		struct block_create_opts o = { .size = 64 << 20, .cluster_size = 4096 };
		struct block_check_result r;
		unsigned flags = 0;
		struct block_dev *bd;
		char name[32], err[256];

		snprintf(name, sizeof(name), "healthy-%s", modes[m]);
		assert_int_equal(block_create(tmpdir_path(name), "qcow2", &o, err, sizeof(err)), 0);
		assert_int_equal(block_overlap_check_flags(modes[m], &flags), 0);
		assert_int_equal(block_open(tmpdir_path(name), "qcow2", flags, &bd, err, sizeof(err)), 0);
		srand(42 + m);
		for (int i = 0; i < 300; i++) {
			uint64_t off = ((uint64_t)rand() % ((64 << 20) / 512 - 512)) * 512;
			size_t len = 512 * (1 + (size_t)(rand() % 512));
			memset(data, i, len);
			switch (rand() % 8) {
			case 0:
				assert_int_equal(block_discard(bd, off, len), 0);
				break;
			case 1:
				memset(zc, i, 4096);
				assert_int_equal(block_pwrite_compressed(bd, off & ~4095ULL, zc, 4096),
						 0);
				break;
			default:
				assert_int_equal(block_pwrite(bd, off, data, len), 0);
			}
			if (i % 100 == 50) {
				char sn[16];
				snprintf(sn, sizeof(sn), "s%d", i);
				assert_int_equal(block_snapshot_create(bd, sn, err, sizeof(err)), 0);
			}
			if (i % 37 == 0)
				assert_int_equal(block_flush(bd), 0);
		}
		assert_int_equal(block_snapshot_delete(bd, "s150", err, sizeof(err)), 0);
		assert_int_equal(block_truncate(bd, 2ULL << 30, false, BLOCK_PREALLOC_OFF, err,
						sizeof(err)), 0);
		assert_int_equal(block_pwrite(bd, (2ULL << 30) - 4 * CS, data, 4 * CS), 0);
		block_close(bd);
		assert_false(is_marked_corrupt(name));
		assert_int_equal(block_open(tmpdir_path(name), "qcow2", BLOCK_RDONLY, &bd, err,
					    sizeof(err)), 0);
		assert_int_equal(block_check(bd, 0, &r, stderr), 0);
		assert_int_equal(r.corruptions, 0);
		assert_int_equal(r.leaks, 0);
		block_close(bd);
	}
	free(data);
	free(zc);
}

/*
 * preallocation=metadata maps clusters that hold no data yet: they must
 * still lie inside the file (QEMU grows it), or the new past-the-end check
 * would call a freshly resized image corrupt.
 */
static void test_metadata_prealloc_inside_file(void **state)
{
	struct block_create_opts o = { .size = 1 << 20, .prealloc = BLOCK_PREALLOC_METADATA };
	struct block_check_result r;
	struct block_dev *bd;
	uint8_t *buf = malloc(2 << 20);
	char err[256];

	assert_non_null(buf);
	assert_int_equal(block_create(tmpdir_path("pm"), "qcow2", &o, err, sizeof(err)), 0);
	assert_int_equal(block_open(tmpdir_path("pm"), "qcow2", 0, &bd, err, sizeof(err)), 0);
	assert_int_equal(block_truncate(bd, 2 << 20, false, BLOCK_PREALLOC_METADATA, err,
					sizeof(err)), 0);
	assert_int_equal(block_pread(bd, 0, buf, 2 << 20), 0);
	assert_true(block_buffer_is_zero(buf, 2 << 20));
	/* Every mapped cluster, the ones the resize added included, inside the file. */
	for (uint64_t off = 0, pnum, map; off < (2 << 20); off += pnum) {
		unsigned flags;
		struct stat st;
		assert_int_equal(block_status(bd, off, (2 << 20) - off, &pnum, &map, &flags), 0);
		assert_int_equal(stat(tmpdir_path("pm"), &st), 0);
		assert_true(flags & BLOCK_STATUS_OFFSET);
		assert_true(map + pnum <= (uint64_t)st.st_size);
	}
	assert_int_equal(block_check(bd, 0, &r, NULL), 0);
	assert_int_equal(r.corruptions, 0);
	block_close(bd);
	assert_false(is_marked_corrupt("pm"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_writes_refused),
		cmocka_unit_test(test_hostile_reads_refused),
		cmocka_unit_test(test_data_past_eof),
		cmocka_unit_test(test_unaccounted_entries_refused),
		cmocka_unit_test(test_l2_table_named_twice),
		cmocka_unit_test(test_modes_differ),
		cmocka_unit_test(test_all_sees_snapshot_l2),
		cmocka_unit_test(test_healthy_images_stay_clean),
		cmocka_unit_test(test_metadata_prealloc_inside_file),
	};

	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
