/*
 * vmm/pc_usb.c on a VM without KVM: the UHCI plugged as 00:01.2 behind the
 * PIIX3, the HID devices on the ports options_check_usb chose and registered
 * with the input routing, info usb's lines, the 1 ms frame thread advancing
 * FRNUM while RS is set, and teardown in the right order (the frame thread
 * stops before the devices it calls go away).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake.h"
#include "vmm/vm.h"

static void test_uhci_plugged_with_hid_devices(void **state)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vm_config *cfg = calloc(1, sizeof(*cfg));
	struct vm_backends be = { 0 };
	struct input in;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	uint8_t b[2];

	(void)state;
	assert_non_null(vm);
	assert_non_null(cfg);
	assert_int_equal(input_init(&in), 0);
	be.input = &in;
	cfg->usb.uhci = true;
	cfg->usb.nr = 2;
	cfg->usb.devs[0] = (struct usb_device_config){ .kind = USB_HID_TABLET, .port_nr = 2 };
	cfg->usb.devs[1] = (struct usb_device_config){ .kind = USB_HID_KEYBOARD, .id = "k1",
						       .port_nr = 1 };
	vm->cfg = cfg;
	vm->backends = &be;
	vm->fd = -1;
	assert_int_equal(fake_memory_init(&vm->mem, 1 * MIB), 0);
	assert_int_equal(pci_bus_init(&vm->pci), 0);
	assert_int_equal(piix_init(&vm->piix, &vm->pci), 0);

	assert_int_equal(pc_create_usb(vm), 0);
	assert_ptr_equal(vm->pci.functions[PIIX_SLOT][UHCI_FN - 1], &vm->uhci.pci);
	assert_int_equal(vm->uhci.pci.config[PCI_DEVICE_ID], 0x20);
	assert_true(vm->uhci.pci.bars[4].io);
	assert_ptr_equal(vm->uhci.ports[1], &vm->usb_hids[0].dev);
	assert_ptr_equal(vm->uhci.ports[0], &vm->usb_hids[1].dev);
	assert_string_equal(input_current_mouse(&in)->name, "QEMU HID Tablet");

	f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_true(pc_describe_usb(vm, f));
	fclose(f);
	assert_string_equal(text,
		"  Device 0.0, Port 1, Speed 12 Mb/s, Product QEMU USB Keyboard, ID: k1\n"
		"  Device 0.0, Port 2, Speed 12 Mb/s, Product QEMU USB Tablet\n");
	free(text);

	/* The frame thread: with RS set and bus mastering on, FRNUM counts milliseconds. */
	vm->uhci.pci.config[PCI_COMMAND] |= PCI_COMMAND_MASTER;
	memset(vm->mem.host + 0x1000, 0xff, 4096);	/* every entry terminates */
	b[0] = 0x00;
	b[1] = 0x10;
	uhci_io(&vm->uhci, UHCI_FLBASEADD, true, b, 2);
	b[0] = UHCI_CMD_RS;
	b[1] = 0;
	uhci_io(&vm->uhci, UHCI_USBCMD, true, b, 2);
	nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000000 }, NULL);
	uhci_io(&vm->uhci, UHCI_FRNUM, false, b, 2);
	assert_true((b[0] | b[1] << 8) >= 5);	/* 100 ms, on a loaded host */

	pc_destroy_devices(vm);
	assert_null(input_current_mouse(&in));
	pci_bus_destroy(&vm->pci);
	fake_memory_free(&vm->mem);
	input_destroy(&in);
	free(cfg);
	free(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uhci_plugged_with_hid_devices),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
