/*
 * The standard VGA with Bochs VBE extensions, as QEMU's hw/display/vga.c
 * (and vga-pci.c, bochs-display.c) model it: the one video device SeaBIOS's
 * vgabios-stdvga.bin and vgabios-bochs-display.bin drive.
 *
 * Guest side: VGA ports 0x3b0-0x3df, the legacy window 0xa0000-0xbffff, the
 * Bochs "dispi" ports 0x1ce/0x1cf, and as a PCI function (1234:1111) BAR0 =
 * VRAM (the linear framebuffer) and BAR2 = 4 KiB of MMIO (VGA ports at 0x400,
 * dispi registers at 0x500, QEMU's extended registers at 0x600).
 *
 * Host side: vga_display_ops renders into a struct display (core/display.h).
 * VRAM writes that arrive as exits (legacy window, BAR0 while it is not a KVM
 * slot) are tracked here page by page; the VMM maps BAR0 as a KVM slot with
 * dirty logging and hands that log in through lfb_dirty_log (vmm/pc_vga.c).
 *
 * Locking: vga->lock guards registers and VRAM bookkeeping; refresh runs
 * under the display lock and takes vga->lock while it reads registers.
 */
#ifndef KESTREL_HW_VGA_H
#define KESTREL_HW_VGA_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/display.h"
#include "hw/pci.h"

#define VGA_VRAM_DEFAULT (16u << 20)	/* QEMU's vgamem_mb=16 */
#define VGA_VRAM_MIN (1u << 20)
#define VGA_VRAM_MAX (256u << 20)
#define VGA_PAGE_SHIFT 12
#define VGA_MMIO_SIZE 0x1000

#define VGA_PIO_BASE 0x3b0
#define VGA_PIO_LEN 0x30
#define VGA_VBE_PIO_BASE 0x1ce
#define VGA_VBE_PIO_LEN 3		/* index, data; 0x1d0 the data alias */
#define VGA_LEGACY_BASE 0xa0000
#define VGA_LEGACY_LEN 0x20000

/* Bochs VBE "dispi" registers (Bochs vbe.h, QEMU vga_int.h). */
enum {
	VBE_DISPI_INDEX_ID, VBE_DISPI_INDEX_XRES, VBE_DISPI_INDEX_YRES, VBE_DISPI_INDEX_BPP,
	VBE_DISPI_INDEX_ENABLE, VBE_DISPI_INDEX_BANK, VBE_DISPI_INDEX_VIRT_WIDTH,
	VBE_DISPI_INDEX_VIRT_HEIGHT, VBE_DISPI_INDEX_X_OFFSET, VBE_DISPI_INDEX_Y_OFFSET,
	VBE_DISPI_INDEX_VIDEO_MEMORY_64K, VBE_DISPI_INDEX_NB
};
#define VBE_DISPI_ID0 0xb0c0
#define VBE_DISPI_ID5 0xb0c5
#define VBE_DISPI_MAX_XRES 16000
#define VBE_DISPI_MAX_YRES 12000
#define VBE_DISPI_MAX_BPP 32
#define VBE_DISPI_ENABLED 0x01
#define VBE_DISPI_GETCAPS 0x02
#define VBE_DISPI_8BIT_DAC 0x20
#define VBE_DISPI_LFB_ENABLED 0x40
#define VBE_DISPI_NOCLEARMEM 0x80

enum vga_model {
	VGA_MODEL_STD,			/* QEMU "VGA": legacy VGA + VBE, class 0x0300 */
	VGA_MODEL_BOCHS_DISPLAY,	/* QEMU "bochs-display": VBE only, class 0x0380 */
};

/* What the last refresh drew, to know what changed (QEMU's last_* fields). */
enum vga_gmode { VGA_GMODE_NONE, VGA_GMODE_BLANK, VGA_GMODE_TEXT, VGA_GMODE_GRAPH };

struct vga {
	pthread_mutex_t lock;
	enum vga_model model;
	uint8_t *vram;
	uint32_t vram_size;		/* a power of two */
	uint64_t *dirty;		/* one bit per VRAM page written since the last refresh */
	uint64_t *dirty_snap;		/* what this refresh redraws (the renderer's copy) */

	/* VGA registers (IBM VGA Technical Reference; QEMU VGACommonState). */
	uint8_t msr, fcr, st00, st01;
	uint8_t sr_index, sr[8];
	uint8_t gr_index, gr[16];
	uint8_t cr_index, cr[256];
	uint8_t ar_index, ar[21];
	bool ar_flip_flop;		/* false: the next 0x3c0 write is an index */
	uint8_t dac_state, dac_sub_index, dac_read_index, dac_write_index, dac_cache[3];
	uint8_t dac_mask;
	uint8_t palette[768];
	uint32_t latch;
	bool palette_dirty;
	bool plane2_written;		/* the font plane changed (QEMU plane_updated bit 2) */

	/* Bochs VBE. */
	uint16_t vbe_index;
	uint16_t vbe_regs[VBE_DISPI_INDEX_NB];
	uint32_t vbe_start_addr;	/* bytes */
	uint32_t vbe_line_offset;	/* bytes */
	uint32_t bank_offset;

	/* Rendering state (under the display lock). */
	struct display *display;
	enum vga_gmode last_mode;
	int last_w, last_h, last_depth;
	uint32_t last_line_offset, last_start;
	int last_cw, last_ch;		/* text: character cell size */
	uint32_t last_font[2];		/* text: the two fonts' VRAM offsets */
	uint32_t last_pal[256];		/* the palette the screen was drawn with */
	uint16_t *text;			/* the last text screen drawn: attr << 8 | char */
	int text_cols, text_rows;
	int last_cursor, last_cursor_start, last_cursor_end;
	bool cursor_phase;		/* QEMU's cursor_visible_phase */
	uint64_t cursor_blink_ms;	/* when the phase turns next */
	bool full_update;		/* a register change that redraws everything */
	uint64_t (*now_ms)(void);	/* the clock for blinking (tests set their own) */

	/* The VMM's KVM dirty log for BAR0, or NULL: ORs written pages into bitmap. */
	void (*lfb_dirty_log)(void *opaque, uint64_t *bitmap);
	/* The VMM maps BAR0 as a KVM slot at gpa (0: unmap); returns -1 if it cannot. */
	int (*lfb_map)(void *opaque, uint64_t gpa);
	void *lfb_opaque;
	uint64_t lfb_gpa;		/* where BAR0 is mapped as a slot, 0: not mapped */

	struct pci_device pci;
	const uint8_t *rom;		/* the VGA BIOS, not owned */
	size_t rom_len;
};

/* VGA_MODEL_STD must also get vga_pio/vga_vbe_pio/vga_legacy_mem on the buses. */
int vga_init(struct vga *v, enum vga_model model, uint32_t vram_size, struct display *d);
void vga_destroy(struct vga *v);
/* Sets the BARs and ROM up; then vga_plug puts it in slot (-1: the first free). */
void vga_pci_init(struct vga *v, const uint8_t *rom, size_t rom_len);
int vga_plug(struct vga *v, struct pci_bus *bus, int slot);

/* Bus handlers (hw/bus.h): offsets from VGA_PIO_BASE, VGA_VBE_PIO_BASE, VGA_LEGACY_BASE. */
void vga_pio(void *v, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void vga_vbe_pio(void *v, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void vga_legacy_mem(void *v, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void vga_lfb_mem(void *v, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void vga_mmio(void *v, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

/* Marks VRAM [off, off + len) written (vga.c, vga_vbe.c). */
void vga_mark_dirty(struct vga *v, uint64_t off, uint64_t len);
/* VBE (vga_vbe.c); with v->lock held. */
bool vga_vbe_enabled(const struct vga *v);
uint16_t vga_vbe_read(struct vga *v, unsigned index);
void vga_vbe_write(struct vga *v, unsigned index, uint16_t val);

extern const struct display_hw_ops vga_display_ops;

#endif
