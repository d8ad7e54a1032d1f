/*
 * A bounded write-back cache of cluster-sized tables (L2 tables or refcount
 * blocks), least recently used out.  Tables are kept as on disk (big endian).
 * Before a dirty L2 table goes to disk the refcount cache is flushed, so a
 * table never points at a cluster whose refcount is not yet on disk.
 */
#include "block/blkdebug.h"
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int qcow2_cache_init(struct qcow2_cache *c, unsigned n, size_t table_size, bool is_l2)
{
	memset(c, 0, sizeof(*c));
	c->n = n;
	c->table_size = table_size;
	c->is_l2 = is_l2;
	c->e = calloc(n, sizeof(*c->e));
	c->mem = block_alloc_buf(n * table_size);
	if (!c->e || !c->mem) {
		free(c->e);
		free(c->mem);
		c->e = NULL;
		c->mem = NULL;
		return -ENOMEM;
	}
	return 0;
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
	free(c->e);
	free(c->mem);
	c->e = NULL;
	c->mem = NULL;
}

static void *slot_table(struct qcow2_cache *c, unsigned i)
{
	return c->mem + (size_t)i * c->table_size;
}

static unsigned table_slot(struct qcow2_cache *c, const void *table)
{
	return (unsigned)(((const uint8_t *)table - c->mem) / c->table_size);
}

static int writeback(struct qcow2 *s, struct qcow2_cache *c, unsigned i)
{
	int ret;

	if (!c->e[i].dirty)
		return 0;
	if (c->is_l2) {
		ret = qcow2_rc_flush(s, true);
		if (ret < 0)
			return ret;
	}
	/* A table may sit on nothing but itself (QEMU's qcow2_cache_entry_flush). */
	ret = qcow2_checked_write(s, c->is_l2 ? QCOW2_OL_ACTIVE_L2 | QCOW2_OL_INACTIVE_L2
					      : QCOW2_OL_REFCOUNT_BLOCK,
				  c->e[i].offset, slot_table(c, i), c->table_size);
	if (ret < 0)
		return ret;
	if (!c->is_l2)
		s->rc_dirty_unsynced = true;
	c->e[i].dirty = false;
	return 0;
}

int qcow2_cache_get(struct qcow2 *s, struct qcow2_cache *c, uint64_t offset, bool read,
		    void **table)
{
	unsigned i, victim = c->n;
	int ret;

	if (c->hint < c->n && c->e[c->hint].offset == offset) {
		i = c->hint;
		goto hit;
	}
	for (i = 0; i < c->n; i++) {
		if (c->e[i].offset == offset)
			goto hit;
		if (c->e[i].pins)
			continue;
		if (victim == c->n || !c->e[i].offset ||
		    (c->e[victim].offset && c->e[i].lru < c->e[victim].lru))
			victim = i;
	}
	if (victim == c->n)
		return -ENOMEM;	/* every slot pinned: a bug, but not a crash */
	i = victim;
	ret = writeback(s, c, i);
	if (ret < 0)
		return ret;
	c->e[i].offset = 0;
	if (read && c->is_l2) {
		ret = qcow2_check_l2_table(s, offset);
		if (ret < 0)
			return ret;
	}
	if (read) {
		/* QEMU's qcow2_cache_do_get raises l2_load; load_refcount_block refblock_load. */
		block_debug_event(s->bd, c->is_l2 ? BLKDBG_L2_LOAD : BLKDBG_REFBLOCK_LOAD);
		ret = bfile_pread(s->bd, offset, slot_table(c, i), c->table_size);
		if (ret == 0 && c->is_l2)
			ret = qcow2_check_l2_entries(s, offset, slot_table(c, i));
		if (ret < 0)
			return ret;
	} else {
		memset(slot_table(c, i), 0, c->table_size);
	}
	c->e[i].offset = offset;
	c->e[i].dirty = false;
	goto found;
hit:
	if (!read)
		memset(slot_table(c, i), 0, c->table_size);
found:
	c->e[i].lru = ++c->clock;
	c->e[i].pins++;
	c->hint = i;
	*table = slot_table(c, i);
	return 0;
}

void qcow2_cache_put(struct qcow2_cache *c, void *table)
{
	unsigned i = table_slot(c, table);

	if (i < c->n && c->e[i].pins > 0)
		c->e[i].pins--;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table)
{
	unsigned i = table_slot(c, table);

	if (i < c->n)
		c->e[i].dirty = true;
}

int qcow2_cache_flush(struct qcow2 *s, struct qcow2_cache *c)
{
	int ret = 0;

	/* Ascending offsets would be nicer to the disk; the set is small. */
	for (unsigned i = 0; i < c->n; i++) {
		if (!c->e[i].offset || !c->e[i].dirty)
			continue;
		int r = writeback(s, c, i);
		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset)
{
	for (unsigned i = 0; i < c->n; i++) {
		if (c->e[i].offset == offset) {
			c->e[i].offset = 0;
			c->e[i].dirty = false;
		}
	}
}

void qcow2_cache_clear(struct qcow2_cache *c)
{
	for (unsigned i = 0; i < c->n; i++) {
		c->e[i].offset = 0;
		c->e[i].dirty = false;
		c->e[i].pins = 0;
	}
}
