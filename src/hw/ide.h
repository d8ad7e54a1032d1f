/*
 * PIIX IDE controller (00:01.1, legacy mode): two channels at 0x1f0/0x3f6
 * (IRQ 14) and 0x170/0x376 (IRQ 15), each with a master and a slave drive,
 * plus the bus-master DMA engine behind BAR4 (SFF-8038i).  Drives are ATA
 * disks (ATA/ATAPI-6 command set subset: PIO, DMA, LBA28/48, FLUSH) or ATAPI
 * CD-ROMs (MMC commands in atapi.c), all on the shared block library.
 *
 * Everything the guest programs (LBA ranges, PRD tables) is checked: a PRD
 * outside RAM or a transfer past the disk ends the command with an error.
 */
#ifndef KESTREL_HW_IDE_H
#define KESTREL_HW_IDE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"
#include "hw/pci.h"
#include "core/memory.h"

#define IDE_PRIMARY_BASE 0x1f0
#define IDE_PRIMARY_CTRL 0x3f6
#define IDE_SECONDARY_BASE 0x170
#define IDE_SECONDARY_CTRL 0x376
#define IDE_PRIMARY_IRQ 14
#define IDE_SECONDARY_IRQ 15
#define IDE_NR_PORTS 8
#define IDE_BM_SIZE 16		/* BAR4: 8 bytes per channel */
#define IDE_BUF_SIZE (128u * 1024)
#define ATAPI_SECTOR 2048

struct ide_drive {
	struct block_dev *blk;	/* NULL: no drive at this position */
	bool cdrom;
	uint64_t sectors;	/* disk: 512-byte sectors; CD: 2048-byte blocks */
	uint16_t cyls, heads, spt;	/* disk: the CHS geometry IDENTIFY reports */
	uint8_t multiple;	/* SET MULTIPLE MODE block size */
	char serial[21];
	/* werror=/rerror= ignore: a failed request completes as if it had worked (QEMU's). */
	bool ignore_write_errors, ignore_read_errors;
	/* ATAPI */
	bool tray_open;
	bool locked;		/* PREVENT MEDIUM REMOVAL */
	bool media_changed;	/* a UNIT ATTENTION is due */
	uint8_t sense_key, asc;
	/* The signature this drive left in the task file at reset, shown when selected. */
	bool sig_valid;
};

enum ide_xfer {
	XFER_NONE,
	XFER_PIO_IN,		/* ATA read: the guest reads the data port */
	XFER_PIO_OUT,		/* ATA write: the guest writes the data port */
	XFER_PACKET,		/* ATAPI: the guest writes the 12-byte command */
	XFER_ATAPI_IN,		/* ATAPI data to the guest */
};

struct ide_channel {
	struct ide *ide;
	unsigned index;
	struct ide_drive drives[2];
	/* Task file; writes go to both drives, as on the real shared cable. */
	uint8_t feature, nsector, lbal, lbam, lbah, select, control;
	uint8_t hob_feature, hob_nsector, hob_lbal, hob_lbam, hob_lbah;
	uint8_t status, error;
	bool irq;
	/* The command in flight. */
	enum ide_xfer xfer;
	uint8_t cmd;
	bool lba48;
	uint8_t *buf;
	uint32_t pos, len;	/* data-port window into buf */
	uint64_t lba;		/* next sector (disk) or block (CD) to fetch */
	uint32_t left;		/* sectors or blocks still to fetch */
	uint32_t block;		/* disk PIO: sectors per DRQ block */
	uint32_t chunk;		/* ATAPI PIO: bytes per DRQ chunk (byte count limit) */
	uint32_t chunk_end;	/* where the current ATAPI DRQ chunk ends in buf */
	bool dma_pending;	/* a DMA command waits for the bus master */
	bool dma_write;
	/* Bus master (SFF-8038i §3). */
	uint8_t bm_cmd, bm_status;
	uint32_t bm_prd;
};

struct ide_ops {
	void (*set_irq)(void *opaque, unsigned line, bool level);
};

struct ide {
	pthread_mutex_t lock;
	const struct guest_memory *mem;
	const struct ide_ops *ops;
	void *opaque;
	struct ide_channel ch[2];
	struct pci_device pci;
};

/* drives[i] (index = channel * 2 + unit) may be NULL; cdrom[i] says which are CD-ROMs. */
int ide_init(struct ide *ide, const struct guest_memory *mem, const struct ide_ops *ops,
	     void *opaque, struct block_dev *const drives[4], const bool cdrom[4]);
void ide_destroy(struct ide *ide);

/* Port handlers; dev is the channel (&ide->ch[n]) for the first two, the ide for BAR4. */
void ide_cmd_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void ide_ctrl_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void ide_bm_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

/* Internal to ide.c and atapi.c. */
struct ide_drive *ide_cur(struct ide_channel *ch);
void ide_raise_irq(struct ide_channel *ch);
void ide_abort(struct ide_channel *ch);
void atapi_identify(struct ide_channel *ch);
void atapi_packet(struct ide_channel *ch);
/* Refills buf for an ATAPI read; returns -1 on a read error (sense already set). */
int atapi_fill(struct ide_channel *ch);
void atapi_finish(struct ide_channel *ch);
void atapi_error(struct ide_channel *ch, uint8_t sense, uint8_t asc);
void atapi_start_in(struct ide_channel *ch, uint32_t len, uint32_t alloc);
void ide_start_dma(struct ide_channel *ch, bool write);
void ide_set_signature(struct ide_channel *ch, unsigned unit);
void ide_start_pio_in(struct ide_channel *ch, uint32_t len);
void ide_data_done(struct ide_channel *ch);

#endif
