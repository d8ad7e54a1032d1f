/*
 * The UHCI schedule walker (usb/uhci.c) and the USB devices behind it as a
 * hostile guest drives them: the input is guest RAM itself (frame list at 0,
 * queue heads, TDs, SETUP packets and buffers, 16 KiB), then a program of
 * register writes, input events and frames.  A tablet and a keyboard sit on
 * the enabled ports.  AddressSanitizer catches any access outside guest RAM
 * or the devices' buffers; every frame must end (its walk is bounded).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usb/hid.h"
#include "usb/uhci.h"

#define RAM (16u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_irq(void *opaque, unsigned line, bool level)
{
}

static uint16_t take16(const uint8_t **p, size_t *left)
{
	uint16_t v = 0;

	for (unsigned i = 0; i < 2 && *left; i++, (*left)--)
		v |= (uint16_t)(*(*p)++ << (8 * i));
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ram[RAM];
	static struct guest_memory mem;
	static struct uhci u;
	static struct usb_hid tablet, kbd;
	size_t n = size < RAM ? size : RAM, left = size - n;
	const uint8_t *p = data + n;
	uint8_t b[2];

	memset(ram, 0, sizeof(ram));
	memcpy(ram, data, n);
	memset(&mem, 0, sizeof(mem));
	mem.host = ram;
	mem.regions[0] = (struct memory_region){ .gpa = 0, .size = RAM, .host = ram };
	mem.nr_regions = 1;
	if (uhci_init(&u, &mem, no_irq, NULL) < 0)
		return 0;
	if (usb_hid_init(&tablet, USB_HID_TABLET, NULL) < 0 ||
	    usb_hid_init(&kbd, USB_HID_KEYBOARD, NULL) < 0)
		abort();
	u.pci.config[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MASTER;
	if (uhci_attach(&u, 0, &tablet.dev) < 0 || uhci_attach(&u, 1, &kbd.dev) < 0)
		abort();
	/* A driver's start: both ports enabled, frame list at 0, running. */
	for (unsigned i = 0; i < 2; i++) {
		b[0] = UHCI_PORT_PED;
		b[1] = 0;
		uhci_io(&u, UHCI_PORTSC1 + 2 * i, true, b, 2);
	}
	b[0] = UHCI_CMD_RS;
	uhci_io(&u, UHCI_USBCMD, true, b, 2);
	/* Devices configured at their reset address, so TDs to address 0 reach endpoint 1. */
	tablet.dev.config = kbd.dev.config = 1;
	uhci_run_frame(&u);
	while (left) {
		uint16_t op = take16(&p, &left), v = take16(&p, &left);
		switch (op & 3) {
		case 0:		/* a register write */
			b[0] = (uint8_t)v;
			b[1] = (uint8_t)(v >> 8);
			uhci_io(&u, (op >> 2) & 0x1f, true, b, 1 + ((op >> 7) & 1));
			break;
		case 1:		/* pointer and key events */
			usb_hid_abs(&tablet, v & 0x7fff, op >> 2, (int)(op >> 14) - 2, v >> 13);
			usb_hid_key(&kbd, v & 0xff, v & 0x100);
			break;
		default:	/* frames */
			for (unsigned i = 0; i <= (op >> 2 & 7); i++)
				uhci_run_frame(&u);
			break;
		}
	}
	uhci_run_frame(&u);
	uhci_destroy(&u);
	usb_hid_destroy(&tablet);
	usb_hid_destroy(&kbd);
	return 0;
}
