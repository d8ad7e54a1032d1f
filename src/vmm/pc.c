/* The pc machine's fixed platform devices, wired to the buses and to KVM's interrupt lines. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "hw/e1000.h"
#include "util/log.h"
#include "vmm/vm.h"

static void pc_power_event(void *opaque, enum power_event event, int status)
{
	struct vm *vm = opaque;

	switch (event) {
	case POWER_EVENT_OFF:
		vm_request_stop(vm, VM_STOP_POWEROFF, 0);
		break;
	case POWER_EVENT_RESET:
		vm_request_stop(vm, VM_STOP_RESET, 0);
		break;
	case POWER_EVENT_EXIT:
		vm_request_stop(vm, VM_STOP_EXIT, status);
		break;
	}
}

int pc_add_part(struct vm *vm, void *dev, void (*destroy)(void *dev))
{
	if (vm->nr_parts == VM_MAX_PARTS) {
		log_error("too many platform devices");
		return -1;
	}
	vm->parts[vm->nr_parts++] = (struct vm_part){ .dev = dev, .destroy = destroy };
	return 0;
}

bool pc_has_part(const struct vm *vm, const void *dev)
{
	for (unsigned i = 0; i < vm->nr_parts; i++)
		if (vm->parts[i].dev == dev)
			return true;
	return false;
}

static void pci_bus_part_destroy(void *dev)
{
	pci_bus_destroy(dev);
}

static void acpi_pm_part_destroy(void *dev)
{
	acpi_pm_destroy(dev);
}

static void serial_part_destroy(void *dev)
{
	serial_destroy(dev);
}

static void pc_set_nic_rom(struct vm *vm, struct pci_device *pci, unsigned nic)
{
	const struct nic_rom *rom = vm->backends->nic_roms ? &vm->backends->nic_roms[nic] : NULL;

	if (rom && rom->data)
		pci_device_set_rom(pci, rom->data, rom->len);
}

/* The virtio-blk disk that dev names (drive=), as -drive and -device set it. */
static struct virtio_blk_conf pc_blk_conf(struct vm *vm, const struct device_config *dev)
{
	const struct vm_config *cfg = vm->cfg;
	struct virtio_blk_conf conf = { .drive = dev->drive, .serial = "" };

	for (unsigned i = 0; i < cfg->nr_drives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		if (strcmp(d->id, dev->drive) != 0)
			continue;
		conf.disk = vm->backends->disks[i];
		conf.discard = d->discard;
		conf.detect_zeroes = d->detect_zeroes;
		conf.engine = d->aio_native ? BLOCK_AIO_NATIVE
			      : d->aio_io_uring ? BLOCK_AIO_IO_URING : BLOCK_AIO_THREADS;
		conf.serial = dev->serial[0] ? dev->serial : d->serial;
		/* 0: QEMU's defaults, werror=enospc and rerror=report (config.h). */
		conf.werror = d->werror ? (enum block_error_action)(d->werror - 1) : BLOCK_ERR_ENOSPC;
		conf.rerror = d->rerror ? (enum block_error_action)(d->rerror - 1) : BLOCK_ERR_REPORT;
		conf.on_error = vm->backends->blk_error;
	}
	return conf;
}

/* cfg->devices[index]: each virtio device plugs itself in (virtio/devices.h). */
static int pc_add_virtio(struct vm *vm, unsigned index)
{
	const struct device_config *dev = &vm->cfg->devices[index];
	const struct vm_backends *be = vm->backends;
	struct virtio_plug at = {
		.vp = &vm->virtio[vm->nr_virtio], .bus = &vm->pci, .slot = dev->slot,
		.num_queues = dev->num_queues, .mem = &vm->mem, .vm_fd = vm->fd,
		.io = vm->io.started ? &vm->io : NULL,
	};
	struct virtio_blk_conf blk;
	int r = -1;

	switch (dev->kind) {
	case DEVICE_VIRTIO_RNG:
		r = virtio_rng_plug(&at);
		break;
	case DEVICE_VIRTIO_SERIAL:
		r = virtio_console_plug(be->console, &at);
		break;
	case DEVICE_VIRTIO_BALLOON:
		if (!be->balloon)
			return 0;	/* main() gave no balloon state: none is wanted */
		r = virtio_balloon_plug(be->balloon, &at);
		break;
	case DEVICE_VIRTIO_BLK:
		blk = pc_blk_conf(vm, dev);
		r = virtio_blk_plug(&be->blks[index], &blk, &at);
		break;
	case DEVICE_VIRTIO_NET:
		r = virtio_net_plug(&be->nics[dev->nic], &at);
		if (r == 0)
			pc_set_nic_rom(vm, &at.vp->pci, dev->nic);
		break;
	case DEVICE_E1000:
	case DEVICE_VGA:
	case DEVICE_BOCHS_DISPLAY:
		return -1;	/* not virtio: pc_add_e1000, pc_create_vga */
	}
	if (r < 0)
		return -1;
	vm->nr_virtio++;
	return 0;
}

/* PCI INTx of a device that is not virtio: the line firmware wrote to INTERRUPT_LINE. */
static void pc_pci_intx(void *opaque, unsigned line, bool level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = line, .level = level };

	if (ioctl(vm->fd, KVM_IRQ_LINE, &irq) < 0)
		log_debug("KVM_IRQ_LINE %u: %s", line, strerror(errno));
}

static int pc_add_e1000(struct vm *vm, const struct device_config *dev)
{
	struct e1000 *e = &vm->backends->e1000s[dev->nic];

	if (e1000_attach(e, &vm->pci, dev->slot, &vm->mem, pc_pci_intx, vm) < 0) {
		log_error("e1000: PCI slot %d is taken or the bus is full", dev->slot);
		return -1;
	}
	pc_set_nic_rom(vm, &e->pci, dev->nic);
	return 0;
}

/* The PCI host bridge, its config ports and windows, and the virtio devices on it. */
static int pc_create_pci(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;

	if (pci_bus_init(&vm->pci) < 0) {
		log_error("cannot create the PCI bus");
		return -1;
	}
	if (pc_add_part(vm, &vm->pci, pci_bus_part_destroy) < 0)
		return -1;
	if (cfg->nr_devices && iothread_start(&vm->io) < 0)
		return -1;
	if (pc_create_chipset(vm) < 0)
		return -1;
	/* 0xcf8 is a dword register that shares its bytes with 0xcf9 (reset control). */
	if (bus_register(&vm->pio, PCI_CONFIG_ADDRESS, 1, pci_config_address_io, &vm->pci,
			 "pci-conf-idx") < 0 ||
	    bus_register(&vm->pio, PCI_CONFIG_DATA, 4, pci_config_data_io, &vm->pci,
			 "pci-conf-data") < 0 ||
	    bus_register(&vm->pio, PCI_IO_WINDOW_BASE, PCI_IO_WINDOW_END - PCI_IO_WINDOW_BASE,
			 pci_pio_io, &vm->pci, "pci-io") < 0 ||
	    bus_register(&vm->mmio, PCI_MMIO_WINDOW_BASE, PCI_MMIO_WINDOW_END - PCI_MMIO_WINDOW_BASE,
			 pci_mmio_io, &vm->pci, "pci-mmio") < 0) {
		log_error("PCI: address ranges already in use");
		return -1;
	}
	/* The -vga card first, at 00:02.0, as QEMU builds it before any -device. */
	if (cfg->vga == VGA_TYPE_STD && pc_create_vga(vm, NULL) < 0)
		return -1;
	for (unsigned i = 0; i < cfg->nr_devices; i++) {
		const struct device_config *dev = &cfg->devices[i];
		int r;
		if (dev->kind == DEVICE_VGA || dev->kind == DEVICE_BOCHS_DISPLAY)
			r = pc_create_vga(vm, dev);
		else if (dev->kind == DEVICE_E1000)
			r = pc_add_e1000(vm, dev);
		else
			r = pc_add_virtio(vm, i);
		if (r < 0)
			return -1;
	}
	return 0;
}

static void com1_transmit(void *opaque, uint8_t byte)
{
	struct vm *vm = opaque;

	chardev_write(vm->console, &byte, 1);
}

static void pc_set_isa_irq(struct vm *vm, unsigned line, bool level)
{
	struct kvm_irq_level irq = { .irq = line, .level = level };

	/* KVM routes the ISA line to both the 8259 and the IOAPIC. */
	if (ioctl(vm->fd, KVM_IRQ_LINE, &irq) < 0)
		log_debug("KVM_IRQ_LINE %u: %s", line, strerror(errno));
}

static void com1_set_irq(void *opaque, bool level)
{
	pc_set_isa_irq(opaque, SERIAL_COM1_IRQ, level);
}

static void i8042_set_irq(void *opaque, unsigned irq, bool level)
{
	pc_set_isa_irq(opaque, irq, level);
}

static void i8042_part_destroy(void *dev)
{
	i8042_destroy(dev);
}

static void acpi_set_sci(void *opaque, bool level)
{
	pc_set_isa_irq(opaque, ACPI_PM_SCI_IRQ, level);
}

void pc_power_button(struct vm *vm)
{
	acpi_pm_power_button(&vm->pm);
}

static const struct serial_ops com1_ops = {
	.transmit = com1_transmit,
	.set_irq = com1_set_irq,
};

struct pio_device {
	uint16_t base, len;
	bus_access_fn access;
	void *dev;
	const char *name;
};

int pc_create_devices(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	struct power_sink power = { .event = pc_power_event, .opaque = vm };

	if (i8042_init(&vm->kbc, &power, i8042_set_irq, vm) < 0 ||
	    pc_add_part(vm, &vm->kbc, i8042_part_destroy) < 0)
		return -1;
	if (vm->backends && vm->backends->input &&
	    i8042_attach_input(&vm->kbc, vm->backends->input) < 0) {
		log_error("i8042: cannot register the PS/2 keyboard and mouse");
		return -1;
	}
	reset_control_init(&vm->rcr, &power);
	acpi_pm_init(&vm->pm, &power, acpi_set_sci, vm);
	if (pc_add_part(vm, &vm->pm, acpi_pm_part_destroy) < 0)
		return -1;
	debug_exit_init(&vm->debug_exit, &power);
	if (vm->console) {
		serial_init(&vm->com1, &com1_ops, vm);
		if (pc_add_part(vm, &vm->com1, serial_part_destroy) < 0)
			return -1;
	}

	const struct pio_device devices[] = {
		{ I8042_DATA_PORT, 1, i8042_data_io, &vm->kbc, "i8042-data" },
		{ I8042_COMMAND_PORT, 1, i8042_command_io, &vm->kbc, "i8042-cmd" },
		{ RESET_CONTROL_PORT, 1, reset_control_io, &vm->rcr, "reset-control" },
		{ ACPI_PM_BASE, ACPI_PM_LEN, acpi_pm_io, &vm->pm, "acpi-pm" },
		{ SERIAL_COM1_BASE, SERIAL_NR_PORTS, serial_io, &vm->com1, "serial" },
		{ cfg->debug_exit.iobase, cfg->debug_exit.iosize, debug_exit_io, &vm->debug_exit,
		  "isa-debug-exit" },
	};
	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
		const struct pio_device *d = &devices[i];
		if (d->dev == &vm->com1 && !pc_has_part(vm, &vm->com1))
			continue;
		if (d->dev == &vm->debug_exit && !cfg->debug_exit.enabled)
			continue;
		if (bus_register(&vm->pio, d->base, d->len, d->access, d->dev, d->name) < 0) {
			log_error("%s: I/O ports 0x%x-0x%x are already in use", d->name, d->base,
				  d->base + d->len - 1);
			return -1;
		}
	}
	if (pc_create_legacy(vm) < 0)
		return -1;
	return pc_create_pci(vm);
}

/* "info mtree": QEMU's layout, one address space per bus. */
void pc_describe_mtree(struct vm *vm, FILE *out)
{
	fprintf(out, "address-space: memory\n"
		     "  0000000000000000-ffffffffffffffff (prio 0, i/o): system\n");
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct memory_region *r = &vm->mem.regions[i];
		fprintf(out, "    %016llx-%016llx (prio 0, ram): %s\n", (unsigned long long)r->gpa,
			(unsigned long long)(r->gpa + r->size - 1),
			r->gpa ? "ram-above-4g" : "ram-below-4g");
	}
	fprintf(out, "\naddress-space: I/O\n"
		     "  0000000000000000-000000000000ffff (prio 0, i/o): io\n");
	for (size_t i = 0; i < vm->pio.count; i++) {
		const struct bus_range *r = &vm->pio.ranges[i];
		fprintf(out, "    %016llx-%016llx (prio 0, i/o): %s\n", (unsigned long long)r->base,
			(unsigned long long)(r->base + r->len - 1), r->name);
	}
}

/* "info qtree" (a subset): the fixed ISA devices. */
void pc_describe_qtree(struct vm *vm, FILE *out)
{
	fprintf(out, "bus: main-system-bus\n  type System\n  dev: i440FX-pcihost\n"
		     "    bus: isa.0\n      type ISA\n");
	for (size_t i = 0; i < vm->pio.count; i++) {
		const struct bus_range *r = &vm->pio.ranges[i];
		fprintf(out, "      dev: %s, id \"\"\n        iobase = 0x%llx\n", r->name,
			(unsigned long long)r->base);
	}
}

void pc_destroy_devices(struct vm *vm)
{
	/* The I/O thread goes first: nothing may run a device while it is torn down. */
	if (vm->io.started)
		iothread_stop(&vm->io);
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		struct virtio_device *vdev = &vm->virtio[i].vdev;
		if (vdev->ops->unplug)
			vdev->ops->unplug(vdev);
		virtio_pci_destroy(&vm->virtio[i]);
	}
	for (unsigned i = 0; vm->backends && i < vm->cfg->nr_devices; i++)
		if (vm->cfg->devices[i].kind == DEVICE_E1000)
			e1000_detach(&vm->backends->e1000s[vm->cfg->devices[i].nic]);
	vm->nr_virtio = 0;
	while (vm->nr_parts) {
		struct vm_part *p = &vm->parts[--vm->nr_parts];
		if (p->destroy)
			p->destroy(p->dev);
	}
}
