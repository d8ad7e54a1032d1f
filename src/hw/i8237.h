/*
 * The PC's first ISA DMA controller (Intel 8237A at ports 0x00-0x0f, page
 * registers at 0x81-0x87): four 8-bit channels, of which the floppy
 * controller uses channel 2.  Only single/demand transfers in increment
 * mode; every transfer lands in guest RAM checked by memory_ptr().
 * The second controller (0xc0-0xdf) is accepted and ignored, as nothing
 * here uses 16-bit DMA.
 */
#ifndef KESTREL_HW_I8237_H
#define KESTREL_HW_I8237_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/memory.h"

#define I8237_PORT 0x00
#define I8237_NR_PORTS 16
#define I8237_PAGE_PORT 0x81	/* 0x81-0x87: channel 2, 3, 1, (unused x3), 0 */
#define I8237_NR_PAGE_PORTS 7
#define I8237_HIGH_PORT 0xc0	/* the second controller, ignored */
#define I8237_NR_HIGH_PORTS 32

struct i8237_channel {
	uint16_t base_addr, base_count;
	uint16_t addr, count;	/* current; count is bytes - 1 */
	uint8_t page;
	uint8_t mode;
	bool masked;
};

struct i8237 {
	pthread_mutex_t lock;
	const struct guest_memory *mem;
	struct i8237_channel ch[4];
	bool flip_flop;		/* false: the next byte is the low one */
	uint8_t status;		/* terminal-count bits 0-3 */
};

void i8237_init(struct i8237 *dma, const struct guest_memory *mem);
void i8237_destroy(struct i8237 *dma);

void i8237_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void i8237_page_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void i8237_high_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

/* Bytes the channel will still move (count + 1), 0 while it is masked. */
size_t i8237_remaining(struct i8237 *dma, unsigned chan);

/*
 * Moves len bytes between buf and the channel's current address: into
 * guest memory (to_memory) or out of it.  Returns bytes moved (less at
 * terminal count), or -1 if the channel is masked or points outside RAM.
 */
long i8237_transfer(struct i8237 *dma, unsigned chan, void *buf, size_t len, bool to_memory);

#endif
