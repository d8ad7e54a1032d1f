/*
 * blkdebug (QEMU's block/blkdebug.c): a protocol node that passes I/O to its
 * image and fails it on purpose.  Rules come from a config file
 * ("blkdebug:CONFIG:IMAGE", QEMU's qemu_config_parse syntax) or from
 * inject-error.N.* / set-state.N.* options.  The formats above raise events
 * (block_debug_event: l2_load, read_aio, flush_to_disk, ...); an event
 * activates the inject-error rules for it that match the current state,
 * and the next requests that reach the node fail with their errno.
 *
 * The rule engine (parser, events, checks) is separate from the block
 * layer so unit tests and the fuzz target drive it alone.
 */
#ifndef KESTREL_BLOCK_BLKDEBUG_H
#define KESTREL_BLOCK_BLKDEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* QEMU's BlkdebugEvent (qapi/block-core.json), in its order. */
enum blkdebug_event {
	BLKDBG_L1_UPDATE, BLKDBG_L1_GROW_ALLOC_TABLE, BLKDBG_L1_GROW_WRITE_TABLE,
	BLKDBG_L1_GROW_ACTIVATE_TABLE, BLKDBG_L2_LOAD, BLKDBG_L2_UPDATE,
	BLKDBG_L2_UPDATE_COMPRESSED, BLKDBG_L2_ALLOC_COW_READ, BLKDBG_L2_ALLOC_WRITE,
	BLKDBG_READ_AIO, BLKDBG_READ_BACKING_AIO, BLKDBG_READ_COMPRESSED, BLKDBG_WRITE_AIO,
	BLKDBG_WRITE_COMPRESSED, BLKDBG_VMSTATE_LOAD, BLKDBG_VMSTATE_SAVE, BLKDBG_COW_READ,
	BLKDBG_COW_WRITE, BLKDBG_REFTABLE_LOAD, BLKDBG_REFTABLE_GROW, BLKDBG_REFTABLE_UPDATE,
	BLKDBG_REFBLOCK_LOAD, BLKDBG_REFBLOCK_UPDATE, BLKDBG_REFBLOCK_UPDATE_PART,
	BLKDBG_REFBLOCK_ALLOC, BLKDBG_REFBLOCK_ALLOC_HOOKUP, BLKDBG_REFBLOCK_ALLOC_WRITE,
	BLKDBG_REFBLOCK_ALLOC_WRITE_BLOCKS, BLKDBG_REFBLOCK_ALLOC_WRITE_TABLE,
	BLKDBG_REFBLOCK_ALLOC_SWITCH_TABLE, BLKDBG_CLUSTER_ALLOC, BLKDBG_CLUSTER_ALLOC_BYTES,
	BLKDBG_CLUSTER_FREE, BLKDBG_FLUSH_TO_OS, BLKDBG_FLUSH_TO_DISK, BLKDBG_PWRITEV_RMW_HEAD,
	BLKDBG_PWRITEV_RMW_AFTER_HEAD, BLKDBG_PWRITEV_RMW_TAIL, BLKDBG_PWRITEV_RMW_AFTER_TAIL,
	BLKDBG_PWRITEV, BLKDBG_PWRITEV_ZERO, BLKDBG_PWRITEV_DONE, BLKDBG_EMPTY_IMAGE_PREPARE,
	BLKDBG_L1_SHRINK_WRITE_TABLE, BLKDBG_L1_SHRINK_FREE_L2_CLUSTERS, BLKDBG_COR_WRITE,
	BLKDBG_CLUSTER_ALLOC_SPACE, BLKDBG_NONE,
	BLKDBG__MAX
};

/* QEMU's BlkdebugIOType: which requests an inject-error rule fails. */
enum blkdebug_iotype {
	BLKDBG_IO_READ, BLKDBG_IO_WRITE, BLKDBG_IO_WRITE_ZEROES, BLKDBG_IO_DISCARD,
	BLKDBG_IO_FLUSH, BLKDBG_IO_BLOCK_STATUS,
	BLKDBG_IO__MAX
};

struct blkdebug;

struct blkdebug *blkdebug_new(void);
void blkdebug_free(struct blkdebug *s);

/* The event named name, or -1. */
int blkdebug_event_by_name(const char *name);

/*
 * Adds the rules of a config file's text (QEMU's qemu_config_parse: "[group]"
 * lines, key = "value" lines, '#' comments).  0, or -1 with QEMU's message.
 */
int blkdebug_parse_config(struct blkdebug *s, const char *text, size_t len, char *err,
			  size_t errlen);

/*
 * Adds one rule of group "inject-error" or "set-state" from n key/value
 * pairs (the options' inject-error.N.* members).  0, or -1 with a message.
 */
int blkdebug_add_rule(struct blkdebug *s, const char *group, const char *const *keys,
		      const char *const *values, size_t n, char *err, size_t errlen);

/* An event raised by the format above: rules for it act (QEMU's blkdebug_debug_event). */
void blkdebug_event(struct blkdebug *s, enum blkdebug_event ev);

/*
 * A request of type t for [off, off+bytes) reaching the node: 0, or the
 * negative errno of the first active rule that matches (QEMU's rule_check).
 */
int blkdebug_check(struct blkdebug *s, uint64_t off, uint64_t bytes, enum blkdebug_iotype t);

/* The current state (1 after open), for tests. */
int blkdebug_state(const struct blkdebug *s);

#endif
