/*
 * The PC devices firmware and legacy guests expect beyond the basics in pc.c:
 * RTC/CMOS with the memory-size bytes, port 0x92, the POST port, the debug
 * console, and the PIIX chipset functions on the PCI bus.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/log.h"
#include "vmm/vm.h"

static void vm_power_event(void *opaque, enum power_event event, int status)
{
	struct vm *vm = opaque;

	(void)status;
	if (event == POWER_EVENT_RESET)
		vm_request_stop(vm, VM_STOP_RESET, 0);
}

/* QEMU hw/i386/pc.c pc_cmos_init: the memory sizes in the units the BIOS reads. */
static void cmos_memory(struct rtc *rtc, const struct vm *vm)
{
	uint64_t below4g = vm->mem.regions[0].size;
	uint64_t above4g = vm->mem.nr_regions > 1 ? vm->mem.regions[1].size : 0;
	uint64_t ext = below4g / 1024 - 1024, m16 = 0;

	rtc_set_byte(rtc, CMOS_BASE_MEM_LOW, 640 & 0xff);
	rtc_set_byte(rtc, CMOS_BASE_MEM_HIGH, 640 >> 8);
	if (ext > 65535)
		ext = 65535;
	rtc_set_byte(rtc, CMOS_EXT_MEM_LOW, (uint8_t)ext);
	rtc_set_byte(rtc, CMOS_EXT_MEM_HIGH, (uint8_t)(ext >> 8));
	rtc_set_byte(rtc, CMOS_EXT_MEM2_LOW, (uint8_t)ext);
	rtc_set_byte(rtc, CMOS_EXT_MEM2_HIGH, (uint8_t)(ext >> 8));
	if (below4g > (16u << 20))
		m16 = (below4g - (16u << 20)) >> 16;
	if (m16 > 65535)
		m16 = 65535;
	rtc_set_byte(rtc, CMOS_MEM_16M_LOW, (uint8_t)m16);
	rtc_set_byte(rtc, CMOS_MEM_16M_HIGH, (uint8_t)(m16 >> 8));
	above4g >>= 16;
	rtc_set_byte(rtc, CMOS_MEM_4G_LOW, (uint8_t)above4g);
	rtc_set_byte(rtc, CMOS_MEM_4G_LOW + 1, (uint8_t)(above4g >> 8));
	rtc_set_byte(rtc, CMOS_MEM_4G_LOW + 2, (uint8_t)(above4g >> 16));
	rtc_set_byte(rtc, CMOS_SMP_COUNT, (uint8_t)(vm->cfg->smp.cpus - 1));
	rtc_set_byte(rtc, CMOS_EQUIPMENT, 0x06);	/* FPU, PS/2 mouse; no floppy */
}

static void debugcon_transmit(void *opaque, uint8_t byte)
{
	chardev_write(opaque, &byte, 1);
}

static void rtc_part_destroy(void *dev)
{
	rtc_destroy(dev);
}

static void ide_part_destroy(void *dev)
{
	ide_destroy(dev);
}

int pc_create_legacy(struct vm *vm)
{
	struct power_sink power = { .event = vm_power_event, .opaque = vm };

	rtc_init(&vm->rtc);
	rtc_set_base(&vm->rtc, vm->cfg->rtc.localtime, vm->cfg->rtc.offset);
	if (pc_add_part(vm, &vm->rtc, rtc_part_destroy) < 0)
		return -1;
	cmos_memory(&vm->rtc, vm);
	port92_init(&vm->port92, &power);
	vm->debugcon.transmit = debugcon_transmit;
	vm->debugcon.opaque = vm->backends->debugcon;
	if (bus_register(&vm->pio, RTC_PORT, RTC_NR_PORTS, rtc_io, &vm->rtc, "rtc") < 0 ||
	    bus_register(&vm->pio, PORT92_PORT, 1, port92_io, &vm->port92, "port92") < 0 ||
	    bus_register(&vm->pio, POST_PORT, 1, post_port_io, NULL, "ioport80") < 0 ||
	    (vm->debugcon.opaque && bus_register(&vm->pio, DEBUGCON_PORT, 1, debugcon_io,
					      &vm->debugcon, "isa-debugcon") < 0)) {
		log_error("legacy PC devices: I/O ports already in use");
		return -1;
	}
	return pc_create_floppy(vm);
}

static bool wants_ide(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_drives; i++)
		if (cfg->drives[i].iface == DRIVE_IF_IDE)
			return true;
	return false;
}

static void ide_set_irq(void *opaque, unsigned line, bool level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = line, .level = level };

	if (ioctl(vm->fd, KVM_IRQ_LINE, &irq) < 0)
		log_debug("KVM_IRQ_LINE %u: %s", line, strerror(errno));
}

static const struct ide_ops pc_ide_ops = { .set_irq = ide_set_irq };

/* The PIIX IDE function with the if=ide drives at their index= positions. */
static int create_ide(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	struct block_dev *drives[IDE_MAX_DRIVES] = { NULL };
	bool cdrom[IDE_MAX_DRIVES] = { false };

	for (unsigned i = 0; i < cfg->nr_drives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		if (d->iface != DRIVE_IF_IDE || d->index < 0 || d->index >= IDE_MAX_DRIVES)
			continue;
		drives[d->index] = vm->backends->disks[i];
		cdrom[d->index] = d->cdrom;
	}
	if (ide_init(&vm->ide, &vm->mem, &pc_ide_ops, vm, drives, cdrom) < 0) {
		log_error("IDE: out of memory");
		return -1;
	}
	/* werror=/rerror=ignore (report is the IDE default; stop is refused by the options). */
	for (unsigned i = 0; i < cfg->nr_drives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		struct ide_drive *id;
		if (d->iface != DRIVE_IF_IDE || d->index < 0 || d->index >= IDE_MAX_DRIVES)
			continue;
		id = &vm->ide.ch[d->index / 2].drives[d->index % 2];
		id->ignore_write_errors = d->werror == BLOCK_ERR_IGNORE + 1;
		id->ignore_read_errors = d->rerror == BLOCK_ERR_IGNORE + 1;
	}
	if (pc_add_part(vm, &vm->ide, ide_part_destroy) < 0)
		return -1;
	if (bus_register(&vm->pio, IDE_PRIMARY_BASE, IDE_NR_PORTS, ide_cmd_io, &vm->ide.ch[0],
			 "ide.0") < 0 ||
	    bus_register(&vm->pio, IDE_PRIMARY_CTRL, 1, ide_ctrl_io, &vm->ide.ch[0],
			 "ide.0-ctrl") < 0 ||
	    bus_register(&vm->pio, IDE_SECONDARY_BASE, IDE_NR_PORTS, ide_cmd_io, &vm->ide.ch[1],
			 "ide.1") < 0 ||
	    bus_register(&vm->pio, IDE_SECONDARY_CTRL, 1, ide_ctrl_io, &vm->ide.ch[1],
			 "ide.1-ctrl") < 0) {
		log_error("IDE: I/O ports already in use");
		return -1;
	}
	if (pci_bus_plug_function(&vm->pci, &vm->ide.pci, PIIX_SLOT, 1) < 0) {
		log_error("IDE: PCI function 00:01.1 is taken");
		return -1;
	}
	return 0;
}

/*
 * 00:01.0 PIIX3 ISA bridge (and 00:01.1 IDE, 00:01.2 UHCI with -usb) as on
 * QEMU's pc machine; only for firmware boot, IDE drives or USB, so direct -kernel guests keep their PCI layout.
 */
int pc_create_chipset(struct vm *vm)
{
	if (!vm_config_firmware_boot(vm->cfg) && !wants_ide(vm->cfg) && !vm->cfg->usb.uhci)
		return 0;
	if (piix_init(&vm->piix, &vm->pci) < 0) {
		log_error("PIIX3: PCI slot %d is taken", PIIX_SLOT);
		return -1;
	}
	if (pc_add_part(vm, &vm->piix, NULL) < 0)
		return -1;
	if (create_ide(vm) < 0)
		return -1;
	return pc_create_usb(vm);
}
