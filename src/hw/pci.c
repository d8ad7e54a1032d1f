#include "hw/pci.h"

#include <string.h>

#include "core/vmstate.h"
#include "util/bytes.h"

#define CONFIG_ENABLE 0x80000000u
#define BAR_MEM_TYPE_64 0x4
#define BAR_IO_SPACE 0x1

void pci_device_init(struct pci_device *dev, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(dev, 0, sizeof(*dev));
	dev->name = name;
	st_le16(dev->config + PCI_VENDOR_ID, vendor);
	st_le16(dev->config + PCI_DEVICE_ID, device);
	dev->config[PCI_REVISION_ID] = revision;
	dev->config[PCI_CLASS_PROG] = class_code & 0xff;
	st_le16(dev->config + PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
	st_le16(dev->config + PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
	st_le16(dev->config + PCI_SUBSYSTEM_ID, subsys_id);
	/* The guest may switch decoding, bus mastering and INTx; and set the IRQ line. */
	st_le16(dev->wmask + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
					PCI_COMMAND_INTX_DISABLE);
	dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
	dev->next_cap = 0x40;
}

void pci_device_add_bar(struct pci_device *dev, unsigned index, uint64_t size, bool io,
			bus_access_fn access, void *opaque)
{
	dev->bars[index] = (struct pci_bar){
		.size = size, .io = io, .access = access, .opaque = opaque,
	};
	/* Sizing: software writes all ones and reads back ~(size - 1) (PCI 3.0 §6.2.5.1). */
	st_le32(dev->wmask + PCI_BAR0 + 4 * index, ~(uint32_t)(size - 1) & (io ? ~3u : ~0xfu));
	st_le32(dev->config + PCI_BAR0 + 4 * index, io ? BAR_IO_SPACE : 0);
}

static void rom_read(void *opaque, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	const struct pci_device *dev = opaque;

	if (is_write)
		return;		/* a ROM */
	for (unsigned i = 0; i < size; i++)
		data[i] = offset + i < dev->rom_len ? dev->rom[offset + i] : 0;
}

void pci_device_set_rom(struct pci_device *dev, const uint8_t *data, size_t len)
{
	uint64_t size = 2048;	/* the smallest ROM BAR */

	while (size < len)
		size <<= 1;
	dev->rom = data;
	dev->rom_len = len;
	dev->bars[PCI_ROM_BAR] = (struct pci_bar){ .size = size, .access = rom_read, .opaque = dev };
	st_le32(dev->wmask + PCI_ROM_ADDRESS, (~(uint32_t)(size - 1) & ~0x7ffu) | PCI_ROM_ENABLE);
	st_le32(dev->config + PCI_ROM_ADDRESS, 0);
}

uint8_t pci_device_add_cap(struct pci_device *dev, uint8_t id, const void *body, uint8_t len)
{
	uint8_t at = dev->next_cap;

	if (len < 2 || at + len > 0x100 || at == 0)
		return 0;
	memcpy(dev->config + at, body, len);
	dev->config[at] = id;
	/* Link it at the end of the list: capabilities keep the order they were added. */
	dev->config[at + 1] = 0;
	if (!dev->config[PCI_CAPABILITY_LIST]) {
		dev->config[PCI_CAPABILITY_LIST] = at;
	} else {
		uint8_t p = dev->config[PCI_CAPABILITY_LIST];
		while (dev->config[p + 1])
			p = dev->config[p + 1];
		dev->config[p + 1] = at;
	}
	st_le16(dev->config + PCI_STATUS, ld_le16(dev->config + PCI_STATUS) | PCI_STATUS_CAP_LIST);
	dev->next_cap = (uint8_t)((at + len + 3) & ~3);
	return at;
}

int pci_bus_init(struct pci_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	if (pthread_rwlock_init(&bus->lock, NULL) != 0)
		return -1;
	bus->next_mmio = PCI_MMIO_WINDOW_BASE;
	bus->next_io = PCI_IO_WINDOW_BASE;
	/* 00:00.0, the i440FX host bridge guests expect on a pc machine. */
	pci_device_init(&bus->host_bridge, "i440FX-pcihost", 0x8086, 0x1237, 0x060000, 0x02,
			0x1af4, 0x1100);
	return pci_bus_plug(bus, &bus->host_bridge, 0);
}

void pci_bus_destroy(struct pci_bus *bus)
{
	pthread_rwlock_destroy(&bus->lock);
}

static int assign_bars(struct pci_bus *bus, struct pci_device *dev)
{
	for (unsigned i = 0; i < PCI_BARS; i++) {
		struct pci_bar *bar = &dev->bars[i];
		uint32_t raw;
		if (!bar->size)
			continue;
		if (bar->io) {
			uint32_t at = (bus->next_io + (uint32_t)bar->size - 1) & ~((uint32_t)bar->size - 1);
			if (at + bar->size > PCI_IO_WINDOW_END)
				return -1;
			bus->next_io = at + (uint32_t)bar->size;
			bar->addr = at;
			raw = at | BAR_IO_SPACE;
		} else {
			uint64_t at = (bus->next_mmio + bar->size - 1) & ~(bar->size - 1);
			if (at + bar->size > PCI_MMIO_WINDOW_END)
				return -1;
			bus->next_mmio = at + bar->size;
			bar->addr = at;
			raw = (uint32_t)at;
		}
		st_le32(dev->config + PCI_BAR0 + 4 * i, raw);
	}
	/* Decoding on, as firmware leaves a device it has configured. */
	st_le16(dev->config + PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	return 0;
}

int pci_bus_plug(struct pci_bus *bus, struct pci_device *dev, int slot)
{
	if (slot < 0) {
		for (slot = 1; slot < PCI_SLOTS && bus->slots[slot]; slot++)
			;
	}
	if (slot >= PCI_SLOTS || bus->slots[slot])
		return -1;
	if (assign_bars(bus, dev) < 0)
		return -1;
	dev->slot = (unsigned)slot;
	bus->slots[slot] = dev;
	return 0;
}

int pci_bus_plug_function(struct pci_bus *bus, struct pci_device *dev, unsigned slot, unsigned fn)
{
	if (slot >= PCI_SLOTS || fn == 0 || fn > 7 || bus->functions[slot][fn - 1])
		return -1;
	if (assign_bars(bus, dev) < 0)
		return -1;
	dev->slot = slot;
	bus->functions[slot][fn - 1] = dev;
	return 0;
}

/* The device addressed by the 0xcf8 latch, or NULL (other buses and functions are empty). */
static struct pci_device *addressed(struct pci_bus *bus, unsigned *reg)
{
	uint32_t a = bus->address;
	unsigned busno = (a >> 16) & 0xff, slot = (a >> 11) & 0x1f, fn = (a >> 8) & 7;

	if (!(a & CONFIG_ENABLE) || busno != 0)
		return NULL;
	*reg = a & 0xfc;
	return fn ? bus->functions[slot][fn - 1] : bus->slots[slot];
}

void pci_config_address_io(void *opaque, uint64_t offset, bool is_write, uint8_t *data,
			   unsigned size)
{
	struct pci_bus *bus = opaque;

	/* Only whole-dword accesses at 0xcf8 are the address register (0xcf9 is reset control). */
	if (size != 4) {
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	pthread_rwlock_wrlock(&bus->lock);
	if (is_write)
		bus->address = ld_le32(data);
	else
		st_le32(data, bus->address);
	pthread_rwlock_unlock(&bus->lock);
}

/* A BAR register write: keep the size's alignment, track where the guest put it. */
static void bar_written(struct pci_device *dev, unsigned index)
{
	struct pci_bar *bar = &dev->bars[index];
	uint32_t raw = ld_le32(dev->config + PCI_BAR0 + 4 * index);

	if (!bar->size)
		return;
	if (index == PCI_ROM_BAR) {	/* decodes only while its enable bit is set */
		raw = ld_le32(dev->config + PCI_ROM_ADDRESS);
		bar->addr = (raw & PCI_ROM_ENABLE) ? (raw & ~0x7ffu) : 0;
		return;
	}
	bar->addr = bar->io ? (raw & ~3u) : (raw & ~0xfu);
}

void pci_config_data_io(void *opaque, uint64_t offset, bool is_write, uint8_t *data,
			unsigned size)
{
	struct pci_bus *bus = opaque;
	struct pci_device *dev;
	unsigned reg = 0;

	pthread_rwlock_wrlock(&bus->lock);
	dev = addressed(bus, &reg);
	reg += (unsigned)offset;
	if (!dev || reg + size > 256) {
		if (!is_write)
			memset(data, 0xff, size);	/* no device: all ones (master abort) */
		goto out;
	}
	if (!is_write) {
		if (dev->config_read)
			dev->config_read(dev, reg, size);
		memcpy(data, dev->config + reg, size);
		goto out;
	}
	for (unsigned i = 0; i < size; i++) {
		uint8_t m = dev->wmask[reg + i];
		dev->config[reg + i] = (uint8_t)((dev->config[reg + i] & ~m) | (data[i] & m));
	}
	for (unsigned i = 0; i < PCI_BARS; i++)
		if (reg < PCI_BAR0 + 4 * i + 4 && reg + size > PCI_BAR0 + 4 * i)
			bar_written(dev, i);
	if (reg < PCI_ROM_ADDRESS + 4 && reg + size > PCI_ROM_ADDRESS)
		bar_written(dev, PCI_ROM_BAR);
	if (dev->config_written)
		dev->config_written(dev, reg, size);
out:
	pthread_rwlock_unlock(&bus->lock);
}

/* Finds the BAR of the kind (memory or I/O) that decodes addr; caller holds the lock. */
static struct pci_bar *decode(struct pci_bus *bus, uint64_t addr, bool io, uint64_t *offset)
{
	for (unsigned s = 0; s < PCI_SLOTS * 8; s++) {
		struct pci_device *dev = s < PCI_SLOTS ? bus->slots[s]
						       : bus->functions[s % PCI_SLOTS][s / PCI_SLOTS - 1];
		if (!dev)
			continue;
		uint16_t cmd = ld_le16(dev->config + PCI_COMMAND);
		if (!(cmd & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)))
			continue;
		for (unsigned i = 0; i <= PCI_ROM_BAR; i++) {
			struct pci_bar *bar = &dev->bars[i];
			if (bar->size && bar->io == io && bar->addr && addr >= bar->addr &&
			    addr - bar->addr < bar->size) {
				*offset = addr - bar->addr;
				return bar;
			}
		}
	}
	return NULL;
}

static void bar_access(struct pci_bus *bus, uint64_t addr, bool io, bool is_write, uint8_t *data,
		       unsigned size)
{
	struct pci_bar *bar;
	uint64_t offset = 0;

	pthread_rwlock_rdlock(&bus->lock);
	bar = decode(bus, addr, io, &offset);
	pthread_rwlock_unlock(&bus->lock);
	/*
	 * Devices stay plugged for the VM's life, so the handler is safe to call
	 * without the bus lock; a BAR moved meanwhile just sees the old mapping once.
	 */
	if (bar)
		bar->access(bar->opaque, offset, is_write, data, size);
	else if (!is_write)
		memset(data, 0xff, size);
}

void pci_mmio_io(void *opaque, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	bar_access(opaque, PCI_MMIO_WINDOW_BASE + offset, false, is_write, data, size);
}

void pci_pio_io(void *opaque, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	bar_access(opaque, PCI_IO_WINDOW_BASE + offset, true, is_write, data, size);
}

uint64_t pci_bar_address(struct pci_bus *bus, struct pci_device *dev, unsigned index)
{
	uint64_t addr = 0;

	pthread_rwlock_rdlock(&bus->lock);
	if (ld_le16(dev->config + PCI_COMMAND) & PCI_COMMAND_MEMORY)
		addr = dev->bars[index].addr;
	pthread_rwlock_unlock(&bus->lock);
	return addr;
}

struct pci_saved {
	uint8_t config[256];
};

static const struct vmstate_field pci_fields[] = {
	VMS_ARRAY(struct pci_saved, config, VMS_BYTES, 256),
	VMS_END
};

static const struct vmstate_desc pci_vmstate = {
	"pci-config", sizeof(struct pci_saved), 1, 1, pci_fields, NULL,
};

int pci_device_save(struct pci_bus *bus, struct pci_device *dev, unsigned devfn,
		    struct vmstate_out *out)
{
	struct pci_saved st;

	pthread_rwlock_rdlock(&bus->lock);
	memcpy(st.config, dev->config, sizeof(st.config));
	pthread_rwlock_unlock(&bus->lock);
	return vmstate_save(out, &pci_vmstate, devfn, &st);
}

/* The bytes that say which device this is (PCI Local Bus 3.0, 6.2.1). */
static bool same_identity(const uint8_t *a, const uint8_t *b)
{
	return !memcmp(a + PCI_VENDOR_ID, b + PCI_VENDOR_ID, 4) &&
	       !memcmp(a + PCI_REVISION_ID, b + PCI_REVISION_ID, 4) &&
	       a[PCI_HEADER_TYPE] == b[PCI_HEADER_TYPE] &&
	       !memcmp(a + PCI_SUBSYSTEM_VENDOR_ID, b + PCI_SUBSYSTEM_VENDOR_ID, 4);
}

int pci_device_load(struct pci_bus *bus, struct pci_device *dev, struct vmstate_in *in)
{
	struct pci_saved st;

	memset(&st, 0, sizeof(st));
	if (vmstate_load(in, &pci_vmstate, &st) < 0)
		return -1;
	if (!same_identity(st.config, dev->config))
		return vmstate_refuse(in, "device %04x:%04x class %06x in the stream, %04x:%04x "
				      "class %06x here", ld_le16(st.config + PCI_VENDOR_ID),
				      ld_le16(st.config + PCI_DEVICE_ID),
				      ld_le32(st.config + PCI_REVISION_ID) >> 8,
				      ld_le16(dev->config + PCI_VENDOR_ID),
				      ld_le16(dev->config + PCI_DEVICE_ID),
				      ld_le32(dev->config + PCI_REVISION_ID) >> 8);
	pthread_rwlock_wrlock(&bus->lock);
	memcpy(dev->config, st.config, sizeof(st.config));
	for (unsigned i = 0; i < PCI_BARS; i++)
		bar_written(dev, i);
	bar_written(dev, PCI_ROM_BAR);
	if (dev->config_written)
		dev->config_written(dev, 0, 256);
	pthread_rwlock_unlock(&bus->lock);
	return 0;
}
