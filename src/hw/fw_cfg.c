#include "hw/fw_cfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"

/* fw_cfg.rst "DMA interface": the descriptor the guest points the DMA register at. */
struct fw_cfg_dma_access {
	uint32_t control;	/* all big-endian */
	uint32_t length;
	uint64_t address;
} __attribute__((packed));

/* fw_cfg.rst "FW_CFG_FILE_DIR": a big-endian count, then one of these per file. */
struct fw_cfg_file {
	uint32_t size;
	uint16_t select;
	uint16_t reserved;
	char name[FW_CFG_FILE_NAME_MAX];
} __attribute__((packed));

/* "QEMU CFG": what a read of the DMA register returns, so guests can detect it. */
static const uint8_t dma_signature[8] = { 'Q', 'E', 'M', 'U', ' ', 'C', 'F', 'G' };

int fw_cfg_init(struct fw_cfg *fw, const struct guest_memory *mem)
{
	static const uint32_t id = FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA;

	memset(fw, 0, sizeof(*fw));
	pthread_mutex_init(&fw->lock, NULL);
	fw->mem = mem;
	fw->cur = -1;
	if (fw_cfg_add_bytes(fw, FW_CFG_SIGNATURE, "QEMU", 4) < 0 ||
	    fw_cfg_add_bytes(fw, FW_CFG_ID, &id, 4) < 0)
		return -1;
	return 0;
}

void fw_cfg_destroy(struct fw_cfg *fw)
{
	for (unsigned i = 0; i < fw->nr_items; i++)
		free(fw->items[i].data);
	fw->nr_items = 0;
	pthread_mutex_destroy(&fw->lock);
}

static struct fw_cfg_item *find_key(struct fw_cfg *fw, uint16_t key)
{
	for (unsigned i = 0; i < fw->nr_items; i++)
		if (fw->items[i].key == key)
			return &fw->items[i];
	return NULL;
}

int fw_cfg_add_owned(struct fw_cfg *fw, uint16_t key, void *data, size_t len)
{
	struct fw_cfg_item *it = find_key(fw, key);

	if (len > UINT32_MAX || (!it && fw->nr_items == FW_CFG_MAX_ITEMS)) {
		free(data);
		return -1;
	}
	if (!it) {
		it = &fw->items[fw->nr_items++];
		it->key = key;
	}
	free(it->data);
	it->data = data;
	it->len = (uint32_t)len;
	return 0;
}

int fw_cfg_add_bytes(struct fw_cfg *fw, uint16_t key, const void *data, size_t len)
{
	uint8_t *copy;

	if (len > UINT32_MAX)
		return -1;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -1;
	memcpy(copy, data, len);
	return fw_cfg_add_owned(fw, key, copy, len);
}

/* Numbers are little-endian, as QEMU's fw_cfg_add_i16/i32/i64 store them. */
int fw_cfg_add_u16(struct fw_cfg *fw, uint16_t key, uint16_t value)
{
	return fw_cfg_add_bytes(fw, key, &value, sizeof(value));
}

int fw_cfg_add_u32(struct fw_cfg *fw, uint16_t key, uint32_t value)
{
	return fw_cfg_add_bytes(fw, key, &value, sizeof(value));
}

int fw_cfg_add_u64(struct fw_cfg *fw, uint16_t key, uint64_t value)
{
	return fw_cfg_add_bytes(fw, key, &value, sizeof(value));
}

/* The directory is rebuilt after each file so it is always complete. */
static int rebuild_dir(struct fw_cfg *fw)
{
	size_t len = 4 + fw->nr_files * sizeof(struct fw_cfg_file);
	uint8_t *dir = calloc(1, len);
	unsigned n = 0;
	int rc;

	if (!dir)
		return -1;
	st_be32(dir, fw->nr_files);
	for (unsigned i = 0; i < fw->nr_items; i++) {
		const struct fw_cfg_item *it = &fw->items[i];
		struct fw_cfg_file f = { 0 };
		if (it->key < FW_CFG_FILE_FIRST || it->key >= FW_CFG_ARCH_LOCAL)
			continue;
		st_be32(&f.size, it->len);
		st_be16(&f.select, it->key);
		memcpy(f.name, it->name, sizeof(f.name));
		memcpy(dir + 4 + n++ * sizeof(f), &f, sizeof(f));
	}
	rc = fw_cfg_add_bytes(fw, FW_CFG_FILE_DIR, dir, len);
	free(dir);
	return rc;
}

int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len)
{
	uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + fw->nr_files);

	if (strlen(name) >= FW_CFG_FILE_NAME_MAX || fw_cfg_add_bytes(fw, key, data, len) < 0)
		return -1;
	snprintf(find_key(fw, key)->name, FW_CFG_FILE_NAME_MAX, "%s", name);
	fw->nr_files++;
	return rebuild_dir(fw);
}

static void select_key(struct fw_cfg *fw, uint16_t key)
{
	/* Bit 14 asks for write access, which no item grants; bit 15 is arch-local. */
	struct fw_cfg_item *it = find_key(fw, key & ~0x4000);

	fw->cur = it ? (int)(it - fw->items) : -1;
	fw->offset = 0;
}

/* Copies up to len bytes of the selected item at the read position; unknown reads as 0. */
static void read_bytes(struct fw_cfg *fw, uint8_t *out, uint32_t len)
{
	const struct fw_cfg_item *it = fw->cur >= 0 ? &fw->items[fw->cur] : NULL;
	uint32_t avail = it && fw->offset < it->len ? it->len - fw->offset : 0;
	uint32_t n = len < avail ? len : avail;

	if (n)
		memcpy(out, it->data + fw->offset, n);
	memset(out + n, 0, len - n);
	fw->offset += n;
}

void fw_cfg_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct fw_cfg *fw = dev;
	uint16_t key = 0;

	pthread_mutex_lock(&fw->lock);
	if (offset == 0 && is_write) {
		memcpy(&key, data, size >= 2 ? 2 : 1);
		select_key(fw, key);
	} else if (offset == 1 && !is_write) {
		read_bytes(fw, data, size);
	} else if (!is_write) {
		memset(data, 0, size);
	}
	pthread_mutex_unlock(&fw->lock);
}

/* Runs one DMA descriptor; every guest address is checked against RAM. */
static void run_dma(struct fw_cfg *fw, uint64_t desc_gpa)
{
	struct fw_cfg_dma_access *d = memory_ptr(fw->mem, desc_gpa, sizeof(*d));
	uint32_t control, length;
	uint64_t address;
	uint8_t *buf;

	if (!d)
		return;
	control = ld_be32(&d->control);
	length = ld_be32(&d->length);
	address = ld_be64(&d->address);
	if (control & FW_CFG_DMA_CTL_SELECT)
		select_key(fw, (uint16_t)(control >> 16));
	if (control & FW_CFG_DMA_CTL_WRITE) {
		st_be32(&d->control, FW_CFG_DMA_CTL_ERROR);	/* no item is writable */
		return;
	}
	if (control & FW_CFG_DMA_CTL_READ) {
		buf = memory_ptr(fw->mem, address, length);
		if (!buf) {
			st_be32(&d->control, FW_CFG_DMA_CTL_ERROR);
			return;
		}
		read_bytes(fw, buf, length);
	} else if (control & FW_CFG_DMA_CTL_SKIP) {
		fw->offset = fw->offset + length < fw->offset ? UINT32_MAX : fw->offset + length;
	}
	/*
	 * The data before the status: a release fence, then a plain store, as
	 * the guest's structure need not be aligned for an atomic one.
	 */
	uint32_t done = 0;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(&d->control, &done, sizeof(done));
}

void fw_cfg_dma_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct fw_cfg *fw = dev;

	if (offset >= 8 || offset + size > 8)
		return;
	pthread_mutex_lock(&fw->lock);
	if (!is_write) {
		memcpy(data, dma_signature + offset, size);
	} else {
		memcpy(fw->dma_addr + offset, data, size);
		/* A write that covers the low half starts the transfer (fw_cfg.rst). */
		if (offset + size == 8) {
			run_dma(fw, ld_be64(fw->dma_addr));
			memset(fw->dma_addr, 0, 8);
		}
	}
	pthread_mutex_unlock(&fw->lock);
}
