/*
 * ISA floppy disk controller (82077AA-compatible, ports 0x3f0-0x3f5 and
 * 0x3f7, IRQ 6, DMA channel 2) with up to two 3.5" 1.44 MB drives on the
 * shared block library: the commands SeaBIOS's floppy driver and boot
 * loaders issue (specify, recalibrate, seek, sense interrupt/drive status,
 * read ID, read/write data, version, configure, lock).  Data moves by ISA DMA
 * only (hw/i8237.c); a transfer the DMA channel cannot take ends the command
 * with an error status, never outside RAM.
 */
#ifndef KESTREL_HW_FDC_H
#define KESTREL_HW_FDC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/block.h"
#include "hw/i8237.h"

#define FDC_PORT 0x3f0		/* 0x3f0-0x3f5; 0x3f6 is the IDE control register */
#define FDC_NR_PORTS 6
#define FDC_DIR_PORT 0x3f7
#define FDC_IRQ 6
#define FDC_DMA_CHANNEL 2
#define FDC_MAX_DRIVES 2

/* The one geometry supported: 3.5" high density, 80 cylinders x 2 heads x 18 sectors. */
#define FDC_CYLS 80
#define FDC_HEADS 2
#define FDC_SPT 18
#define FDC_SECTOR 512
#define FDC_IMAGE_SIZE (FDC_CYLS * FDC_HEADS * FDC_SPT * FDC_SECTOR)	/* 1474560 */
#define FDC_CMOS_TYPE_144 4	/* CMOS 0x10 drive type: 1.44 MB 3.5" */

struct fdc_ops {
	void (*set_irq)(void *opaque, bool level);
};

struct fdc_drive {
	struct block_dev *blk;	/* NULL: no drive */
	uint8_t cyl;		/* where the head is */
};

struct fdc {
	pthread_mutex_t lock;
	struct i8237 *dma;
	const struct fdc_ops *ops;
	void *opaque;
	struct fdc_drive drives[FDC_MAX_DRIVES];
	uint8_t dor;
	bool result_phase;
	uint8_t fifo[16];
	unsigned pos, len;	/* command bytes taken / result bytes given, of len */
	uint8_t st0;		/* for SENSE INTERRUPT STATUS */
	bool irq;
	unsigned reset_sensei;	/* polls owed after a reset, one per drive (4) */
	uint8_t sector[FDC_SECTOR];
};

/* Whether the image for drive unit (0: A:) is a 1.44 MB one; -1 with err otherwise. */
int fdc_check_image(struct block_dev *blk, unsigned unit, char *err, size_t errlen);
/* Checks each image is 1.44 MB; -1 with a message in err otherwise. */
int fdc_init(struct fdc *fdc, struct i8237 *dma, const struct fdc_ops *ops, void *opaque,
	     struct block_dev *drives[FDC_MAX_DRIVES], char *err, size_t errlen);
void fdc_destroy(struct fdc *fdc);

/* fdc_io at FDC_PORT (offsets 0-5), fdc_dir_io at FDC_DIR_PORT. */
void fdc_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void fdc_dir_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

#endif
