/*
 * VGA registers and the legacy memory window (IBM VGA Technical Reference;
 * QEMU hw/display/vga.c is the behaviour matched, register by register).
 *
 * VRAM keeps QEMU's layout, so the renderer and the VGA BIOS agree with it:
 * planar address A holds its four planes in VRAM bytes 4A..4A+3 (the 32-bit
 * latch), chain-4 addresses VRAM bytes directly, and odd/even puts plane
 * (A & 1) | (read map & 2) at 4 * (A >> 1) + plane.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "hw/vga.h"

/* Registers' writable bits (QEMU sr_mask/gr_mask). */
static const uint8_t sr_mask[8] = { 0x03, 0x3d, 0x0f, 0x3f, 0x0e, 0x00, 0x00, 0xff };
static const uint8_t gr_mask[16] = { 0x0f, 0x0f, 0x0f, 0x1f, 0x03, 0x7b, 0x0f, 0x0f, 0xff };

#define MSR_COLOR 0x01
#define ST01_V_RETRACE 0x08
#define ST01_DISP_ENABLE 0x01
#define SR04_CHAIN4 0x08
#define CR11_LOCK_CR0_CR7 0x80
#define AR_PAS 0x20		/* attribute index bit 5: the palette is not being loaded */

/* A 4-bit plane mask spread into one byte per plane of a 32-bit latch. */
static uint32_t mask16(unsigned m)
{
	return (m & 1 ? 0xffu : 0) | (m & 2 ? 0xff00u : 0) | (m & 4 ? 0xff0000u : 0) |
	       (m & 8 ? 0xff000000u : 0);
}

void vga_mark_dirty(struct vga *v, uint64_t off, uint64_t len)
{
	uint64_t first, last;

	if (!len || off >= v->vram_size)
		return;
	if (len > v->vram_size - off)
		len = v->vram_size - off;
	first = off >> VGA_PAGE_SHIFT;
	last = (off + len - 1) >> VGA_PAGE_SHIFT;
	for (uint64_t p = first; p <= last; p++)
		v->dirty[p / 64] |= 1ULL << (p % 64);
}

/* ---- ports 0x3b0-0x3df ------------------------------------------------------ */

/* Mono ports answer only in mono mode, colour ports only in colour mode (MSR bit 0). */
static bool port_invalid(const struct vga *v, unsigned port)
{
	if (v->msr & MSR_COLOR)
		return (port & 0x3f0) == 0x3b0;
	return (port & 0x3f0) == 0x3d0;
}

static uint8_t port_read(struct vga *v, unsigned port)
{
	uint8_t val;

	if (port_invalid(v, port))
		return 0xff;
	switch (port) {
	case 0x3c0:
		return v->ar_flip_flop ? 0 : v->ar_index;
	case 0x3c1:
		return (v->ar_index & 0x1f) < sizeof(v->ar) ? v->ar[v->ar_index & 0x1f] : 0;
	case 0x3c2:
		return v->st00;
	case 0x3c4:
		return v->sr_index;
	case 0x3c5:
		return v->sr[v->sr_index];
	case 0x3c6:
		return v->dac_mask;
	case 0x3c7:
		return v->dac_state;
	case 0x3c8:
		return v->dac_write_index;
	case 0x3c9:
		val = v->palette[v->dac_read_index * 3 + v->dac_sub_index];
		if (++v->dac_sub_index == 3) {
			v->dac_sub_index = 0;
			v->dac_read_index++;
		}
		return val;
	case 0x3ca:
		return v->fcr;
	case 0x3cc:
		return v->msr;
	case 0x3ce:
		return v->gr_index;
	case 0x3cf:
		return v->gr[v->gr_index];
	case 0x3b4: case 0x3d4:
		return v->cr_index;
	case 0x3b5: case 0x3d5:
		return v->cr[v->cr_index];
	case 0x3ba: case 0x3da:
		/* Each read flips retrace and display-enable, which is all the
		 * polling loops of BIOSes and DOS programs want (QEMU does the same). */
		v->st01 ^= ST01_V_RETRACE | ST01_DISP_ENABLE;
		v->ar_flip_flop = false;
		return v->st01;
	default:
		return 0xff;
	}
}

static void ar_write(struct vga *v, uint8_t val)
{
	unsigned index;

	/* The renderer compares what it draws with (palette, mode), so no redraw flag here. */
	if (!v->ar_flip_flop) {
		v->ar_index = val & 0x3f;
		v->ar_flip_flop = true;
		return;
	}
	v->ar_flip_flop = false;
	index = v->ar_index & 0x1f;
	switch (index) {
	case 0x00 ... 0x0f: v->ar[index] = val & 0x3f; break;
	case 0x10: v->ar[index] = val & ~0x10; break;
	case 0x11: v->ar[index] = val; break;
	case 0x12: v->ar[index] = val & ~0xc0; break;
	case 0x13: v->ar[index] = val & ~0xf0; break;
	case 0x14: v->ar[index] = val & ~0xf0; break;
	}
}

static void dac_write(struct vga *v, uint8_t val)
{
	v->dac_cache[v->dac_sub_index] = val;
	if (++v->dac_sub_index < 3)
		return;
	memcpy(&v->palette[v->dac_write_index * 3], v->dac_cache, 3);
	v->dac_sub_index = 0;
	v->dac_write_index++;
	v->palette_dirty = true;
}

static void cr_write(struct vga *v, uint8_t val)
{
	/* CR11 bit 7 write-protects CR0-CR7, except CR7's line compare bit 8. */
	if ((v->cr[0x11] & CR11_LOCK_CR0_CR7) && v->cr_index <= 7) {
		if (v->cr_index == 7)
			v->cr[7] = (uint8_t)((v->cr[7] & ~0x10) | (val & 0x10));
		return;
	}
	v->cr[v->cr_index] = val;
}

static void port_write(struct vga *v, unsigned port, uint8_t val)
{
	if (port_invalid(v, port))
		return;
	switch (port) {
	case 0x3c0: case 0x3c1:
		ar_write(v, val);
		break;
	case 0x3c2:
		v->msr = val & ~0x10;
		break;
	case 0x3c4:
		v->sr_index = val & 7;
		break;
	case 0x3c5:
		v->sr[v->sr_index] = val & sr_mask[v->sr_index];
		break;
	case 0x3c6:
		v->dac_mask = val;
		v->palette_dirty = true;
		break;
	case 0x3c7:
		v->dac_read_index = val;
		v->dac_sub_index = 0;
		v->dac_state = 3;
		break;
	case 0x3c8:
		v->dac_write_index = val;
		v->dac_sub_index = 0;
		v->dac_state = 0;
		break;
	case 0x3c9:
		dac_write(v, val);
		break;
	case 0x3ce:
		v->gr_index = val & 0x0f;
		break;
	case 0x3cf:
		v->gr[v->gr_index] = val & gr_mask[v->gr_index];
		break;
	case 0x3b4: case 0x3d4:
		v->cr_index = val;
		break;
	case 0x3b5: case 0x3d5:
		cr_write(v, val);
		break;
	case 0x3ba: case 0x3da:
		v->fcr = val & 0x10;
		break;
	}
}

/* A word access writes index then data, as "out dx, ax" on 0x3c4/0x3ce/0x3d4. */
void vga_pio(void *opaque, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct vga *v = opaque;

	pthread_mutex_lock(&v->lock);
	for (unsigned i = 0; i < size; i++) {
		unsigned port = VGA_PIO_BASE + (unsigned)offset + i;
		if (port >= VGA_PIO_BASE + VGA_PIO_LEN) {
			if (!is_write)
				data[i] = 0xff;
		} else if (is_write) {
			port_write(v, port, data[i]);
		} else {
			data[i] = port_read(v, port);
		}
	}
	pthread_mutex_unlock(&v->lock);
}

/* ---- the legacy window 0xa0000-0xbffff -------------------------------------- */

static uint8_t effective_sr4(const struct vga *v)
{
	/* With VBE on, the window is a chain-4 view through the bank (QEMU sr_vbe). */
	return vga_vbe_enabled(v) ? (uint8_t)(v->sr[4] | SR04_CHAIN4) : v->sr[4];
}

/* The map mask; with VBE on every plane is written (QEMU sr_vbe). */
static uint8_t effective_sr2(const struct vga *v)
{
	return vga_vbe_enabled(v) ? 0x0f : v->sr[2];
}

/*
 * Window offset to VGA address by the GC's memory map select (GR6 bits 2-3):
 * 0: 128K at 0xa0000, 1: 64K at 0xa0000 (+ the VBE bank), 2: 32K at 0xb0000,
 * 3: 32K at 0xb8000.  Returns false where the window is not decoded.
 */
static bool map_addr(const struct vga *v, uint64_t off, uint64_t *addr)
{
	switch ((v->gr[6] >> 2) & 3) {
	case 0:
		*addr = off;
		return true;
	case 1:
		if (off >= 0x10000)
			return false;
		*addr = off + v->bank_offset;
		return true;
	case 2:
		*addr = off - 0x10000;
		return off >= 0x10000 && off < 0x18000;
	default:
		*addr = off - 0x18000;
		return off >= 0x18000;
	}
}

static uint8_t mem_readb(struct vga *v, uint64_t off)
{
	uint64_t addr;
	unsigned plane;
	uint32_t r;

	if (!map_addr(v, off, &addr))
		return 0xff;
	if (effective_sr4(v) & SR04_CHAIN4)
		return addr < v->vram_size ? v->vram[addr] : 0xff;
	if (v->gr[5] & 0x10) {		/* odd/even (text mode mapping) */
		plane = (v->gr[4] & 2) | (addr & 1);
		addr = ((addr & ~1ULL) << 1) | plane;
		return addr < v->vram_size ? v->vram[addr] : 0xff;
	}
	if (addr * 4 >= v->vram_size)
		return 0xff;
	memcpy(&v->latch, &v->vram[addr * 4], 4);
	if (!(v->gr[5] & 0x08))		/* read mode 0: the read map's plane */
		return (uint8_t)(v->latch >> ((v->gr[4] & 3) * 8));
	/* Read mode 1: a bit is 1 where every enabled plane equals the colour compare. */
	r = (v->latch ^ mask16(v->gr[2])) & mask16(v->gr[7]);
	r |= r >> 16;
	r |= r >> 8;
	return (uint8_t)~r;
}

/* Write modes 0-3, rotate, set/reset, logical op and bit mask (VGA ref., GC regs 0-8). */
static uint32_t planar_value(struct vga *v, uint8_t val)
{
	unsigned b = v->gr[3] & 7;
	uint32_t x, bit_mask;

	switch (v->gr[5] & 3) {
	case 0:
		val = (uint8_t)((val >> b) | (val << (8 - b)));
		x = val * 0x01010101u;
		x = (x & ~mask16(v->gr[1])) | (mask16(v->gr[1]) & mask16(v->gr[0]));
		bit_mask = v->gr[8];
		break;
	case 1:
		return v->latch;
	case 2:
		x = mask16(val & 0x0f);
		bit_mask = v->gr[8];
		break;
	default:
		val = (uint8_t)((val >> b) | (val << (8 - b)));
		bit_mask = v->gr[8] & val;
		x = mask16(v->gr[0]);
		break;
	}
	switch (v->gr[3] >> 3) {
	case 1: x &= v->latch; break;
	case 2: x |= v->latch; break;
	case 3: x ^= v->latch; break;
	}
	bit_mask *= 0x01010101u;
	return (x & bit_mask) | (v->latch & ~bit_mask);
}

static void mem_writeb(struct vga *v, uint64_t off, uint8_t val)
{
	uint64_t addr;
	unsigned plane;
	uint32_t x, wm, old;

	if (!map_addr(v, off, &addr))
		return;
	if (effective_sr4(v) & SR04_CHAIN4) {
		plane = addr & 3;
		if ((effective_sr2(v) & (1u << plane)) && addr < v->vram_size) {
			v->plane2_written |= plane == 2;
			v->vram[addr] = val;
			vga_mark_dirty(v, addr, 1);
		}
		return;
	}
	if (v->gr[5] & 0x10) {
		plane = (v->gr[4] & 2) | (addr & 1);
		addr = ((addr & ~1ULL) << 1) | plane;
		if ((v->sr[2] & (1u << plane)) && addr < v->vram_size) {
			v->plane2_written |= plane == 2;
			v->vram[addr] = val;
			vga_mark_dirty(v, addr, 1);
		}
		return;
	}
	if (addr * 4 >= v->vram_size)
		return;
	x = planar_value(v, val);
	wm = mask16(v->sr[2]);
	v->plane2_written |= (v->sr[2] & 4) != 0;
	memcpy(&old, &v->vram[addr * 4], 4);
	old = (old & ~wm) | (x & wm);
	memcpy(&v->vram[addr * 4], &old, 4);
	vga_mark_dirty(v, addr * 4, 4);
}

void vga_legacy_mem(void *opaque, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct vga *v = opaque;

	pthread_mutex_lock(&v->lock);
	for (unsigned i = 0; i < size; i++) {
		if (offset + i >= VGA_LEGACY_LEN) {
			if (!is_write)
				data[i] = 0xff;
		} else if (is_write) {
			mem_writeb(v, offset + i, data[i]);
		} else {
			data[i] = mem_readb(v, offset + i);
		}
	}
	pthread_mutex_unlock(&v->lock);
}

/* BAR0 accessed through exits (before the VMM maps it as a slot, or in tests). */
void vga_lfb_mem(void *opaque, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct vga *v = opaque;

	if (offset >= v->vram_size || size > v->vram_size - offset) {
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	pthread_mutex_lock(&v->lock);
	if (is_write) {
		memcpy(&v->vram[offset], data, size);
		vga_mark_dirty(v, offset, size);
	} else {
		memcpy(data, &v->vram[offset], size);
	}
	pthread_mutex_unlock(&v->lock);
}

/*
 * BAR2 (QEMU vga-pci.c): 0x400-0x41f the ports 0x3c0-0x3df, 0x500-0x515 the
 * dispi registers as 16-bit words, 0x600 QEMU's extended registers (their
 * size, and the framebuffer byte order: little-endian only here).
 */
#define MMIO_VGA 0x400
#define MMIO_VBE 0x500
#define MMIO_QEXT 0x600
#define QEXT_SIZE 8
#define QEXT_LE 0x1e1e1e1eu

void vga_mmio(void *opaque, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct vga *v = opaque;
	uint32_t val = 0;

	if (offset >= MMIO_VGA && offset + size <= MMIO_VGA + 0x20 && v->model == VGA_MODEL_STD) {
		vga_pio(v, offset - MMIO_VGA + 0x10, is_write, data, size);
		return;
	}
	if (offset >= MMIO_VBE && offset + size <= MMIO_VBE + 2 * VBE_DISPI_INDEX_NB &&
	    !(offset & 1) && size <= 2) {
		unsigned index = (unsigned)(offset - MMIO_VBE) / 2;
		pthread_mutex_lock(&v->lock);
		if (is_write) {
			uint16_t w = size == 2 ? (uint16_t)(data[0] | data[1] << 8) : data[0];
			vga_vbe_write(v, index, w);
		} else {
			uint16_t w = vga_vbe_read(v, index);
			data[0] = (uint8_t)w;
			if (size == 2)
				data[1] = (uint8_t)(w >> 8);
		}
		pthread_mutex_unlock(&v->lock);
		return;
	}
	if (is_write)
		return;
	if (offset == MMIO_QEXT && size == 4)
		val = QEXT_SIZE;
	else if (offset == MMIO_QEXT + 4 && size == 4)
		val = QEXT_LE;
	else
		val = 0xffffffffu;
	for (unsigned i = 0; i < size && i < 4; i++)
		data[i] = (uint8_t)(val >> (8 * i));
	for (unsigned i = 4; i < size; i++)
		data[i] = 0xff;
}

/* ---- life cycle --------------------------------------------------------------- */

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int vga_init(struct vga *v, enum vga_model model, uint32_t vram_size, struct display *d)
{
	size_t pages;

	memset(v, 0, sizeof(*v));
	if (vram_size < VGA_VRAM_MIN || vram_size > VGA_VRAM_MAX || (vram_size & (vram_size - 1)))
		return -1;
	v->model = model;
	v->vram_size = vram_size;
	pages = vram_size >> VGA_PAGE_SHIFT;
	/* Page-aligned, so the VMM can hand it to KVM as the BAR0 slot. */
	v->vram = mmap(NULL, vram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v->vram == MAP_FAILED)
		v->vram = NULL;
	v->dirty = calloc((pages + 63) / 64, sizeof(uint64_t));
	v->dirty_snap = calloc((pages + 63) / 64, sizeof(uint64_t));
	if (!v->vram || !v->dirty || !v->dirty_snap || pthread_mutex_init(&v->lock, NULL) != 0) {
		if (v->vram)
			munmap(v->vram, vram_size);
		free(v->dirty);
		free(v->dirty_snap);
		v->vram = NULL;
		v->dirty = NULL;
		return -1;
	}
	v->display = d;
	v->now_ms = monotonic_ms;
	v->dac_mask = 0xff;
	v->msr = MSR_COLOR;		/* colour ports, as the BIOS leaves a colour card */
	v->vbe_regs[VBE_DISPI_INDEX_ID] = VBE_DISPI_ID5;
	v->vbe_regs[VBE_DISPI_INDEX_VIDEO_MEMORY_64K] = (uint16_t)(vram_size >> 16);
	v->full_update = true;
	if (d) {	/* a viewer may be refreshing: the reset's new card takes over under the lock */
		display_lock(d);
		display_set_hw(d, &vga_display_ops, v);
		display_unlock(d);
	}
	return 0;
}

void vga_destroy(struct vga *v)
{
	if (!v->vram)
		return;
	if (v->display) {
		display_lock(v->display);
		display_set_hw(v->display, NULL, NULL);
		display_unlock(v->display);
	}
	pthread_mutex_destroy(&v->lock);
	munmap(v->vram, v->vram_size);
	free(v->dirty);
	free(v->dirty_snap);
	free(v->text);
	v->vram = NULL;
	v->dirty = NULL;
	v->text = NULL;
}
