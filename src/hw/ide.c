#include "hw/ide.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* Status and error bits (ATA/ATAPI-6 §7.15, §7.9). */
#define ST_BSY 0x80
#define ST_DRDY 0x40
#define ST_DSC 0x10
#define ST_DRQ 0x08
#define ST_ERR 0x01
#define ERR_ABRT 0x04
#define ERR_IDNF 0x10
#define ERR_UNC 0x40
#define CTRL_NIEN 0x02
#define CTRL_SRST 0x04
#define CTRL_HOB 0x80
#define SEL_LBA 0x40

/* Bus master registers (SFF-8038i). */
#define BM_CMD_START 0x01
#define BM_ST_ACTIVE 0x01
#define BM_ST_ERROR 0x02
#define BM_ST_INTR 0x04
#define PRD_EOT 0x80000000u
#define PRD_MAX_ENTRIES 8192	/* a table may not cross a 64 KiB boundary */

#define MAX_MULTIPLE 16
#define KESTREL_IDE_FW "2.5+"	/* QEMU's firmware revision string */

struct ide_drive *ide_cur(struct ide_channel *ch)
{
	return &ch->drives[(ch->select >> 4) & 1];
}

static bool channel_empty(const struct ide_channel *ch)
{
	return !ch->drives[0].blk && !ch->drives[1].blk;
}

static unsigned channel_irq(const struct ide_channel *ch)
{
	return ch->index ? IDE_SECONDARY_IRQ : IDE_PRIMARY_IRQ;
}

void ide_raise_irq(struct ide_channel *ch)
{
	ch->bm_status |= BM_ST_INTR;
	if (ch->control & CTRL_NIEN)
		return;
	ch->irq = true;
	ch->ide->ops->set_irq(ch->ide->opaque, channel_irq(ch), true);
}

static void lower_irq(struct ide_channel *ch)
{
	if (!ch->irq)
		return;
	ch->irq = false;
	ch->ide->ops->set_irq(ch->ide->opaque, channel_irq(ch), false);
}

static void complete(struct ide_channel *ch)
{
	ch->xfer = XFER_NONE;
	ch->dma_pending = false;
	ch->status = ST_DRDY | ST_DSC;
	ide_raise_irq(ch);
}

static void fail(struct ide_channel *ch, uint8_t error)
{
	ch->xfer = XFER_NONE;
	ch->dma_pending = false;
	ch->error = error;
	ch->status = ST_DRDY | ST_ERR;
	ide_raise_irq(ch);
}

void ide_abort(struct ide_channel *ch)
{
	fail(ch, ERR_ABRT);
}

/* ATA/ATAPI-6 §9.12: what a device leaves in the task file after a reset. */
void ide_set_signature(struct ide_channel *ch, unsigned unit)
{
	const struct ide_drive *d = &ch->drives[unit];

	ch->select &= 0xf0;
	ch->nsector = 1;
	ch->lbal = 1;
	if (d->cdrom) {
		ch->lbam = 0x14;
		ch->lbah = 0xeb;
	} else if (d->blk) {
		ch->lbam = ch->lbah = 0;
	} else {
		ch->lbam = ch->lbah = 0xff;
	}
}

static void reset_channel(struct ide_channel *ch)
{
	struct ide_drive *d;

	ch->xfer = XFER_NONE;
	ch->dma_pending = false;
	ch->error = 0x01;	/* diagnostic code: device 0 passed */
	for (unsigned u = 0; u < 2; u++)
		ch->drives[u].sig_valid = ch->drives[u].blk != NULL;
	ide_set_signature(ch, (ch->select >> 4) & 1);
	d = ide_cur(ch);
	ch->status = d->cdrom ? 0 : ST_DRDY | ST_DSC;
}

/* The identify strings: ASCII, space padded, two characters per word swapped (§8.15). */
static void put_string(uint16_t *words, unsigned first, const char *s, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++) {
		char c = *s ? *s++ : ' ';
		((uint8_t *)(words + first))[i ^ 1] = (uint8_t)c;
	}
}

void ide_start_pio_in(struct ide_channel *ch, uint32_t len)
{
	ch->pos = 0;
	ch->len = len;
	ch->xfer = XFER_PIO_IN;
	ch->status = ST_DRDY | ST_DSC | ST_DRQ;
	ide_raise_irq(ch);
}

static void ata_identify(struct ide_channel *ch)
{
	struct ide_drive *d = ide_cur(ch);
	uint16_t *w = (uint16_t *)ch->buf;
	uint64_t lba28 = d->sectors < 0x0fffffff ? d->sectors : 0x0fffffff;
	uint32_t chs = (uint32_t)d->cyls * d->heads * d->spt;

	memset(w, 0, 512);
	w[0] = 0x0040;			/* fixed device */
	w[1] = d->cyls;
	w[3] = d->heads;
	w[6] = d->spt;
	put_string(w, 10, d->serial, 20);
	put_string(w, 23, KESTREL_IDE_FW, 8);
	put_string(w, 27, "QEMU HARDDISK", 40);
	w[47] = 0x8000 | MAX_MULTIPLE;
	w[49] = 0x0300;			/* LBA and DMA supported */
	w[51] = 0x0200;
	w[53] = 0x0007;			/* words 54-58, 64-70 and 88 are valid */
	w[54] = d->cyls;
	w[55] = d->heads;
	w[56] = d->spt;
	w[57] = (uint16_t)chs;
	w[58] = (uint16_t)(chs >> 16);
	w[59] = d->multiple ? 0x100 | d->multiple : 0;
	w[60] = (uint16_t)lba28;
	w[61] = (uint16_t)(lba28 >> 16);
	w[63] = 0x0407;			/* multiword DMA 0-2, mode 2 selected */
	w[64] = 0x0003;			/* PIO 3 and 4 */
	w[65] = w[66] = w[67] = w[68] = 120;
	w[80] = 0x00f0;			/* ATA-4 to ATA-7 */
	w[81] = 0x0016;
	w[82] = 0x4000 | 0x0020;	/* write cache */
	w[83] = 0x4000 | 0x2000 | 0x1000 | 0x0400;	/* FLUSH EXT, FLUSH, LBA48 */
	w[84] = 0x4000;
	w[85] = w[82];
	w[86] = 0x2000 | 0x1000 | 0x0400;
	w[87] = 0x4000;
	w[88] = 0x003f;			/* UDMA 0-5 */
	w[93] = 0x6001;
	for (unsigned i = 0; i < 4; i++)
		w[100 + i] = (uint16_t)(d->sectors >> (16 * i));
	ide_start_pio_in(ch, 512);
}

/* The command's first sector and count from the task file; false after failing it. */
static bool ata_range(struct ide_channel *ch, uint64_t *lba, uint32_t *count)
{
	struct ide_drive *d = ide_cur(ch);

	if (ch->lba48) {
		*lba = (uint64_t)ch->lbal | (uint64_t)ch->lbam << 8 | (uint64_t)ch->lbah << 16 |
		       (uint64_t)ch->hob_lbal << 24 | (uint64_t)ch->hob_lbam << 32 |
		       (uint64_t)ch->hob_lbah << 40;
		*count = (uint32_t)ch->nsector | (uint32_t)ch->hob_nsector << 8;
		if (!*count)
			*count = 65536;
	} else {
		if (ch->select & SEL_LBA) {
			*lba = (uint64_t)(ch->select & 0x0f) << 24 | (uint64_t)ch->lbah << 16 |
			       (uint64_t)ch->lbam << 8 | ch->lbal;
		} else {
			/* CHS (§6.2): ((cylinder * heads) + head) * sectors + sector - 1. */
			uint32_t cyl = (uint32_t)ch->lbah << 8 | ch->lbam;
			if (!ch->lbal || !d->heads || !d->spt) {
				fail(ch, ERR_IDNF | ERR_ABRT);
				return false;
			}
			*lba = ((uint64_t)cyl * d->heads + (ch->select & 0x0f)) * d->spt +
			       ch->lbal - 1;
		}
		*count = ch->nsector ? ch->nsector : 256;
	}
	if (*lba > d->sectors || *count > d->sectors - *lba) {
		fail(ch, ERR_IDNF);
		return false;
	}
	return true;
}

/*
 * The disk's I/O, each call one request in the image's statistics (QEMU's ide
 * accounting) and under the drive's I/O limits.  IDE's I/O runs on the vCPU
 * that started it, so a throttled transfer holds that vCPU (QEMU's is
 * asynchronous); virtio-blk's waits on its I/O thread instead.
 */
static int ide_pread(struct ide_drive *d, uint64_t off, void *buf, size_t len)
{
	uint64_t t0;
	int rc;

	block_io_throttle(d->blk, false, len);
	t0 = block_acct_now();
	rc = block_pread(d->blk, off, buf, len);

	block_acct_done(d->blk, BLOCK_ACCT_READ, off, len, block_acct_now() - t0, rc < 0);
	return d->ignore_read_errors ? 0 : rc;
}

static int ide_pwrite(struct ide_drive *d, uint64_t off, const void *buf, size_t len)
{
	uint64_t t0;
	int rc;

	block_io_throttle(d->blk, true, len);
	t0 = block_acct_now();
	rc = block_pwrite(d->blk, off, buf, len);

	block_acct_done(d->blk, BLOCK_ACCT_WRITE, off, len, block_acct_now() - t0, rc < 0);
	return d->ignore_write_errors ? 0 : rc;
}

static int ide_flush(struct ide_drive *d)
{
	uint64_t t0 = block_acct_now();
	int rc = block_flush(d->blk);

	block_acct_done(d->blk, BLOCK_ACCT_FLUSH, 0, 0, block_acct_now() - t0, rc < 0);
	return d->ignore_write_errors ? 0 : rc;
}

static void pio_read_block(struct ide_channel *ch)
{
	struct ide_drive *d = ide_cur(ch);
	uint32_t n = ch->left < ch->block ? ch->left : ch->block;

	if (ide_pread(d, ch->lba * 512, ch->buf, n * 512) < 0) {
		fail(ch, ERR_UNC);
		return;
	}
	ch->lba += n;
	ch->left -= n;
	ide_start_pio_in(ch, n * 512);
}

static void pio_write_block_start(struct ide_channel *ch, bool irq)
{
	uint32_t n = ch->left < ch->block ? ch->left : ch->block;

	ch->pos = 0;
	ch->len = n * 512;
	ch->xfer = XFER_PIO_OUT;
	ch->status = ST_DRDY | ST_DSC | ST_DRQ;
	if (irq)
		ide_raise_irq(ch);
}

static void pio_write_block_done(struct ide_channel *ch)
{
	struct ide_drive *d = ide_cur(ch);
	uint32_t n = ch->len / 512;

	if (ide_pwrite(d, ch->lba * 512, ch->buf, ch->len) < 0) {
		fail(ch, ERR_ABRT);
		return;
	}
	ch->lba += n;
	ch->left -= n;
	if (ch->left)
		pio_write_block_start(ch, true);
	else
		complete(ch);
}

/* Starts a read or write; kind: 0 PIO single, 1 PIO multiple, 2 DMA. */
static void ata_rw(struct ide_channel *ch, bool write, int kind)
{
	struct ide_drive *d = ide_cur(ch);
	uint32_t count;

	if (kind == 1 && !d->multiple) {
		ide_abort(ch);	/* READ/WRITE MULTIPLE before SET MULTIPLE MODE */
		return;
	}
	if (write && block_is_readonly(d->blk)) {
		ide_abort(ch);
		return;
	}
	if (!ata_range(ch, &ch->lba, &count))
		return;
	ch->left = count;
	ch->block = kind == 1 ? d->multiple : 1;
	if (kind == 2)
		ide_start_dma(ch, write);
	else if (write)
		pio_write_block_start(ch, false);
	else
		pio_read_block(ch);
}

static void ata_native_max(struct ide_channel *ch)
{
	uint64_t max = ide_cur(ch)->sectors - 1;

	ch->lbal = (uint8_t)max;
	ch->lbam = (uint8_t)(max >> 8);
	ch->lbah = (uint8_t)(max >> 16);
	if (ch->lba48) {
		ch->hob_lbal = (uint8_t)(max >> 24);
		ch->hob_lbam = (uint8_t)(max >> 32);
		ch->hob_lbah = (uint8_t)(max >> 40);
	} else {
		ch->select = (uint8_t)((ch->select & 0xf0) | ((max >> 24) & 0x0f));
	}
	complete(ch);
}

static void ata_command(struct ide_channel *ch, uint8_t cmd)
{
	struct ide_drive *d = ide_cur(ch);

	ch->lba48 = cmd == 0x24 || cmd == 0x25 || cmd == 0x29 || cmd == 0x34 || cmd == 0x35 ||
		    cmd == 0x39 || cmd == 0x42 || cmd == 0x27;
	switch (cmd) {
	case 0xec:	/* IDENTIFY DEVICE */
		ata_identify(ch);
		break;
	case 0x20: case 0x21: case 0x24:	/* READ SECTORS (EXT) */
		ata_rw(ch, false, 0);
		break;
	case 0xc4: case 0x29:			/* READ MULTIPLE (EXT) */
		ata_rw(ch, false, 1);
		break;
	case 0xc8: case 0xc9: case 0x25:	/* READ DMA (EXT) */
		ata_rw(ch, false, 2);
		break;
	case 0x30: case 0x31: case 0x34:	/* WRITE SECTORS (EXT) */
		ata_rw(ch, true, 0);
		break;
	case 0xc5: case 0x39:			/* WRITE MULTIPLE (EXT) */
		ata_rw(ch, true, 1);
		break;
	case 0xca: case 0xcb: case 0x35:	/* WRITE DMA (EXT) */
		ata_rw(ch, true, 2);
		break;
	case 0x40: case 0x41: case 0x42: {	/* READ VERIFY SECTORS (EXT) */
		uint64_t lba;
		uint32_t count;
		if (ata_range(ch, &lba, &count))
			complete(ch);
		break;
	}
	case 0xe7: case 0xea:			/* FLUSH CACHE (EXT) */
		if (ide_flush(d) < 0)
			ide_abort(ch);
		else
			complete(ch);
		break;
	case 0xc6:				/* SET MULTIPLE MODE */
		if (ch->nsector > MAX_MULTIPLE || (ch->nsector & (ch->nsector - 1))) {
			ide_abort(ch);
			break;
		}
		d->multiple = ch->nsector;
		complete(ch);
		break;
	case 0xf8: case 0x27:			/* READ NATIVE MAX ADDRESS (EXT) */
		ata_native_max(ch);
		break;
	case 0xe5:				/* CHECK POWER MODE: active */
		ch->nsector = 0xff;
		complete(ch);
		break;
	case 0x90:				/* EXECUTE DEVICE DIAGNOSTIC */
		ide_set_signature(ch, (ch->select >> 4) & 1);
		ch->error = 0x01;
		ch->status = ST_DRDY | ST_DSC;
		ide_raise_irq(ch);
		break;
	case 0xef:				/* SET FEATURES: modes and caches, all accepted */
	case 0x91:				/* INITIALIZE DEVICE PARAMETERS */
	case 0x70:				/* SEEK */
	case 0xe0: case 0xe1: case 0xe2: case 0xe3:	/* standby and idle */
	case 0x10 ... 0x1f:			/* RECALIBRATE */
		complete(ch);
		break;
	default:
		ide_abort(ch);
		break;
	}
}

static void atapi_command(struct ide_channel *ch, uint8_t cmd)
{
	switch (cmd) {
	case 0xa1:	/* IDENTIFY PACKET DEVICE */
		atapi_identify(ch);
		break;
	case 0xa0:	/* PACKET: the 12-byte command block comes through the data port */
		ch->pos = 0;
		ch->len = 12;
		ch->xfer = XFER_PACKET;
		ch->nsector = 0x01;	/* interrupt reason: command (ATAPI §5.5) */
		ch->status = ST_DRDY | ST_DRQ;
		break;
	case 0x08:	/* DEVICE RESET */
		ide_set_signature(ch, (ch->select >> 4) & 1);
		ch->error = 0x01;
		ch->status = 0;
		break;
	case 0xec:	/* IDENTIFY DEVICE: aborted, with the packet signature (§9.12) */
		ide_set_signature(ch, (ch->select >> 4) & 1);
		ide_abort(ch);
		break;
	case 0x90:
		ide_set_signature(ch, (ch->select >> 4) & 1);
		ch->error = 0x01;
		ch->status = 0;
		ide_raise_irq(ch);
		break;
	case 0xe5:
		ch->nsector = 0xff;
		complete(ch);
		break;
	case 0xef:
	case 0xe0: case 0xe1: case 0xe2: case 0xe3:
		complete(ch);
		break;
	default:
		ide_abort(ch);
		break;
	}
}

static void exec_command(struct ide_channel *ch, uint8_t cmd)
{
	struct ide_drive *d = ide_cur(ch);

	/* A command for an absent slave is ignored, as on QEMU. */
	if (!d->blk)
		return;
	if ((ch->status & ST_BSY) || (ch->xfer != XFER_NONE && cmd != 0x08)) {
		/* Issued mid-transfer: the old command is dropped (ATA says "indeterminate"). */
		ch->xfer = XFER_NONE;
	}
	ch->cmd = cmd;
	ch->error = 0;
	ch->left = 0;
	ch->dma_pending = false;
	lower_irq(ch);
	if (d->cdrom)
		atapi_command(ch, cmd);
	else
		ata_command(ch, cmd);
}

/* The data port emptied or filled its window. */
void ide_data_done(struct ide_channel *ch)
{
	switch (ch->xfer) {
	case XFER_PIO_IN:
		if (ch->left && !ide_cur(ch)->cdrom && ch->cmd != 0xec)
			pio_read_block(ch);
		else {
			ch->xfer = XFER_NONE;
			ch->status = ST_DRDY | ST_DSC;
		}
		break;
	case XFER_PIO_OUT:
		pio_write_block_done(ch);
		break;
	case XFER_PACKET:
		ch->xfer = XFER_NONE;
		atapi_packet(ch);
		break;
	case XFER_ATAPI_IN:
		if (ch->pos < ch->len) {
			uint32_t n = ch->len - ch->pos < ch->chunk ? ch->len - ch->pos : ch->chunk;
			ch->chunk_end = ch->pos + n;
			ch->lbam = (uint8_t)n;
			ch->lbah = (uint8_t)(n >> 8);
			ch->nsector = 0x02;	/* data to host */
			ch->status = ST_DRDY | ST_DRQ;
			ide_raise_irq(ch);
		} else if (ch->left) {
			if (atapi_fill(ch) == 0)
				ide_data_done(ch);
		} else {
			atapi_finish(ch);
		}
		break;
	case XFER_NONE:
		break;
	}
}

static void data_io(struct ide_channel *ch, bool is_write, uint8_t *data, unsigned size)
{
	uint32_t end = ch->xfer == XFER_ATAPI_IN ? ch->chunk_end : ch->len;
	bool in = ch->xfer == XFER_PIO_IN || ch->xfer == XFER_ATAPI_IN;
	bool out = ch->xfer == XFER_PIO_OUT || ch->xfer == XFER_PACKET;

	unsigned n;

	if ((!is_write && !in) || (is_write && !out) || ch->pos >= end) {
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	/* A dword access across the end of an odd-sized block moves what is left. */
	n = end - ch->pos < size ? end - ch->pos : size;
	if (is_write) {
		memcpy(ch->buf + ch->pos, data, n);
	} else {
		memset(data, 0, size);
		memcpy(data, ch->buf + ch->pos, n);
	}
	ch->pos += n;
	if (ch->pos == end) {
		if (ch->xfer == XFER_ATAPI_IN)
			ch->status = ST_DRDY;	/* between chunks: DRQ drops */
		ide_data_done(ch);
	}
}

static void select_written(struct ide_channel *ch, uint8_t value)
{
	unsigned unit = (value >> 4) & 1;

	/*
	 * ATA-6 §7.10: the register may be written only with BSY and DRQ clear.
	 * A guest that switches drives mid-command is ignored, so the transfer
	 * in flight keeps the drive it was issued to (which may hold no medium).
	 */
	if (ch->xfer != XFER_NONE || ch->dma_pending || (ch->status & (ST_BSY | ST_DRQ)))
		return;
	/* After a reset each device shows its own signature until the task file is written. */
	if (ch->drives[unit].sig_valid)
		ide_set_signature(ch, unit);
	ch->select = value | 0xa0;
}

static void taskfile_written(struct ide_channel *ch)
{
	ch->drives[0].sig_valid = ch->drives[1].sig_valid = false;
}

void ide_cmd_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct ide_channel *ch = dev;
	bool hob = ch->control & CTRL_HOB;
	uint8_t v = 0;

	pthread_mutex_lock(&ch->ide->lock);
	if (offset == 0) {
		if (size == 2 || size == 4)
			data_io(ch, is_write, data, size);
		else if (!is_write)
			memset(data, 0xff, size);
		goto out;
	}
	if (size != 1) {
		if (!is_write)
			memset(data, 0xff, size);
		goto out;
	}
	if (is_write) {
		v = data[0];
		switch (offset) {
		case 1: ch->hob_feature = ch->feature; ch->feature = v; break;
		case 2: ch->hob_nsector = ch->nsector; ch->nsector = v; break;
		case 3: ch->hob_lbal = ch->lbal; ch->lbal = v; break;
		case 4: ch->hob_lbam = ch->lbam; ch->lbam = v; break;
		case 5: ch->hob_lbah = ch->lbah; ch->lbah = v; break;
		case 6: select_written(ch, v); goto out;
		case 7: exec_command(ch, v); goto out;
		}
		taskfile_written(ch);
		goto out;
	}
	if (channel_empty(ch)) {
		data[0] = 0;
		goto out;
	}
	switch (offset) {
	case 1: v = hob ? ch->hob_feature : ch->error; break;
	case 2: v = hob ? ch->hob_nsector : ch->nsector; break;
	case 3: v = hob ? ch->hob_lbal : ch->lbal; break;
	case 4: v = hob ? ch->hob_lbam : ch->lbam; break;
	case 5: v = hob ? ch->hob_lbah : ch->lbah; break;
	case 6: v = ch->select; break;
	case 7:
		v = ide_cur(ch)->blk ? ch->status : 0;
		lower_irq(ch);	/* reading status acknowledges the interrupt */
		break;
	}
	if (offset == 1 && !ide_cur(ch)->blk)
		v = 0;
	data[0] = v;
out:
	pthread_mutex_unlock(&ch->ide->lock);
}

void ide_ctrl_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct ide_channel *ch = dev;

	pthread_mutex_lock(&ch->ide->lock);
	if (!is_write) {
		memset(data, 0, size);
		/* Alternate status: the status without acknowledging the interrupt. */
		if (!channel_empty(ch) && ide_cur(ch)->blk)
			data[0] = ch->status;
	} else {
		uint8_t v = data[0];
		/* SRST: the reset happens while the bit is set, the devices wake when it clears. */
		if ((ch->control & CTRL_SRST) && !(v & CTRL_SRST))
			reset_channel(ch);
		else if (v & CTRL_SRST)
			ch->status = ST_BSY | ST_DSC;
		ch->control = v;
		if (v & CTRL_NIEN)
			lower_irq(ch);
	}
	pthread_mutex_unlock(&ch->ide->lock);
}

/* A walk through the guest's PRD table (SFF-8038i §4). */
struct prd_cursor {
	uint32_t table;
	unsigned entry;
	uint32_t offset;	/* into the current entry's region */
	bool end;		/* the EOT entry is used up */
};

static int prd_copy(struct ide_channel *ch, struct prd_cursor *c, uint8_t *buf, uint32_t len,
		    bool to_guest)
{
	const struct guest_memory *mem = ch->ide->mem;

	while (len) {
		uint32_t prd[2], addr, count, n;
		void *p;
		uint8_t *g;

		if (c->end || c->entry >= PRD_MAX_ENTRIES)
			return -1;	/* the table is shorter than the transfer */
		p = memory_ptr(mem, (uint64_t)c->table + 8ULL * c->entry, 8);
		if (!p)
			return -1;
		memcpy(prd, p, 8);
		addr = prd[0] & ~1u;
		count = prd[1] & 0xffff;
		if (!count)
			count = 0x10000;
		n = count - c->offset < len ? count - c->offset : len;
		g = memory_ptr(mem, (uint64_t)addr + c->offset, n);
		if (!g)
			return -1;	/* a region outside RAM: refuse, never touch the host */
		if (to_guest)
			memcpy(g, buf, n);
		else
			memcpy(buf, g, n);
		buf += n;
		len -= n;
		c->offset += n;
		if (c->offset == count) {
			c->end = prd[1] & PRD_EOT;
			c->entry++;
			c->offset = 0;
		}
	}
	return 0;
}

/* Moves the whole pending transfer through the PRD table; the bus master is active. */
static void run_dma(struct ide_channel *ch)
{
	struct ide_drive *d = ide_cur(ch);
	struct prd_cursor c = { .table = ch->bm_prd };
	int rc = 0;

	ch->dma_pending = false;
	while (rc == 0) {
		if (d->cdrom) {
			rc = prd_copy(ch, &c, ch->buf + ch->pos, ch->len - ch->pos, true);
			ch->pos = ch->len;
			if (rc < 0 || !ch->left)
				break;
			if (atapi_fill(ch) < 0)
				return;	/* the error is reported */
			continue;
		}
		if (!ch->left)
			break;
		uint32_t n = ch->left < IDE_BUF_SIZE / 512 ? ch->left : IDE_BUF_SIZE / 512;
		if (ch->dma_write) {
			rc = prd_copy(ch, &c, ch->buf, n * 512, false);
			if (rc == 0 && ide_pwrite(d, ch->lba * 512, ch->buf, n * 512) < 0)
				rc = -2;
		} else {
			rc = ide_pread(d, ch->lba * 512, ch->buf, n * 512) < 0 ? -2 : 0;
			if (rc == 0)
				rc = prd_copy(ch, &c, ch->buf, n * 512, true);
		}
		ch->lba += n;
		ch->left -= n;
	}
	ch->bm_status &= (uint8_t)~BM_ST_ACTIVE;
	if (rc == -1) {
		log_debug("IDE%u: DMA PRD table at 0x%x is invalid or too short", ch->index,
			  ch->bm_prd);
		ch->bm_status |= BM_ST_ERROR;
	}
	if (rc < 0) {
		if (d->cdrom)
			atapi_error(ch, 0x05, 0x21);	/* ILLEGAL REQUEST (a bad address) */
		else
			fail(ch, rc == -1 ? ERR_ABRT : ERR_UNC);
		return;
	}
	if (d->cdrom)
		atapi_finish(ch);
	else
		complete(ch);
}

void ide_start_dma(struct ide_channel *ch, bool write)
{
	ch->dma_pending = true;
	ch->dma_write = write;
	ch->xfer = XFER_NONE;
	ch->status = ST_DRDY | ST_DSC | ST_DRQ;
	if (ch->bm_cmd & BM_CMD_START)
		run_dma(ch);
}

void ide_bm_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct ide *ide = dev;
	struct ide_channel *ch = &ide->ch[offset >= 8];
	unsigned reg = offset & 7;

	pthread_mutex_lock(&ide->lock);
	if (!is_write) {
		uint8_t regs[8] = { ch->bm_cmd, 0, ch->bm_status, 0 };
		memcpy(regs + 4, &ch->bm_prd, 4);
		memset(data, 0, size);
		if (reg + size <= 8)
			memcpy(data, regs + reg, size);
		goto out;
	}
	if (reg == 0) {
		bool was = ch->bm_cmd & BM_CMD_START;
		ch->bm_cmd = data[0] & 0x09;
		if (!was && (data[0] & BM_CMD_START)) {
			ch->bm_status |= BM_ST_ACTIVE;
			if (ch->dma_pending)
				run_dma(ch);
		} else if (!(data[0] & BM_CMD_START)) {
			ch->bm_status &= (uint8_t)~BM_ST_ACTIVE;
		}
	} else if (reg == 2) {
		/* Error and interrupt are write-one-to-clear; the capable bits are plain. */
		ch->bm_status = (uint8_t)((ch->bm_status & ~(data[0] & 0x06) & ~0x60) |
					  (data[0] & 0x60));
	} else if (reg >= 4 && reg + size <= 8) {
		uint8_t raw[4];
		memcpy(raw, &ch->bm_prd, 4);
		memcpy(raw + (reg - 4), data, size);
		memcpy(&ch->bm_prd, raw, 4);
		ch->bm_prd &= ~3u;
	}
out:
	pthread_mutex_unlock(&ide->lock);
}

static void drive_init(struct ide_drive *d, struct block_dev *blk, bool cdrom, unsigned n)
{
	uint64_t bytes = blk ? block_length(blk) : 0;

	memset(d, 0, sizeof(*d));
	d->blk = blk;
	d->cdrom = cdrom;
	d->sig_valid = blk != NULL;
	snprintf(d->serial, sizeof(d->serial), "QM%05u", n + 1);	/* QEMU's pattern */
	if (cdrom) {
		d->sectors = bytes / ATAPI_SECTOR;
		return;
	}
	d->sectors = bytes / 512;
	/* The usual translation: 16 heads, 63 sectors, at most 16383 cylinders. */
	d->heads = 16;
	d->spt = 63;
	d->cyls = (uint16_t)(d->sectors / (16 * 63) > 16383 ? 16383 : d->sectors / (16 * 63));
}

int ide_init(struct ide *ide, const struct guest_memory *mem, const struct ide_ops *ops,
	     void *opaque, struct block_dev *const drives[4], const bool cdrom[4])
{
	memset(ide, 0, sizeof(*ide));
	pthread_mutex_init(&ide->lock, NULL);
	ide->mem = mem;
	ide->ops = ops;
	ide->opaque = opaque;
	for (unsigned c = 0; c < 2; c++) {
		struct ide_channel *ch = &ide->ch[c];
		ch->ide = ide;
		ch->index = c;
		ch->buf = malloc(IDE_BUF_SIZE);
		if (!ch->buf)
			return -1;
		for (unsigned u = 0; u < 2; u++)
			drive_init(&ch->drives[u], drives[c * 2 + u], cdrom[c * 2 + u], c * 2 + u);
		ch->select = 0xa0;
		reset_channel(ch);
		ch->bm_status = 0x60;	/* both drives DMA capable */
	}
	/* PIIX3 IDE (82371SB), legacy ports, bus master: class 01:01, prog-if 0x80. */
	pci_device_init(&ide->pci, "piix3-ide", 0x8086, 0x7010, 0x010180, 0x00, 0x1af4, 0x1100);
	pci_device_add_bar(&ide->pci, 4, IDE_BM_SIZE, true, ide_bm_io, ide);
	return 0;
}

void ide_destroy(struct ide *ide)
{
	for (unsigned c = 0; c < 2; c++) {
		free(ide->ch[c].buf);
		ide->ch[c].buf = NULL;
	}
	pthread_mutex_destroy(&ide->lock);
}
