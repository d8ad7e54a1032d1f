/*
 * The floppy controller on the pc machine: 0x3f0-0x3f5 and 0x3f7, IRQ 6,
 * ISA DMA channel 2, and the CMOS bytes SeaBIOS reads to find the drives
 * (0x10: drive types, 0x14: equipment), as QEMU's pc_cmos_init_floppy.
 * Only built when a floppy drive is configured, so other guests keep the
 * port layout they had.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/log.h"
#include "vmm/vm.h"

#define EQUIPMENT_FLOPPY 0x01
#define EQUIPMENT_TWO_FLOPPIES 0x40	/* bits 7-6: drives - 1 */

static void fdc_set_irq(void *opaque, bool level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = FDC_IRQ, .level = level };

	if (ioctl(vm->fd, KVM_IRQ_LINE, &irq) < 0)
		log_debug("KVM_IRQ_LINE %u: %s", FDC_IRQ, strerror(errno));
}

static const struct fdc_ops pc_fdc_ops = { .set_irq = fdc_set_irq };

static void i8237_part_destroy(void *dev)
{
	i8237_destroy(dev);
}

static void fdc_part_destroy(void *dev)
{
	fdc_destroy(dev);
}

int pc_create_floppy(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	struct block_dev *drives[FDC_MAX_DRIVES] = { NULL };
	unsigned n = 0;
	uint8_t types = 0, equipment;
	char err[256];

	for (unsigned i = 0; i < cfg->nr_drives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		if (d->iface != DRIVE_IF_FLOPPY || d->index < 0 || d->index >= FDC_MAX_DRIVES)
			continue;
		drives[d->index] = vm->backends->disks[i];
		types |= (uint8_t)(FDC_CMOS_TYPE_144 << (d->index ? 0 : 4));
		n++;
	}
	if (!n)
		return 0;
	i8237_init(&vm->isa_dma, &vm->mem);
	if (fdc_init(&vm->fdc, &vm->isa_dma, &pc_fdc_ops, vm, drives, err, sizeof(err)) < 0) {
		log_error("-fda: %s", err);
		i8237_destroy(&vm->isa_dma);
		return -1;
	}
	/* Torn down backwards: the controller, then the DMA it moves sectors through. */
	if (pc_add_part(vm, &vm->isa_dma, i8237_part_destroy) < 0 ||
	    pc_add_part(vm, &vm->fdc, fdc_part_destroy) < 0)
		return -1;
	if (bus_register(&vm->pio, FDC_PORT, FDC_NR_PORTS, fdc_io, &vm->fdc, "fdc") < 0 ||
	    bus_register(&vm->pio, FDC_DIR_PORT, 1, fdc_dir_io, &vm->fdc, "fdc.dir") < 0 ||
	    bus_register(&vm->pio, I8237_PORT, I8237_NR_PORTS, i8237_io, &vm->isa_dma,
			 "dma-chan") < 0 ||
	    bus_register(&vm->pio, I8237_PAGE_PORT, I8237_NR_PAGE_PORTS, i8237_page_io,
			 &vm->isa_dma, "dma-page") < 0 ||
	    bus_register(&vm->pio, I8237_HIGH_PORT, I8237_NR_HIGH_PORTS, i8237_high_io,
			 &vm->isa_dma, "dma-cont") < 0) {
		log_error("floppy controller: I/O ports already in use");
		return -1;
	}
	rtc_set_byte(&vm->rtc, CMOS_FLOPPY_TYPES, types);
	equipment = (uint8_t)(rtc_get_byte(&vm->rtc, CMOS_EQUIPMENT) | EQUIPMENT_FLOPPY);
	if (n == 2)
		equipment |= EQUIPMENT_TWO_FLOPPIES;
	rtc_set_byte(&vm->rtc, CMOS_EQUIPMENT, equipment);
	return 0;
}
