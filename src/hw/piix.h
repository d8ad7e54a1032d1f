/*
 * The i440FX/PIIX3 chipset pieces firmware programs beyond plain PCI: the
 * host bridge's PAM and SMRAM registers, and the PIIX3 PCI-to-ISA bridge at
 * 00:01.0 (PIRQ routing registers).  PAM is accepted but not acted on: RAM
 * always backs 0xc0000-0xfffff and holds a copy of the BIOS (firmware.c), so
 * "shadowing" the BIOS is a no-op that SeaBIOS's make_bios_writable tolerates.
 */
#ifndef KESTREL_HW_PIIX_H
#define KESTREL_HW_PIIX_H

#include "hw/pci.h"

#define I440FX_PAM0 0x59	/* 0x59-0x5f: programmable attribute map */
#define I440FX_SMRAM 0x72
#define PIIX_SLOT 1		/* 00:01.0 ISA bridge, 00:01.1 IDE */

struct piix {
	struct pci_device isa;
};

/* Opens the host bridge's chipset registers and plugs the ISA bridge. */
int piix_init(struct piix *p, struct pci_bus *bus);

#endif
