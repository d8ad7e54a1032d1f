/*
 * Formats that map the disk in fixed-size blocks through one table (vpc's
 * block allocation table, vdi's block map): the table read with its bounds
 * checked against the file, and the read, write and status loops that split
 * requests at block boundaries.  A driver says where a block lives (lookup)
 * and how a new one is made (alloc); blockmap.c does the rest.
 */
#ifndef KESTREL_BLOCK_BLOCKMAP_H
#define KESTREL_BLOCK_BLOCKMAP_H

#include "block/block_int.h"

struct blockmap {
	struct block_dev *bd;
	uint64_t block_size;
	/* Host offset of block's first byte, 0 when unallocated, or a negative errno. */
	int64_t (*lookup)(struct block_dev *bd, uint64_t block);
	/*
	 * Allocates block and writes buf to [in, in + len) of it, the rest of
	 * the block reading as zeroes: 0 or a negative errno.  Called under lock.
	 */
	int (*alloc)(struct block_dev *bd, uint64_t block, uint64_t in, const void *buf,
		     size_t len);
	/*
	 * Optional: called under lock before data are written to an allocated
	 * block at host (vpc marks the block's sectors present).
	 */
	int (*before_write)(struct block_dev *bd, uint64_t block, int64_t host);
	/* Status asks the file which data are holes (QEMU's BDRV_BLOCK_RECURSE). */
	bool recurse;
	/* Orders allocations against lookups of the block being allocated. */
	pthread_mutex_t lock;
};

void blockmap_init(struct blockmap *m, struct block_dev *bd, uint64_t block_size);
void blockmap_destroy(struct blockmap *m);

/*
 * Reads len bytes of table at off into a new buffer, refusing a table that
 * does not lie inside the file (so the allocation never exceeds what the
 * file holds).  what names the table in the message.
 */
void *blockmap_read_table(struct block_dev *bd, uint64_t off, uint64_t len, const char *what,
			  char *err, size_t errlen);

int blockmap_pread(struct blockmap *m, uint64_t off, void *buf, size_t len);
int blockmap_pwrite(struct blockmap *m, uint64_t off, const void *buf, size_t len);
/* Writes zeroes: allocated blocks get them (holes in the file), unallocated ones read as zero. */
int blockmap_write_zeroes(struct blockmap *m, uint64_t off, uint64_t len);
/*
 * Allocated: one block at most, data at *map.  Unallocated: the run of
 * unallocated blocks, zero (the formats have no backing file).
 */
int blockmap_status(struct blockmap *m, uint64_t off, uint64_t len, uint64_t *pnum,
		    uint64_t *map, unsigned *flags);

/* A random (version 4) UUID for a new image's header. */
void blockmap_uuid(uint8_t uuid[16]);

#endif
