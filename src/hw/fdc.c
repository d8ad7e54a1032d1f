/*
 * 82077AA data sheet (and QEMU hw/block/fdc.c for what PC firmware relies
 * on): a command is written byte by byte to the FIFO, executed when
 * complete, and its result bytes are read back from the FIFO; seek-type
 * commands end with an interrupt and leave their status for SENSE INTERRUPT.
 */
#include "hw/fdc.h"

#include <stdio.h>
#include <string.h>

#define REG_SRA 0
#define REG_SRB 1
#define REG_DOR 2
#define REG_TDR 3
#define REG_MSR 4		/* read: main status; write: data rate select */
#define REG_FIFO 5

#define DOR_SELECT 0x03
#define DOR_NRESET 0x04
#define DOR_DMA_IRQ 0x08

#define MSR_RQM 0x80
#define MSR_DIO 0x40		/* the controller has bytes for the CPU */
#define MSR_CB 0x10		/* a command is in progress */

#define DSR_RESET 0x80

#define CMD_MASK 0x1f		/* below MT, MFM and SK */
#define CMD_MT 0x80
#define CMD_READ_TRACK 0x02
#define CMD_SPECIFY 0x03
#define CMD_SENSE_DRIVE 0x04
#define CMD_WRITE 0x05
#define CMD_READ 0x06
#define CMD_RECALIBRATE 0x07
#define CMD_SENSE_INT 0x08
#define CMD_READ_ID 0x0a
#define CMD_FORMAT 0x0d
#define CMD_SEEK 0x0f
#define CMD_VERSION 0x10
#define CMD_PERPENDICULAR 0x12
#define CMD_CONFIGURE 0x13
#define CMD_LOCK 0x14

#define ST0_ABNORMAL 0x40
#define ST0_INVALID 0x80
#define ST0_SEEK_END 0x20
#define ST0_READY_CHANGE 0xc0
#define ST1_NO_DATA 0x04
#define ST1_NOT_WRITABLE 0x02
#define ST1_OVERRUN 0x10
#define ST3_WRITE_PROTECT 0x40
#define ST3_READY 0x20
#define ST3_TRACK0 0x10
#define ST3_TWO_SIDED 0x08

#define VERSION_82077 0x90

/* Bytes per command including the opcode (82077AA command set summary). */
static unsigned command_length(uint8_t cmd)
{
	switch (cmd & CMD_MASK) {
	case CMD_READ_TRACK:
	case CMD_WRITE:
	case CMD_READ:
		return 9;
	case CMD_FORMAT:
		return 6;
	case CMD_CONFIGURE:
		return 4;
	case CMD_SPECIFY:
	case CMD_SEEK:
		return 3;
	case CMD_SENSE_DRIVE:
	case CMD_RECALIBRATE:
	case CMD_READ_ID:
	case CMD_PERPENDICULAR:
		return 2;
	default:
		return 1;
	}
}

static void set_irq(struct fdc *fdc, bool level)
{
	/* ISA interrupts are edges: drop a raised line before raising it again. */
	if (level && fdc->irq)
		fdc->ops->set_irq(fdc->opaque, false);
	if (level || fdc->irq)
		fdc->ops->set_irq(fdc->opaque, level);
	fdc->irq = level;
}

static void raise_irq(struct fdc *fdc)
{
	if (fdc->dor & DOR_DMA_IRQ)
		set_irq(fdc, true);
}

static void to_command(struct fdc *fdc)
{
	fdc->result_phase = false;
	fdc->pos = fdc->len = 0;
}

static void to_result(struct fdc *fdc, unsigned len)
{
	fdc->result_phase = true;
	fdc->pos = 0;
	fdc->len = len;
}

static void reset(struct fdc *fdc)
{
	set_irq(fdc, false);
	to_command(fdc);
	fdc->st0 = ST0_READY_CHANGE;
	for (unsigned i = 0; i < FDC_MAX_DRIVES; i++)
		fdc->drives[i].cyl = 0;
}

int fdc_check_image(struct block_dev *blk, unsigned unit, char *err, size_t errlen)
{
	if (block_length(blk) == FDC_IMAGE_SIZE)
		return 0;
	snprintf(err, errlen, "floppy %c: the image has %llu bytes; only 1.44 MB (%u-byte) images "
		 "are supported", 'A' + unit, (unsigned long long)block_length(blk), FDC_IMAGE_SIZE);
	return -1;
}

int fdc_init(struct fdc *fdc, struct i8237 *dma, const struct fdc_ops *ops, void *opaque,
	     struct block_dev *drives[FDC_MAX_DRIVES], char *err, size_t errlen)
{
	memset(fdc, 0, sizeof(*fdc));
	for (unsigned i = 0; i < FDC_MAX_DRIVES; i++) {
		if (drives[i] && fdc_check_image(drives[i], i, err, errlen) < 0)
			return -1;
		fdc->drives[i].blk = drives[i];
	}
	pthread_mutex_init(&fdc->lock, NULL);
	fdc->dma = dma;
	fdc->ops = ops;
	fdc->opaque = opaque;
	fdc->dor = DOR_NRESET | DOR_DMA_IRQ;	/* as QEMU leaves it: out of reset */
	reset(fdc);
	return 0;
}

void fdc_destroy(struct fdc *fdc)
{
	pthread_mutex_destroy(&fdc->lock);
}

/* Ends a seek-type command: the status waits for SENSE INTERRUPT. */
static void seek_done(struct fdc *fdc, unsigned drive, unsigned head)
{
	fdc->st0 = (uint8_t)(ST0_SEEK_END | head << 2 | drive);
	fdc->reset_sensei = 0;
	to_command(fdc);
	raise_irq(fdc);
}

static void result7(struct fdc *fdc, uint8_t st0, uint8_t st1, uint8_t c, uint8_t h, uint8_t r)
{
	uint8_t res[7] = { st0, st1, 0, c, h, r, 2 };

	memcpy(fdc->fifo, res, sizeof(res));
	to_result(fdc, 7);
	raise_irq(fdc);
}

/*
 * READ DATA / WRITE DATA: sector by sector through DMA channel 2 until its
 * terminal count, from (C, H, R) on; with MT the transfer goes on from head
 * 0 to head 1 of the cylinder, as QEMU's controller does.
 */
static void transfer(struct fdc *fdc, bool write)
{
	const uint8_t *f = fdc->fifo;
	unsigned drive = f[1] & 1, hd = f[1] >> 2 & 1;
	unsigned c = f[2], h = f[3], r = f[4], eot = f[6] < FDC_SPT ? f[6] : FDC_SPT;
	struct fdc_drive *d = &fdc->drives[drive];
	uint8_t st0 = (uint8_t)(hd << 2 | drive), st1 = 0;
	bool mt = f[0] & CMD_MT;

	if (!d->blk || f[5] != 2 || c >= FDC_CYLS || h >= FDC_HEADS || r < 1 || r > FDC_SPT ||
	    r > eot) {
		result7(fdc, st0 | ST0_ABNORMAL, ST1_NO_DATA, (uint8_t)c, (uint8_t)h, (uint8_t)r);
		return;
	}
	if (write && block_is_readonly(d->blk)) {
		result7(fdc, st0 | ST0_ABNORMAL, ST1_NOT_WRITABLE, (uint8_t)c, (uint8_t)h,
			(uint8_t)r);
		return;
	}
	d->cyl = (uint8_t)c;
	for (;;) {
		uint64_t off = (((uint64_t)c * FDC_HEADS + h) * FDC_SPT + r - 1) * FDC_SECTOR;
		size_t left = i8237_remaining(fdc->dma, FDC_DMA_CHANNEL);
		long n;

		if (!left) {
			st1 = ST1_OVERRUN;	/* the channel was masked: no one took the data */
			break;
		}
		if (!write && block_pread(d->blk, off, fdc->sector, FDC_SECTOR) < 0) {
			st1 = ST1_NO_DATA;
			break;
		}
		n = i8237_transfer(fdc->dma, FDC_DMA_CHANNEL, fdc->sector, FDC_SECTOR, !write);
		if (n < 0) {
			st1 = ST1_OVERRUN;	/* DMA outside RAM */
			break;
		}
		if (write && n > 0) {
			memset(fdc->sector + n, 0, FDC_SECTOR - (size_t)n);
			if (block_pwrite(d->blk, off, fdc->sector, FDC_SECTOR) < 0) {
				st1 = ST1_NO_DATA;
				break;
			}
		}
		/* Next sector: past EOT, the other head with MT, else the end of the cylinder. */
		bool end = false;
		if (r >= eot) {
			r = 1;
			if (mt && h == 0) {
				h = 1;
			} else {
				h = 0;
				c++;
				end = true;
			}
		} else {
			r++;
		}
		if (end || (size_t)n >= left)
			break;
	}
	if (st1)
		st0 |= ST0_ABNORMAL;
	result7(fdc, st0, st1, (uint8_t)c, (uint8_t)h, (uint8_t)r);
}

static void execute(struct fdc *fdc)
{
	uint8_t cmd = fdc->fifo[0];
	unsigned drive = fdc->fifo[1] & 1, head = fdc->fifo[1] >> 2 & 1;
	struct fdc_drive *d = &fdc->drives[drive];

	switch (cmd & CMD_MASK) {
	case CMD_SPECIFY:
	case CMD_PERPENDICULAR:
	case CMD_CONFIGURE:
		to_command(fdc);
		return;
	case CMD_VERSION:
		fdc->fifo[0] = VERSION_82077;
		to_result(fdc, 1);
		return;
	case CMD_LOCK:
		fdc->fifo[0] = (uint8_t)((cmd & 0x80) >> 3);
		to_result(fdc, 1);
		return;
	case CMD_SENSE_DRIVE:
		fdc->fifo[0] = (uint8_t)(ST3_READY | ST3_TWO_SIDED | head << 2 | drive |
					 (d->cyl == 0 ? ST3_TRACK0 : 0) |
					 (d->blk && block_is_readonly(d->blk) ? ST3_WRITE_PROTECT : 0));
		to_result(fdc, 1);
		return;
	case CMD_RECALIBRATE:
		d->cyl = 0;
		seek_done(fdc, drive, 0);
		return;
	case CMD_SEEK:
		d->cyl = fdc->fifo[2];
		seek_done(fdc, drive, head);
		return;
	case CMD_SENSE_INT:
		/* After a reset, one ready-change status per drive (82077AA §5.2). */
		if (fdc->reset_sensei) {
			fdc->fifo[0] = (uint8_t)(ST0_READY_CHANGE | (4 - fdc->reset_sensei));
			fdc->reset_sensei--;
		} else if (!fdc->irq) {
			fdc->fifo[0] = ST0_INVALID;
			to_result(fdc, 1);
			return;
		} else {
			fdc->fifo[0] = fdc->st0;
		}
		fdc->fifo[1] = (fdc->fifo[0] & 3) < FDC_MAX_DRIVES ?
			       fdc->drives[fdc->fifo[0] & 3].cyl : 0;
		set_irq(fdc, false);
		to_result(fdc, 2);
		return;
	case CMD_READ_ID:
		if (!d->blk)
			result7(fdc, (uint8_t)(ST0_ABNORMAL | head << 2 | drive), ST1_NO_DATA,
				d->cyl, (uint8_t)head, 1);
		else
			result7(fdc, (uint8_t)(head << 2 | drive), 0, d->cyl, (uint8_t)head, 1);
		return;
	case CMD_READ:
		transfer(fdc, false);
		return;
	case CMD_WRITE:
		transfer(fdc, true);
		return;
	case CMD_READ_TRACK:
	case CMD_FORMAT:
		/* Not needed by firmware or boot loaders: refused like a missing sector. */
		result7(fdc, (uint8_t)(ST0_ABNORMAL | head << 2 | drive), ST1_NO_DATA, d->cyl,
			(uint8_t)head, 1);
		return;
	default:
		fdc->fifo[0] = ST0_INVALID;
		to_result(fdc, 1);
		return;
	}
}

static void write_fifo(struct fdc *fdc, uint8_t v)
{
	if (fdc->result_phase || !(fdc->dor & DOR_NRESET))
		return;
	if (fdc->pos == 0)
		fdc->len = command_length(v);
	fdc->fifo[fdc->pos++] = v;
	if (fdc->pos == fdc->len)
		execute(fdc);
}

static uint8_t read_fifo(struct fdc *fdc)
{
	uint8_t v;

	if (!fdc->result_phase)
		return 0;
	v = fdc->fifo[fdc->pos++];
	if (fdc->pos == fdc->len) {
		/* Reading a data command's status acknowledges its interrupt. */
		if (fdc->len == 7)
			set_irq(fdc, false);
		to_command(fdc);
	}
	return v;
}

static uint8_t msr(const struct fdc *fdc)
{
	if (!(fdc->dor & DOR_NRESET))
		return 0;
	if (fdc->result_phase)
		return MSR_RQM | MSR_DIO | MSR_CB;
	return fdc->pos ? MSR_RQM | MSR_CB : MSR_RQM;
}

static void write_dor(struct fdc *fdc, uint8_t v)
{
	bool was_reset = !(fdc->dor & DOR_NRESET);

	fdc->dor = v;
	if (!(v & DOR_NRESET)) {
		reset(fdc);
	} else if (was_reset) {
		/* Leaving reset interrupts once; four SENSE INTERRUPTs clear it. */
		fdc->reset_sensei = 4;
		raise_irq(fdc);
	}
}

void fdc_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct fdc *fdc = dev;

	if (size != 1) {
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	pthread_mutex_lock(&fdc->lock);
	if (is_write) {
		switch (offset) {
		case REG_DOR:
			write_dor(fdc, *data);
			break;
		case REG_MSR:	/* data rate select: bit 7 is a software reset */
			if (*data & DSR_RESET) {
				reset(fdc);
				fdc->reset_sensei = 4;
				raise_irq(fdc);
			}
			break;
		case REG_FIFO:
			write_fifo(fdc, *data);
			break;
		default:
			break;
		}
	} else {
		switch (offset) {
		case REG_SRA:
			*data = fdc->irq ? 0x80 : 0;	/* PS/2 mode: interrupt pending */
			break;
		case REG_DOR:
			*data = fdc->dor;
			break;
		case REG_MSR:
			*data = msr(fdc);
			break;
		case REG_FIFO:
			*data = read_fifo(fdc);
			break;
		default:	/* SRB, TDR */
			*data = 0;
			break;
		}
	}
	pthread_mutex_unlock(&fdc->lock);
}

void fdc_dir_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	(void)dev;
	(void)offset;
	/* Digital input: no disk change to report.  Writes set the data rate: ignored. */
	if (!is_write)
		memset(data, 0, size);
}
