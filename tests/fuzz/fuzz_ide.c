/*
 * The IDE controller driven by a guest: ATA and ATAPI commands through the
 * task-file ports, data-port transfers, the bus master and PRD tables the
 * input writes into a small guest RAM.  Each 6-byte record is one access:
 * op, register, 32-bit value.  Checked after every step: the data window
 * stays inside the controller's buffer, and every DMA stays inside RAM
 * (ASan would see a write outside the 1 MiB mapping).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_device.h"
#include "hw/ide.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

#define RAM (1u << 20)

static void no_irq(void *opaque, unsigned line, bool level) { }
static const struct ide_ops ops = { .set_irq = no_irq };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct block_dev *disk, *cd;
	struct guest_memory *mem = fuzz_device_ram(RAM);
	struct block_dev *drives[4];
	bool cdrom[4] = { false, false, true, false };
	struct ide ide;

	if (!disk) {
		disk = fuzz_temp_image(128 * 512, 0);
		cd = fuzz_temp_image(16 * 2048, 0);
	}
	drives[0] = disk;
	drives[1] = NULL;
	drives[2] = cd;
	drives[3] = (len & 1) ? disk : NULL;	/* sometimes a slave on the CD's channel */
	if (ide_init(&ide, mem, &ops, NULL, drives, cdrom) < 0)
		abort();

	for (size_t i = 0; i + 6 <= len; i += 6) {
		uint8_t op = data[i], reg = data[i + 1];
		uint8_t v[4];
		struct ide_channel *ch = &ide.ch[(op >> 4) & 1];
		unsigned size = (op & 0x80) ? 4 : ((op & 0x40) ? 2 : 1);
		uint32_t addr;

		memcpy(v, data + i + 2, 4);
		switch (op & 7) {
		case 0:
			ide_cmd_io(ch, 1 + reg % 7, true, v, 1);
			break;
		case 1:
			ide_cmd_io(ch, reg % 8, false, v, reg % 8 ? 1 : (size == 1 ? 2 : size));
			break;
		case 2:
			ide_ctrl_io(ch, 0, (op & 8) != 0, v, 1);
			break;
		case 3:
			ide_bm_io(&ide, reg % 16, true, v, reg % 16 < 16 - size ? size : 1);
			break;
		case 4:
			ide_bm_io(&ide, reg % 16, false, v, 1);
			break;
		case 5:
			ide_cmd_io(ch, 0, true, v, size == 1 ? 2 : size);
			break;
		case 6:	/* guest RAM: PRD tables, data */
			addr = ((uint32_t)reg << 12 | (uint32_t)(op >> 3) << 4) & (RAM - 4);
			memcpy(mem->host + addr, v, 4);
			break;
		case 7:	/* a command byte, the most interesting write */
			ide_cmd_io(ch, 7, true, v, 1);
			break;
		}
		for (unsigned c = 0; c < 2; c++) {
			const struct ide_channel *k = &ide.ch[c];
			if (k->pos > k->len || k->len > IDE_BUF_SIZE || k->chunk_end > IDE_BUF_SIZE)
				abort();
		}
	}
	ide_destroy(&ide);
	return 0;
}
