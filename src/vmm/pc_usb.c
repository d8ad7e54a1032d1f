/*
 * The pc machine's USB: the PIIX3 UHCI as function 2 of the PIIX3 (where
 * QEMU's -usb puts it) and the HID devices on its root ports, registered
 * with the VM's input routing so viewers and the monitor reach them.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/log.h"
#include "vmm/vm.h"

static void uhci_set_irq(void *opaque, unsigned line, bool level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = line, .level = level };

	/* Until firmware or the OS routes INTD# (INTERRUPT_LINE 0 or 0xff) there is no line. */
	if (line == 0 || line == 2 || line >= 16)
		return;
	if (ioctl(vm->fd, KVM_IRQ_LINE, &irq) < 0)
		log_debug("KVM_IRQ_LINE %u: %s", line, strerror(errno));
}

static void hid_part_destroy(void *dev)
{
	usb_hid_destroy(dev);
}

static void uhci_part_destroy(void *dev)
{
	uhci_destroy(dev);
}

static int add_hid(struct vm *vm, const struct usb_device_config *d)
{
	struct usb_hid *h = &vm->usb_hids[vm->nr_usb_hids];

	if (usb_hid_init(h, (enum usb_hid_kind)d->kind, d->id) < 0) {
		log_error("%s: cannot create the device", usb_hid_kind_name(d->kind));
		return -1;
	}
	vm->nr_usb_hids++;
	/* Torn down after the UHCI (parts go backwards), whose frame thread calls into it. */
	if (pc_add_part(vm, h, hid_part_destroy) < 0)
		return -1;
	if (vm->backends->input && usb_hid_attach_input(h, vm->backends->input) < 0) {
		log_error("%s: too many input devices", usb_hid_kind_name(d->kind));
		return -1;
	}
	return 0;
}

int pc_create_usb(struct vm *vm)
{
	const struct usb_config *usb = &vm->cfg->usb;
	int r;

	if (!usb->uhci)
		return 0;
	for (unsigned i = 0; i < usb->nr; i++)
		if (add_hid(vm, &usb->devs[i]) < 0)
			return -1;
	r = uhci_init(&vm->uhci, &vm->mem, uhci_set_irq, vm);
	if (r < 0) {
		log_error("piix3-usb-uhci: %s", strerror(-r));
		return -1;
	}
	if (pc_add_part(vm, &vm->uhci, uhci_part_destroy) < 0)
		return -1;
	for (unsigned i = 0; i < usb->nr; i++)
		if (uhci_attach(&vm->uhci, usb->devs[i].port_nr - 1, &vm->usb_hids[i].dev) < 0) {
			log_error("%s: USB port %u is taken", usb_hid_kind_name(usb->devs[i].kind),
				  usb->devs[i].port_nr);
			return -1;
		}
	if (pci_bus_plug_function(&vm->pci, &vm->uhci.pci, PIIX_SLOT, UHCI_FN) < 0) {
		log_error("piix3-usb-uhci: PCI function 00:01.2 is taken");
		return -1;
	}
	r = uhci_start(&vm->uhci);
	if (r < 0) {
		log_error("piix3-usb-uhci: cannot start its frame timer: %s", strerror(-r));
		return -1;
	}
	return 0;
}

/* hmp_info_usb: "  Device B.A, Port P, Speed S Mb/s, Product NAME[, ID: ID]". */
bool pc_describe_usb(struct vm *vm, FILE *out)
{
	if (!vm->cfg->usb.uhci || !pc_has_part(vm, &vm->uhci))
		return false;
	for (unsigned p = 0; p < UHCI_PORTS; p++) {
		struct usb_device *d = vm->uhci.ports[p];
		if (!d)
			continue;
		fprintf(out, "  Device 0.%u, Port %u, Speed %u Mb/s, Product %s", d->addr, p + 1,
			d->speed_mbps, d->product);
		if (d->id[0])
			fprintf(out, ", ID: %s", d->id);
		fprintf(out, "\n");
	}
	return true;
}
