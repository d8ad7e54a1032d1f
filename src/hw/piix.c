#include "hw/piix.h"

#include <string.h>

/* PIIX3 datasheet §2.2: PIRQ route control registers, all disabled (0x80) at reset. */
#define PIIX_PIRQC 0x60
#define PCI_HEADER_MULTIFUNCTION 0x80

int piix_init(struct piix *p, struct pci_bus *bus)
{
	struct pci_device *hb = &bus->host_bridge;

	/* 82441FX datasheet §3.2.18-19: seven PAM bytes and SMRAM, read/write. */
	memset(hb->wmask + I440FX_PAM0, 0xff, 7);
	hb->wmask[I440FX_SMRAM] = 0x78;
	hb->config[I440FX_SMRAM] = 0x02;	/* C_BASE_SEG: SMRAM at 0xa0000 */

	memset(&p->isa, 0, sizeof(p->isa));
	pci_device_init(&p->isa, "PIIX3", 0x8086, 0x7000, 0x060100, 0x00, 0x1af4, 0x1100);
	p->isa.config[PCI_HEADER_TYPE] = PCI_HEADER_MULTIFUNCTION;
	memset(p->isa.config + PIIX_PIRQC, 0x80, 4);
	memset(p->isa.wmask + PIIX_PIRQC, 0x8f, 4);
	return pci_bus_plug(bus, &p->isa, PIIX_SLOT);
}
