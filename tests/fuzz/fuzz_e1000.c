/*
 * The e1000 (hw/e1000.c) as a hostile guest and a hostile wire drive it: the
 * input is a program of register writes and reads (through the PCI BAR, as
 * vCPUs reach it), stores into guest RAM (descriptors, buffers), ring bases
 * pointed inside RAM, and frames arriving from the back end.  Transmitted
 * frames go to a sink.  AddressSanitizer catches any access outside guest
 * RAM or the device's own buffers.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_guest.h"
#include "hw/e1000.h"

#include "fuzz_cursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ssize_t sink_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	return (ssize_t)net_iov_size(iov, iovcnt);
}

static const struct net_client_ops sink_ops = { .type = "sink", .receive = sink_receive };

static void no_irq(void *opaque, unsigned line, bool level)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct e1000 nic;
	static struct pci_bus bus;
	static struct net_client sink = { .ops = &sink_ops };
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
	const struct guest_memory *mem = fuzz_guest_memory();
	struct cursor c = { data, size };
	uint64_t bar;

	if (pci_bus_init(&bus) < 0 || e1000_init(&nic, "fuzz", mac) < 0)
		return 0;
	net_connect(&nic.nc, &sink);
	if (e1000_attach(&nic, &bus, -1, mem, no_irq, NULL) < 0)
		goto out;
	nic.pci.config[PCI_COMMAND] = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	bar = nic.pci.bars[0].addr - PCI_MMIO_WINDOW_BASE;
	while (c.left) {
		uint8_t op = (uint8_t)take(&c, 1);
		uint32_t reg = (take(&c, 2) & 0x7fff) * 4, v;
		uint8_t frame[2048];
		size_t n;

		switch (op % 5) {
		case 0:		/* a register write, 1, 2 or 4 bytes */
			v = take(&c, 4);
			pci_mmio_io(&bus, bar + reg + (op >> 3 & 3), true, (uint8_t *)&v,
				    1u << (op >> 5 & 3) > 4 ? 4 : 1u << (op >> 5 & 3));
			break;
		case 1:		/* a register read */
			pci_mmio_io(&bus, bar + reg, false, (uint8_t *)&v, 4);
			break;
		case 2:		/* a ring base inside RAM (else most would miss it) */
			v = take(&c, 4) & (uint32_t)(FUZZ_RAM_SIZE - 1);
			pci_mmio_io(&bus, bar + (op & 8 ? 0x2800 : 0x3800), true, (uint8_t *)&v, 4);
			break;
		case 3:		/* 16 bytes into guest RAM: a descriptor or data */
			v = take(&c, 4) & (uint32_t)(FUZZ_RAM_SIZE - 16);
			for (unsigned i = 0; i < 16; i++)
				mem->host[v + i] = (uint8_t)take(&c, 1);
			break;
		case 4:		/* a frame from the wire */
			n = take(&c, 2) % sizeof(frame);
			n = n < c.left ? n : c.left;
			memcpy(frame, c.p, n);
			c.p += n;
			c.left -= n;
			struct iovec iov = { frame, n };
			nic.nc.ops->receive(&nic.nc, &iov, 1);
			break;
		}
	}
	e1000_detach(&nic);
out:
	e1000_release(&nic);
	pci_bus_destroy(&bus);
	return 0;
}
