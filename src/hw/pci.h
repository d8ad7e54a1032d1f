/*
 * PCI bus 0 behind a host bridge, configuration mechanism #1 (ports
 * 0xcf8/0xcfc, PCI Local Bus 3.0 §3.2.2.3.2).  Devices own 256 bytes of
 * config space with a write mask; BARs are assigned by the VMM at creation
 * (as firmware would) and follow the guest when it moves them.
 */
#ifndef KESTREL_HW_PCI_H
#define KESTREL_HW_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw/bus.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_SLOTS 32
#define PCI_BARS 6
#define PCI_ROM_BAR PCI_BARS	/* bars[PCI_ROM_BAR]: the expansion ROM (config 0x30) */
#define PCI_ROM_ADDRESS 0x30
#define PCI_ROM_ENABLE 0x1

/* Where BARs go: the top of the 32-bit PCI hole, clear of RAM of any size. */
#define PCI_MMIO_WINDOW_BASE 0xe0000000ULL
#define PCI_MMIO_WINDOW_END 0xfec00000ULL
#define PCI_IO_WINDOW_BASE 0xc000
#define PCI_IO_WINDOW_END 0x10000

/* Config space offsets (PCI 3.0 §6.1). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CLASS_DEVICE 0x0a
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10

#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

struct pci_device;

struct pci_bar {
	uint64_t size;		/* 0: unused; a power of two otherwise */
	bool io;
	uint64_t addr;		/* as the guest last programmed it */
	bus_access_fn access;	/* offset is relative to the BAR's start */
	void *opaque;
};

struct pci_device {
	const char *name;
	unsigned slot;
	uint8_t config[256];
	uint8_t wmask[256];	/* bits the guest may change */
	struct pci_bar bars[PCI_BARS + 1];	/* and the ROM */
	const uint8_t *rom;		/* expansion ROM contents (not owned) */
	size_t rom_len;
	uint8_t next_cap;	/* where the next capability goes */
	/* Called after the guest wrote config space (MSI-X enable, BAR moves). */
	void (*config_written)(struct pci_device *dev, unsigned offset, unsigned size);
	/* Called before a guest read, for registers whose value is made on demand. */
	void (*config_read)(struct pci_device *dev, unsigned offset, unsigned size);
	void *opaque;
};

struct pci_bus {
	pthread_rwlock_t lock;	/* writers: config space; readers: BAR dispatch */
	uint32_t address;	/* the 0xcf8 latch */
	struct pci_device *slots[PCI_SLOTS];
	struct pci_device *functions[PCI_SLOTS][7];	/* functions 1-7 of multifunction slots */
	struct pci_device host_bridge;
	uint64_t next_mmio;
	uint32_t next_io;
};

int pci_bus_init(struct pci_bus *bus);
void pci_bus_destroy(struct pci_bus *bus);

/* Port and MMIO access for the buses (register with bus_register). */
void pci_config_address_io(void *bus, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void pci_config_data_io(void *bus, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void pci_mmio_io(void *bus, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void pci_pio_io(void *bus, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

/* Fills the type-0 header; the caller adds BARs and capabilities, then plugs it. */
void pci_device_init(struct pci_device *dev, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id);
void pci_device_add_bar(struct pci_device *dev, unsigned index, uint64_t size, bool io,
			bus_access_fn access, void *opaque);
/*
 * Gives dev an expansion ROM (option ROM: PXE, firmware drivers) of len
 * bytes, which the guest maps through config register 0x30 and reads; the
 * data must outlive the device.
 */
void pci_device_set_rom(struct pci_device *dev, const uint8_t *data, size_t len);
/* Appends a capability of len bytes; returns its config-space offset, 0 if full. */
uint8_t pci_device_add_cap(struct pci_device *dev, uint8_t id, const void *body, uint8_t len);

/* Plugs dev into slot (-1: the first free one) and assigns its BARs; -1 if impossible. */
int pci_bus_plug(struct pci_bus *bus, struct pci_device *dev, int slot);

/* Plugs dev as function fn (1-7) of a slot whose function 0 says it is multifunction. */
int pci_bus_plug_function(struct pci_bus *bus, struct pci_device *dev, unsigned slot, unsigned fn);

/* Current address of a memory BAR, 0 while memory decoding is off or unassigned. */
uint64_t pci_bar_address(struct pci_bus *bus, struct pci_device *dev, unsigned index);

/*
 * Saved state (core/vmstate.h): the function's config space, section
 * "pci-config" with instance devfn.  A load refuses a stream whose identity
 * (vendor, device, class, revision, subsystem, header type) differs from the
 * device here, then moves the BARs where the guest had them and tells the
 * device (config_written over the whole space) as a guest write would.
 */
struct vmstate_out;
struct vmstate_in;
int pci_device_save(struct pci_bus *bus, struct pci_device *dev, unsigned devfn,
		    struct vmstate_out *out);
int pci_device_load(struct pci_bus *bus, struct pci_device *dev, struct vmstate_in *in);

#endif
