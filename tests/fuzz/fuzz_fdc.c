/*
 * The floppy controller and the ISA DMA controller driven by a guest: FDC
 * commands and result reads, digital output and input registers, 8237
 * address/count/mode/mask/page programming and RAM the input writes.  Each
 * 3-byte record is one access: op, register, value.  Checked after every
 * step: the command/result cursor stays inside the FIFO; every DMA lands in
 * the 1 MiB guest RAM (ASan sees any write past the mapping).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_device.h"
#include "hw/fdc.h"
#include "hw/i8237.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

#define RAM (1u << 20)

static void no_irq(void *opaque, bool level) { }
static const struct fdc_ops ops = { .set_irq = no_irq };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct block_dev *disk, *ro_disk;
	struct guest_memory *mem = fuzz_device_ram(RAM);
	struct block_dev *drives[FDC_MAX_DRIVES];
	struct i8237 dma;
	struct fdc fdc;
	char err[200];

	if (!disk) {
		disk = fuzz_temp_image(FDC_IMAGE_SIZE, 0);
		ro_disk = fuzz_temp_image(FDC_IMAGE_SIZE, BLOCK_RDONLY);
	}
	drives[0] = disk;
	drives[1] = (len & 1) ? ro_disk : NULL;	/* sometimes a read-only drive B */
	i8237_init(&dma, mem);
	if (fdc_init(&fdc, &dma, &ops, NULL, drives, err, sizeof(err)) < 0)
		abort();

	for (size_t i = 0; i + 3 <= len; i += 3) {
		uint8_t op = data[i], reg = data[i + 1], v = data[i + 2];

		switch (op & 7) {
		case 0:	/* FIFO: command bytes, the most interesting writes */
			fdc_io(&fdc, 5, true, &v, 1);
			break;
		case 1:
			fdc_io(&fdc, reg % FDC_NR_PORTS, false, &v, 1);
			break;
		case 2:
			fdc_io(&fdc, reg % FDC_NR_PORTS, true, &v, 1);
			break;
		case 3:
			fdc_dir_io(&fdc, 0, (op & 8) != 0, &v, 1);
			break;
		case 4:
			i8237_io(&dma, reg % I8237_NR_PORTS, (op & 8) != 0, &v, 1);
			break;
		case 5:
			i8237_page_io(&dma, reg % I8237_NR_PAGE_PORTS, (op & 8) != 0, &v, 1);
			break;
		case 6:
			i8237_high_io(&dma, reg % I8237_NR_HIGH_PORTS, (op & 8) != 0, &v, 1);
			break;
		case 7:	/* guest RAM */
			mem->host[((uint32_t)reg << 12 | (uint32_t)(op >> 3) << 7) % RAM] = v;
			break;
		}
		if (fdc.pos > sizeof(fdc.fifo) || fdc.len > sizeof(fdc.fifo))
			abort();
	}
	fdc_destroy(&fdc);
	i8237_destroy(&dma);
	return 0;
}
