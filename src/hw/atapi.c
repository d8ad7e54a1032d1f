/*
 * ATAPI CD-ROM: the SCSI/MMC packet commands a BIOS, a boot loader and an
 * installer use (MMC-3 and SPC-3 section numbers beside each), over the IDE
 * transport in ide.c.  Media is the drive's block device in 2048-byte blocks.
 */
#include <string.h>

#include "hw/ide.h"
#include "util/bytes.h"

#define ST_DRDY 0x40
#define ST_DSC 0x10
#define ST_ERR 0x01
#define REASON_CD 0x01
#define REASON_IO 0x02

/* Sense keys and additional sense codes (SPC-3 §4.5.6, annex D). */
#define SENSE_NOT_READY 0x02
#define SENSE_MEDIUM_ERROR 0x03
#define SENSE_ILLEGAL_REQUEST 0x05
#define SENSE_UNIT_ATTENTION 0x06
#define ASC_INVALID_OPCODE 0x20
#define ASC_LBA_OUT_OF_RANGE 0x21
#define ASC_INVALID_FIELD 0x24
#define ASC_MEDIUM_CHANGED 0x28
#define ASC_MEDIUM_NOT_PRESENT 0x3a
#define ASC_REMOVAL_PREVENTED 0x53
#define ASC_READ_ERROR 0x11

#define CD_MAX_BLOCKS 360000	/* above this a disc is reported as a DVD */

static void put_string(uint16_t *words, unsigned first, const char *s, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++) {
		char c = *s ? *s++ : ' ';
		((uint8_t *)(words + first))[i ^ 1] = (uint8_t)c;
	}
}

void atapi_identify(struct ide_channel *ch)
{
	struct ide_drive *d = ide_cur(ch);
	uint16_t *w = (uint16_t *)ch->buf;

	memset(w, 0, 512);
	w[0] = 0x85c0;		/* ATAPI, CD-ROM, removable, 12-byte packets */
	put_string(w, 10, d->serial, 20);
	put_string(w, 23, "2.5+", 8);
	put_string(w, 27, "QEMU DVD-ROM", 40);
	w[48] = 1;
	w[49] = 0x0300;		/* LBA and DMA */
	w[53] = 7;
	w[62] = 7;
	w[63] = 7;
	w[64] = 3;
	w[65] = w[66] = w[67] = w[68] = 0xb4;
	w[71] = w[72] = 30;
	w[80] = 0x1e;		/* ATAPI-1 to -4 */
	ide_start_pio_in(ch, 512);
}

void atapi_finish(struct ide_channel *ch)
{
	ch->xfer = XFER_NONE;
	ch->dma_pending = false;
	ch->error = 0;
	ch->status = ST_DRDY | ST_DSC;
	ch->nsector = (uint8_t)((ch->nsector & ~7) | REASON_IO | REASON_CD);
	ide_raise_irq(ch);
}

/* CHECK CONDITION: the sense is kept for REQUEST SENSE; the error register has the key. */
void atapi_error(struct ide_channel *ch, uint8_t sense, uint8_t asc)
{
	struct ide_drive *d = ide_cur(ch);

	d->sense_key = sense;
	d->asc = asc;
	ch->xfer = XFER_NONE;
	ch->dma_pending = false;
	ch->error = (uint8_t)(sense << 4);
	ch->status = ST_DRDY | ST_ERR;
	ch->nsector = (uint8_t)((ch->nsector & ~7) | REASON_IO | REASON_CD);
	ide_raise_irq(ch);
}

int atapi_fill(struct ide_channel *ch)
{
	struct ide_drive *d = ide_cur(ch);
	uint32_t n = ch->left < IDE_BUF_SIZE / ATAPI_SECTOR ? ch->left : IDE_BUF_SIZE / ATAPI_SECTOR;

	if (block_pread(d->blk, ch->lba * ATAPI_SECTOR, ch->buf, (size_t)n * ATAPI_SECTOR) < 0) {
		atapi_error(ch, SENSE_MEDIUM_ERROR, ASC_READ_ERROR);
		return -1;
	}
	ch->lba += n;
	ch->left -= n;
	ch->pos = 0;
	ch->len = n * ATAPI_SECTOR;
	return 0;
}

/* Sends buf[0, min(len, alloc)) to the guest, by DMA if the packet asked for it. */
static void start_in(struct ide_channel *ch, uint32_t len, uint32_t alloc, bool dma)
{
	ch->pos = 0;
	ch->len = len < alloc ? len : alloc;
	if (!ch->len && !ch->left) {
		atapi_finish(ch);
		return;
	}
	if (dma) {
		ide_start_dma(ch, false);
		return;
	}
	ch->xfer = XFER_ATAPI_IN;
	ide_data_done(ch);
}

void atapi_start_in(struct ide_channel *ch, uint32_t len, uint32_t alloc)
{
	ch->left = 0;
	start_in(ch, len, alloc, false);
}

static void lba_to_msf(uint8_t *p, uint32_t lba)
{
	lba += 150;	/* the 2-second pre-gap */
	p[0] = 0;
	p[1] = (uint8_t)(lba / (75 * 60));
	p[2] = (uint8_t)((lba / 75) % 60);
	p[3] = (uint8_t)(lba % 75);
}

/* MMC-3 §6.25 READ TOC/PMA/ATIP, formats 0 (TOC) and 1 (session info). */
static int read_toc(struct ide_channel *ch, const uint8_t *cdb, uint32_t *len)
{
	struct ide_drive *d = ide_cur(ch);
	uint8_t *b = ch->buf;
	bool msf = cdb[1] & 2;
	unsigned format = cdb[2] & 0x0f;

	if (!format && (cdb[9] >> 6))
		format = cdb[9] >> 6;	/* the older SFF-8020 place */
	memset(b, 0, 20);
	if (format == 0) {
		b[2] = b[3] = 1;	/* first and last track */
		b[5] = 0x14;		/* track 1: data, ADR 1 */
		b[6] = 1;
		if (msf)
			lba_to_msf(b + 8, 0);
		b[13] = 0x14;
		b[14] = 0xaa;		/* lead-out */
		if (msf)
			lba_to_msf(b + 16, (uint32_t)d->sectors);
		else
			st_be32(b + 16, (uint32_t)d->sectors);
		*len = 20;
	} else if (format == 1) {
		b[2] = b[3] = 1;
		b[5] = 0x14;
		b[6] = 1;
		if (msf)
			lba_to_msf(b + 8, 0);
		*len = 12;
	} else {
		return -1;
	}
	st_be16(b, *len - 2);
	return 0;
}

/* MMC-3 §5.3 / §6.6 GET CONFIGURATION: the profile list and the current profile. */
static uint32_t get_configuration(struct ide_channel *ch)
{
	struct ide_drive *d = ide_cur(ch);
	uint8_t *b = ch->buf;
	bool media = !d->tray_open && d->sectors;
	unsigned cur = !media ? 0 : d->sectors > CD_MAX_BLOCKS ? 0x0010 : 0x0008;

	memset(b, 0, 20);
	st_be16(b + 6, cur);
	st_be16(b + 8, 0x0000);	/* feature 0: profile list */
	b[10] = 0x03;		/* persistent, current */
	b[11] = 8;
	st_be16(b + 12, 0x0010);	/* DVD-ROM */
	b[14] = cur == 0x0010;
	st_be16(b + 16, 0x0008);	/* CD-ROM */
	b[18] = cur == 0x0008;
	st_be32(b, 20 - 4);
	return 20;
}

/* SPC-3 §6.9 MODE SENSE: error recovery (0x01) and capabilities (0x2a, MMC-3 §6.3.11). */
static int mode_sense(struct ide_channel *ch, const uint8_t *cdb, bool ten, uint32_t *len)
{
	struct ide_drive *d = ide_cur(ch);
	unsigned page = cdb[2] & 0x3f, hdr = ten ? 8 : 4, n = hdr;
	uint8_t *b = ch->buf;

	memset(b, 0, 64);
	if (page == 0x01 || page == 0x3f) {
		b[n] = 0x01;
		b[n + 1] = 0x06;
		n += 8;
	}
	if (page == 0x2a || page == 0x3f) {
		uint8_t *p = b + n;
		p[0] = 0x2a;
		p[1] = 0x12;
		p[2] = 0x3b;		/* reads CD-R, CD-RW, DVD-ROM ... */
		p[4] = 0x71;
		p[5] = 0x73;
		p[6] = (uint8_t)(0x29 | (d->locked ? 0x02 : 0));	/* lock, eject, tray */
		st_be16(p + 8, 706);
		st_be16(p + 10, 2);
		st_be16(p + 12, 512);
		st_be16(p + 14, 706);
		n += 20;
	}
	if (n == hdr)
		return -1;
	if (ten)
		st_be16(b, n - 2);
	else
		b[0] = (uint8_t)(n - 1);
	*len = n;
	return 0;
}

/* Commands that need a disc in a closed tray, and report a change first. */
static bool needs_medium(uint8_t op)
{
	switch (op) {
	case 0x00: case 0x25: case 0x28: case 0xa8: case 0x2b: case 0x43: case 0x51:
		return true;
	default:
		return false;
	}
}

static void start_read(struct ide_channel *ch, uint32_t lba, uint32_t count, bool dma)
{
	struct ide_drive *d = ide_cur(ch);

	if ((uint64_t)lba + count > d->sectors) {
		atapi_error(ch, SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return;
	}
	if (!count) {
		atapi_finish(ch);
		return;
	}
	ch->lba = lba;
	ch->left = count;
	if (atapi_fill(ch) < 0)
		return;
	start_in(ch, ch->len, UINT32_MAX, dma);
}

/* A command that needs a disc: UNIT ATTENTION once after a change, NOT READY without one. */
static bool medium_ready(struct ide_channel *ch, struct ide_drive *d)
{
	if (d->media_changed) {
		d->media_changed = false;
		atapi_error(ch, SENSE_UNIT_ATTENTION, ASC_MEDIUM_CHANGED);
		return false;
	}
	if (d->tray_open || !d->sectors) {
		atapi_error(ch, SENSE_NOT_READY, ASC_MEDIUM_NOT_PRESENT);
		return false;
	}
	return true;
}

/* START STOP UNIT (SBC/MMC-3 §6.39): LoEj with Start loads, without ejects. */
static void start_stop_unit(struct ide_channel *ch, struct ide_drive *d, const uint8_t *cdb)
{
	if (cdb[4] & 2) {
		if (!(cdb[4] & 1)) {
			if (d->locked) {
				atapi_error(ch, SENSE_ILLEGAL_REQUEST, ASC_REMOVAL_PREVENTED);
				return;
			}
			d->tray_open = true;
		} else if (d->tray_open) {
			d->tray_open = false;
			d->media_changed = true;
		}
	}
	atapi_finish(ch);
}

/* GET EVENT STATUS NOTIFICATION (MMC-3 §6.8), polled only. */
static void event_status(struct ide_channel *ch, struct ide_drive *d, const uint8_t *cdb,
			 bool dma)
{
	uint8_t *b = ch->buf;

	if (!(cdb[1] & 1)) {
		atapi_error(ch, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
		return;
	}
	memset(b, 0, 8);
	st_be16(b, 6);
	b[2] = 0x04;	/* media class */
	b[3] = 0x10;	/* media class supported */
	b[5] = (uint8_t)((d->tray_open ? 1 : 0) | (!d->tray_open && d->sectors ? 2 : 0));
	start_in(ch, 8, ld_be16(cdb + 7), dma);
}

void atapi_packet(struct ide_channel *ch)
{
	struct ide_drive *d = ide_cur(ch);
	uint8_t cdb[12];
	bool dma = ch->feature & 1;
	uint32_t bcl = (uint32_t)ch->lbah << 8 | ch->lbam, len = 0;
	uint8_t *b = ch->buf;

	memcpy(cdb, ch->buf, sizeof(cdb));
	/* The byte count limit (ATAPI §5.13): 0 means the largest even count. */
	bcl &= ~1u;
	ch->chunk = bcl ? bcl : 0xfffe;
	ch->left = 0;

	if (needs_medium(cdb[0]) && !medium_ready(ch, d))
		return;
	switch (cdb[0]) {
	case 0x00:	/* TEST UNIT READY */
	case 0x2b:	/* SEEK(10) */
	case 0xbb:	/* SET CD SPEED */
		atapi_finish(ch);
		return;
	case 0x03:	/* REQUEST SENSE (SPC-3 §6.27), fixed format */
		memset(b, 0, 18);
		b[0] = 0x70;
		b[2] = d->sense_key;
		b[7] = 10;
		b[12] = d->asc;
		d->sense_key = d->asc = 0;
		start_in(ch, 18, cdb[4], dma);
		return;
	case 0x12:	/* INQUIRY (SPC-3 §6.4) */
		memset(b, 0, 36);
		b[0] = 0x05;	/* CD/DVD device */
		b[1] = 0x80;	/* removable */
		b[3] = 0x21;
		b[4] = 31;
		memcpy(b + 8, "QEMU    QEMU DVD-ROM    2.5+", 28);
		start_in(ch, 36, ld_be16(cdb + 3), dma);
		return;
	case 0x1b:	/* START STOP UNIT */
		start_stop_unit(ch, d, cdb);
		return;
	case 0x1e:	/* PREVENT ALLOW MEDIUM REMOVAL */
		d->locked = cdb[4] & 1;
		atapi_finish(ch);
		return;
	case 0x25:	/* READ CAPACITY (MMC-3 §6.23) */
		st_be32(b, (uint32_t)d->sectors - 1);
		st_be32(b + 4, ATAPI_SECTOR);
		start_in(ch, 8, 8, dma);
		return;
	case 0x28:	/* READ(10) */
		start_read(ch, ld_be32(cdb + 2), ld_be16(cdb + 7), dma);
		return;
	case 0xa8:	/* READ(12) */
		start_read(ch, ld_be32(cdb + 2), ld_be32(cdb + 6), dma);
		return;
	case 0x43:	/* READ TOC */
		if (read_toc(ch, cdb, &len) < 0) {
			atapi_error(ch, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
			return;
		}
		start_in(ch, len, ld_be16(cdb + 7), dma);
		return;
	case 0x46:	/* GET CONFIGURATION */
		len = get_configuration(ch);
		start_in(ch, len, ld_be16(cdb + 7), dma);
		return;
	case 0x4a:	/* GET EVENT STATUS NOTIFICATION */
		event_status(ch, d, cdb, dma);
		return;
	case 0x1a:	/* MODE SENSE(6) */
	case 0x5a:	/* MODE SENSE(10) */
		if (mode_sense(ch, cdb, cdb[0] == 0x5a, &len) < 0) {
			atapi_error(ch, SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD);
			return;
		}
		start_in(ch, len, cdb[0] == 0x5a ? ld_be16(cdb + 7) : cdb[4], dma);
		return;
	case 0x51:	/* READ DISC INFORMATION (MMC-3 §6.22) */
		memset(b, 0, 34);
		st_be16(b, 32);
		b[2] = 0x0e;	/* complete disc, last session complete */
		b[3] = b[4] = b[5] = b[6] = 1;
		b[7] = 0x20;
		start_in(ch, 34, ld_be16(cdb + 7), dma);
		return;
	case 0xbd:	/* MECHANISM STATUS (MMC-3 §6.11) */
		memset(b, 0, 8);
		b[1] = d->tray_open ? 0x10 : 0;
		start_in(ch, 8, ld_be16(cdb + 8), dma);
		return;
	default:
		atapi_error(ch, SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return;
	}
}
