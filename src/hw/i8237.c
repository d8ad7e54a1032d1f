#include "hw/i8237.h"

#include <string.h>

#define REG_STATUS 0x08		/* read: status; write: command */
#define REG_MASK 0x0a		/* single-channel mask */
#define REG_MODE 0x0b
#define REG_FLIP_FLOP 0x0c
#define REG_MASTER_CLEAR 0x0d
#define REG_CLEAR_MASK 0x0e
#define REG_ALL_MASK 0x0f

#define MODE_AUTOINIT 0x10
#define MODE_DECREMENT 0x20

/* Page register ports 0x81-0x87 in channel order: 0x87 ch0, 0x83 ch1, 0x81 ch2, 0x82 ch3. */
static const int page_channel[I8237_NR_PAGE_PORTS] = { 2, 3, 1, -1, -1, -1, 0 };

static void reset(struct i8237 *dma)
{
	memset(dma->ch, 0, sizeof(dma->ch));
	for (unsigned i = 0; i < 4; i++)
		dma->ch[i].masked = true;
	dma->flip_flop = false;
	dma->status = 0;
}

void i8237_init(struct i8237 *dma, const struct guest_memory *mem)
{
	memset(dma, 0, sizeof(*dma));
	pthread_mutex_init(&dma->lock, NULL);
	dma->mem = mem;
	reset(dma);
}

void i8237_destroy(struct i8237 *dma)
{
	pthread_mutex_destroy(&dma->lock);
}

/* Address and count registers are 16 bits wide, written and read a byte at a time. */
static void word_io(struct i8237 *dma, uint16_t *base, uint16_t *cur, bool is_write,
		    uint8_t *data)
{
	unsigned shift = dma->flip_flop ? 8 : 0;

	if (is_write) {
		*base = (uint16_t)((*base & ~(0xffu << shift)) | (unsigned)*data << shift);
		*cur = *base;
	} else {
		*data = (uint8_t)(*cur >> shift);
	}
	dma->flip_flop = !dma->flip_flop;
}

void i8237_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct i8237 *dma = dev;

	if (size != 1) {
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	pthread_mutex_lock(&dma->lock);
	if (offset < 8) {
		struct i8237_channel *c = &dma->ch[offset / 2];
		if (offset & 1)
			word_io(dma, &c->base_count, &c->count, is_write, data);
		else
			word_io(dma, &c->base_addr, &c->addr, is_write, data);
	} else if (!is_write) {
		/* Reading status clears the terminal-count bits (8237A data sheet). */
		*data = offset == REG_STATUS ? dma->status : 0;
		if (offset == REG_STATUS)
			dma->status = 0;
	} else {
		switch (offset) {
		case REG_MASK:
			dma->ch[*data & 3].masked = *data & 4;
			break;
		case REG_MODE:
			dma->ch[*data & 3].mode = *data;
			break;
		case REG_FLIP_FLOP:
			dma->flip_flop = false;
			break;
		case REG_MASTER_CLEAR:
			reset(dma);
			break;
		case REG_CLEAR_MASK:
			for (unsigned i = 0; i < 4; i++)
				dma->ch[i].masked = false;
			break;
		case REG_ALL_MASK:
			for (unsigned i = 0; i < 4; i++)
				dma->ch[i].masked = *data >> i & 1;
			break;
		default:	/* command and request registers: nothing to model */
			break;
		}
	}
	pthread_mutex_unlock(&dma->lock);
}

void i8237_page_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct i8237 *dma = dev;
	int chan = offset < I8237_NR_PAGE_PORTS ? page_channel[offset] : -1;

	if (size != 1 || chan < 0) {
		if (!is_write)
			memset(data, 0, size);
		return;
	}
	pthread_mutex_lock(&dma->lock);
	if (is_write)
		dma->ch[chan].page = *data;
	else
		*data = dma->ch[chan].page;
	pthread_mutex_unlock(&dma->lock);
}

void i8237_high_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	(void)dev;
	(void)offset;
	if (!is_write)
		memset(data, 0, size);
}

size_t i8237_remaining(struct i8237 *dma, unsigned chan)
{
	size_t n;

	pthread_mutex_lock(&dma->lock);
	n = dma->ch[chan & 3].masked ? 0 : (size_t)dma->ch[chan & 3].count + 1;
	pthread_mutex_unlock(&dma->lock);
	return n;
}

long i8237_transfer(struct i8237 *dma, unsigned chan, void *buf, size_t len, bool to_memory)
{
	struct i8237_channel *c = &dma->ch[chan & 3];
	uint8_t *p = buf;
	size_t done = 0;
	long rc = 0;

	pthread_mutex_lock(&dma->lock);
	if (c->masked || (c->mode & MODE_DECREMENT)) {
		rc = -1;
		goto out;
	}
	if (len > (size_t)c->count + 1)
		len = (size_t)c->count + 1;
	/* The address counter is 16 bits: the page register does not carry (8237A). */
	while (done < len) {
		size_t n = len - done, room = 0x10000u - c->addr;
		uint64_t gpa = (uint64_t)c->page << 16 | c->addr;
		if (n > room)
			n = room;
		void *host = memory_ptr(dma->mem, gpa, n);
		if (!host) {
			rc = -1;
			goto out;
		}
		if (to_memory)
			memcpy(host, p + done, n);
		else
			memcpy(p + done, host, n);
		done += n;
		c->addr = (uint16_t)(c->addr + n);
	}
	if (done == (size_t)c->count + 1) {
		dma->status |= (uint8_t)(1u << (chan & 3));	/* terminal count */
		if (c->mode & MODE_AUTOINIT) {
			c->addr = c->base_addr;
			c->count = c->base_count;
		} else {
			c->count = 0xffff;
			c->masked = true;
		}
	} else {
		c->count = (uint16_t)(c->count - done);
	}
	rc = (long)done;
out:
	pthread_mutex_unlock(&dma->lock);
	return rc;
}
