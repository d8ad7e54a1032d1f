/*
 * Bochs VBE "dispi" registers (Bochs iodev/vga.h; QEMU vga.c vbe_*), and the
 * VGA as a PCI function (QEMU vga-pci.c "VGA" and bochs-display.c).
 */
#include <string.h>

#include "hw/vga.h"

#define VGA_PCI_VENDOR 0x1234
#define VGA_PCI_DEVICE 0x1111
#define BAR_PREFETCH 0x08

static uint16_t ld_le16_cfg(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

bool vga_vbe_enabled(const struct vga *v)
{
	return v->vbe_regs[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED;
}

static unsigned vbe_bits(unsigned bpp)
{
	return bpp == 15 ? 16 : bpp;
}

/*
 * Clamps the mode to what VRAM holds, so no later register value can make the
 * renderer or the bank read past its end (QEMU vbe_fixup_regs).
 */
static void vbe_fixup(struct vga *v)
{
	uint16_t *r = v->vbe_regs;
	uint32_t bits, linelength, maxy, offset;

	switch (r[VBE_DISPI_INDEX_BPP]) {
	case 4: case 8: case 15: case 16: case 24: case 32:
		break;
	default:
		r[VBE_DISPI_INDEX_BPP] = 8;
	}
	bits = vbe_bits(r[VBE_DISPI_INDEX_BPP]);
	r[VBE_DISPI_INDEX_XRES] &= ~7u;
	if (r[VBE_DISPI_INDEX_XRES] == 0)
		r[VBE_DISPI_INDEX_XRES] = 8;
	if (r[VBE_DISPI_INDEX_XRES] > VBE_DISPI_MAX_XRES)
		r[VBE_DISPI_INDEX_XRES] = VBE_DISPI_MAX_XRES;
	r[VBE_DISPI_INDEX_VIRT_WIDTH] &= ~7u;
	if (r[VBE_DISPI_INDEX_VIRT_WIDTH] > VBE_DISPI_MAX_XRES)
		r[VBE_DISPI_INDEX_VIRT_WIDTH] = VBE_DISPI_MAX_XRES;
	if (r[VBE_DISPI_INDEX_VIRT_WIDTH] < r[VBE_DISPI_INDEX_XRES])
		r[VBE_DISPI_INDEX_VIRT_WIDTH] = r[VBE_DISPI_INDEX_XRES];

	linelength = r[VBE_DISPI_INDEX_VIRT_WIDTH] * bits / 8;
	maxy = v->vram_size / linelength;
	if (r[VBE_DISPI_INDEX_YRES] == 0)
		r[VBE_DISPI_INDEX_YRES] = 1;
	if (r[VBE_DISPI_INDEX_YRES] > VBE_DISPI_MAX_YRES)
		r[VBE_DISPI_INDEX_YRES] = VBE_DISPI_MAX_YRES;
	if (r[VBE_DISPI_INDEX_YRES] > maxy)
		r[VBE_DISPI_INDEX_YRES] = (uint16_t)maxy;

	if (r[VBE_DISPI_INDEX_X_OFFSET] > VBE_DISPI_MAX_XRES)
		r[VBE_DISPI_INDEX_X_OFFSET] = VBE_DISPI_MAX_XRES;
	if (r[VBE_DISPI_INDEX_Y_OFFSET] > VBE_DISPI_MAX_YRES)
		r[VBE_DISPI_INDEX_Y_OFFSET] = VBE_DISPI_MAX_YRES;
	offset = r[VBE_DISPI_INDEX_X_OFFSET] * bits / 8 + r[VBE_DISPI_INDEX_Y_OFFSET] * linelength;
	if ((uint64_t)offset + (uint64_t)r[VBE_DISPI_INDEX_YRES] * linelength > v->vram_size) {
		r[VBE_DISPI_INDEX_Y_OFFSET] = 0;
		offset = r[VBE_DISPI_INDEX_X_OFFSET] * bits / 8;
		if ((uint64_t)offset + (uint64_t)r[VBE_DISPI_INDEX_YRES] * linelength >
		    v->vram_size) {
			r[VBE_DISPI_INDEX_X_OFFSET] = 0;
			offset = 0;
		}
	}
	r[VBE_DISPI_INDEX_VIRT_HEIGHT] = (uint16_t)(maxy > 0xffff ? 0xffff : maxy);
	v->vbe_line_offset = linelength;
	v->vbe_start_addr = offset & ~3u;
	v->full_update = true;
}

/* What the VGA registers say in a VBE mode, for guests that read them (QEMU vbe_update_vgaregs). */
static void vbe_update_vgaregs(struct vga *v)
{
	unsigned h = v->vbe_regs[VBE_DISPI_INDEX_YRES] - 1u;

	v->gr[6] = (uint8_t)((v->gr[6] & ~0x0c) | 0x05);	/* graphics, 64K at 0xa0000 */
	v->cr[0x17] |= 3;
	v->cr[0x13] = (uint8_t)(v->vbe_line_offset >> 3);
	v->cr[0x01] = (uint8_t)((v->vbe_regs[VBE_DISPI_INDEX_XRES] >> 3) - 1);
	v->cr[0x12] = (uint8_t)h;
	v->cr[0x07] = (uint8_t)((v->cr[0x07] & ~0x42) | ((h >> 7) & 0x02) | ((h >> 3) & 0x40));
	v->cr[0x18] = 0xff;
	v->cr[0x07] |= 0x10;
	v->cr[0x09] |= 0x40;
	v->cr[0x09] &= ~0x9f;
	v->gr[5] = (uint8_t)((v->gr[5] & ~0x60) |
			     (v->vbe_regs[VBE_DISPI_INDEX_BPP] == 4 ? 0 : 0x40));
}

uint16_t vga_vbe_read(struct vga *v, unsigned index)
{
	if (index >= VBE_DISPI_INDEX_NB)
		return 0;
	if (v->vbe_regs[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_GETCAPS) {
		switch (index) {
		case VBE_DISPI_INDEX_XRES: return VBE_DISPI_MAX_XRES;
		case VBE_DISPI_INDEX_YRES: return VBE_DISPI_MAX_YRES;
		case VBE_DISPI_INDEX_BPP: return VBE_DISPI_MAX_BPP;
		}
	}
	return v->vbe_regs[index];
}

static void vbe_enable(struct vga *v, uint16_t val)
{
	uint16_t *r = v->vbe_regs;

	if ((val & VBE_DISPI_ENABLED) && !(r[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_ENABLED)) {
		r[VBE_DISPI_INDEX_VIRT_WIDTH] = 0;
		r[VBE_DISPI_INDEX_X_OFFSET] = 0;
		r[VBE_DISPI_INDEX_Y_OFFSET] = 0;
		r[VBE_DISPI_INDEX_ENABLE] |= VBE_DISPI_ENABLED;
		vbe_fixup(v);
		vbe_update_vgaregs(v);
		if (!(val & VBE_DISPI_NOCLEARMEM)) {
			uint64_t len = (uint64_t)r[VBE_DISPI_INDEX_YRES] * v->vbe_line_offset;
			memset(v->vram, 0, len);	/* fixup keeps it inside VRAM */
			vga_mark_dirty(v, 0, len);
		}
	} else {
		v->bank_offset = 0;
	}
	r[VBE_DISPI_INDEX_ENABLE] = val;
	v->palette_dirty = true;	/* the DAC width may have changed */
	v->full_update = true;
}

void vga_vbe_write(struct vga *v, unsigned index, uint16_t val)
{
	uint16_t *r = v->vbe_regs;

	switch (index) {
	case VBE_DISPI_INDEX_ID:
		if (val >= VBE_DISPI_ID0 && val <= VBE_DISPI_ID5)
			r[index] = val;
		break;
	case VBE_DISPI_INDEX_XRES: case VBE_DISPI_INDEX_YRES: case VBE_DISPI_INDEX_BPP:
	case VBE_DISPI_INDEX_VIRT_WIDTH: case VBE_DISPI_INDEX_X_OFFSET:
	case VBE_DISPI_INDEX_Y_OFFSET:
		r[index] = val;
		vbe_fixup(v);
		break;
	case VBE_DISPI_INDEX_BANK:
		/* A bank past VRAM wraps (QEMU vbe_bank_mask), never reaching beyond it. */
		val &= (uint16_t)((v->vram_size >> 16) - 1);
		r[index] = val;
		v->bank_offset = (uint32_t)val << 16;
		break;
	case VBE_DISPI_INDEX_ENABLE:
		vbe_enable(v, val);
		break;
	}
}

void vga_vbe_pio(void *opaque, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct vga *v = opaque;
	uint16_t val = size >= 2 ? (uint16_t)(data[0] | data[1] << 8) : data[0];

	pthread_mutex_lock(&v->lock);
	if (offset == 0) {
		if (is_write)
			v->vbe_index = val;
		else
			val = v->vbe_index;
	} else if (is_write) {
		vga_vbe_write(v, v->vbe_index, val);
	} else {
		val = vga_vbe_read(v, v->vbe_index);
	}
	pthread_mutex_unlock(&v->lock);
	if (is_write)
		return;
	memset(data, 0, size);
	data[0] = (uint8_t)val;
	if (size >= 2)
		data[1] = (uint8_t)(val >> 8);
}

/*
 * Config space as QEMU 7.2 shows it: "VGA" is a VGA-compatible controller
 * (class 0x0300, rev 2), "bochs-display" an other display controller (class
 * 0x0380); both Red Hat subsystem 1af4:1100.  BAR0 prefetchable VRAM, BAR2 the
 * 4 KiB register page, and the VGA BIOS as the expansion ROM, which SeaBIOS
 * runs from the ROM BAR as it does on QEMU.
 */
void vga_pci_init(struct vga *v, const uint8_t *rom, size_t rom_len)
{
	bool std = v->model == VGA_MODEL_STD;

	pci_device_init(&v->pci, std ? "VGA" : "bochs-display", VGA_PCI_VENDOR, VGA_PCI_DEVICE,
			std ? 0x030000 : 0x038000, 0x02, 0x1af4, 0x1100);
	pci_device_add_bar(&v->pci, 0, v->vram_size, false, vga_lfb_mem, v);
	pci_device_add_bar(&v->pci, 2, VGA_MMIO_SIZE, false, vga_mmio, v);
	v->pci.opaque = v;
	if (rom && rom_len) {
		v->rom = rom;
		v->rom_len = rom_len;
		pci_device_set_rom(&v->pci, rom, rom_len);
	}
}

/* BAR0 moved or decoding switched: the VMM moves the KVM slot with it. */
static void vga_config_written(struct pci_device *dev, unsigned offset, unsigned size)
{
	struct vga *v = dev->opaque;
	uint64_t gpa = 0;

	if (!v->lfb_map)
		return;
	if (!(offset < PCI_BAR0 + 4 && offset + size > PCI_BAR0) &&
	    !(offset < PCI_COMMAND + 2 && offset + size > PCI_COMMAND))
		return;
	if (ld_le16_cfg(dev->config + PCI_COMMAND) & PCI_COMMAND_MEMORY)
		gpa = dev->bars[0].addr;
	if (gpa == v->lfb_gpa)
		return;
	/* A BAR being sized (all ones) overlaps the BIOS: left to exits until it settles. */
	v->lfb_gpa = v->lfb_map(v->lfb_opaque, gpa) == 0 ? gpa : 0;
}

int vga_plug(struct vga *v, struct pci_bus *bus, int slot)
{
	if (pci_bus_plug(bus, &v->pci, slot) < 0)
		return -1;
	/* The BAR's low bits are read-only: keep "prefetchable" over the assigned address. */
	v->pci.config[PCI_BAR0] |= BAR_PREFETCH;
	v->pci.config_written = vga_config_written;
	vga_config_written(&v->pci, PCI_BAR0, 4);
	return 0;
}
