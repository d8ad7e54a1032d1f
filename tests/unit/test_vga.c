/*
 * hw/vga.c, vga_vbe.c, vga_render.c driven as a guest and its VGA BIOS drive
 * them: port writes, the legacy window, the dispi ports and the LFB BAR, then
 * a refresh into a core/display surface whose pixels and reported rectangles
 * are checked.  Register tables are the ones SeaBIOS's vgabios programs for
 * modes 3 and 0x12 (vgasrc/stdvgamodes.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/display.h"
#include "hw/vga.h"

#define MAX_RECTS 64

struct fixture {
	struct display d;
	struct vga v;
	int nr_rects;
	int rects[MAX_RECTS][4];
	int resizes;
};

static uint64_t clock_ms;
static uint64_t test_clock(void)
{
	return clock_ms;
}

static void l_resize(void *l, const struct display_surface *s)
{
	struct fixture *f = l;

	(void)s;
	f->resizes++;
}

static void l_update(void *l, int x, int y, int w, int h)
{
	struct fixture *f = l;

	if (f->nr_rects < MAX_RECTS) {
		int *r = f->rects[f->nr_rects];
		r[0] = x, r[1] = y, r[2] = w, r[3] = h;
	}
	f->nr_rects++;
}

static const struct display_listener_ops listener = { l_resize, l_update };

static struct fixture *fixture_new(uint32_t vram)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(display_init(&f->d), 0);
	assert_int_equal(vga_init(&f->v, VGA_MODEL_STD, vram, &f->d), 0);
	f->v.now_ms = test_clock;
	clock_ms = 0;
	assert_int_equal(display_add_listener(&f->d, &listener, f), 0);
	return f;
}

static void fixture_free(struct fixture *f)
{
	vga_destroy(&f->v);
	display_destroy(&f->d);
	free(f);
}

static void refresh(struct fixture *f)
{
	f->nr_rects = 0;
	display_refresh(&f->d);
}

static void outb(struct fixture *f, unsigned port, uint8_t val)
{
	vga_pio(&f->v, port - VGA_PIO_BASE, true, &val, 1);
}

static uint8_t inb(struct fixture *f, unsigned port)
{
	uint8_t val;

	vga_pio(&f->v, port - VGA_PIO_BASE, false, &val, 1);
	return val;
}

static void memb(struct fixture *f, uint32_t gpa, uint8_t val)
{
	vga_legacy_mem(&f->v, gpa - VGA_LEGACY_BASE, true, &val, 1);
}

static uint8_t memr(struct fixture *f, uint32_t gpa)
{
	uint8_t val;

	vga_legacy_mem(&f->v, gpa - VGA_LEGACY_BASE, false, &val, 1);
	return val;
}

static void vbe(struct fixture *f, uint16_t index, uint16_t val)
{
	uint8_t b[2] = { (uint8_t)index, (uint8_t)(index >> 8) };

	vga_vbe_pio(&f->v, 0, true, b, 2);
	b[0] = (uint8_t)val, b[1] = (uint8_t)(val >> 8);
	vga_vbe_pio(&f->v, 1, true, b, 2);
}

static uint16_t vbe_get(struct fixture *f, uint16_t index)
{
	uint8_t b[2] = { (uint8_t)index, (uint8_t)(index >> 8) };

	vga_vbe_pio(&f->v, 0, true, b, 2);
	vga_vbe_pio(&f->v, 1, false, b, 2);
	return (uint16_t)(b[0] | b[1] << 8);
}

static uint32_t px(struct fixture *f, int x, int y)
{
	assert_true(x < f->d.surface.width && y < f->d.surface.height);
	return f->d.surface.pixels[(size_t)y * f->d.surface.width + x];
}

static void dac(struct fixture *f, uint8_t index, uint8_t r, uint8_t g, uint8_t b)
{
	outb(f, 0x3c8, index);
	outb(f, 0x3c9, r);
	outb(f, 0x3c9, g);
	outb(f, 0x3c9, b);
}

/* SeaBIOS vgasrc/stdvga.c stdvga_set_mode: MSR, SR, CRTC (unlocked), AR, GR. */
static void set_regs(struct fixture *f, uint8_t msr, const uint8_t *sr, const uint8_t *cr,
		     const uint8_t *ar, const uint8_t *gr)
{
	outb(f, 0x3c2, msr);
	for (int i = 0; i < 5; i++)
		outb(f, 0x3c4, (uint8_t)i), outb(f, 0x3c5, sr[i]);
	outb(f, 0x3d4, 0x11), outb(f, 0x3d5, 0);
	for (int i = 0; i < 25; i++)
		outb(f, 0x3d4, (uint8_t)i), outb(f, 0x3d5, cr[i]);
	inb(f, 0x3da);
	for (int i = 0; i < 20; i++)
		outb(f, 0x3c0, (uint8_t)i), outb(f, 0x3c0, ar[i]);
	outb(f, 0x3c0, 0x14), outb(f, 0x3c0, 0);
	for (int i = 0; i < 9; i++)
		outb(f, 0x3ce, (uint8_t)i), outb(f, 0x3cf, gr[i]);
	inb(f, 0x3da);
	outb(f, 0x3c0, 0x20);	/* palette loaded: the screen shows */
}

static const uint8_t ar_std[20] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39,
				    0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08 };

static void mode3(struct fixture *f)
{
	static const uint8_t sr[5] = { 0x03, 0x00, 0x03, 0x00, 0x02 };
	static const uint8_t cr[25] = { 0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00,
					0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
					0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff };
	static const uint8_t gr[9] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x0f, 0xff };

	set_regs(f, 0x67, sr, cr, ar_std, gr);
	dac(f, 0x01, 0x00, 0x00, 0x2a);		/* blue */
	dac(f, 0x3f, 0x3f, 0x3f, 0x3f);		/* bright white */
}

/* SeaBIOS get_font_access / release_font_access: plane 2 at 0xa0000, then back. */
static void load_glyph(struct fixture *f, uint8_t ch, const uint8_t *rows, int n)
{
	outb(f, 0x3c4, 0x02), outb(f, 0x3c5, 0x04);
	outb(f, 0x3c4, 0x04), outb(f, 0x3c5, 0x07);
	outb(f, 0x3ce, 0x04), outb(f, 0x3cf, 0x02);
	outb(f, 0x3ce, 0x05), outb(f, 0x3cf, 0x00);
	outb(f, 0x3ce, 0x06), outb(f, 0x3cf, 0x04);
	for (int i = 0; i < n; i++)
		memb(f, 0xa0000 + ch * 32u + (unsigned)i, rows[i]);
	outb(f, 0x3c4, 0x02), outb(f, 0x3c5, 0x03);
	outb(f, 0x3c4, 0x04), outb(f, 0x3c5, 0x02);
	outb(f, 0x3ce, 0x04), outb(f, 0x3cf, 0x00);
	outb(f, 0x3ce, 0x05), outb(f, 0x3cf, 0x10);
	outb(f, 0x3ce, 0x06), outb(f, 0x3cf, 0x0e);
}

static void put_char(struct fixture *f, int row, int col, uint8_t ch, uint8_t attr)
{
	uint32_t at = 0xb8000 + 2u * (unsigned)(row * 80 + col);

	memb(f, at, ch);
	memb(f, at + 1, attr);
}

#define WHITE 0xffffffu
#define BLUE 0x0000a8u	/* DAC 0x2a widened as QEMU does: 0x2a << 2 */

static void test_text_mode_glyph_and_colours(void **state)
{
	struct fixture *f = fixture_new(VGA_VRAM_DEFAULT);
	uint8_t glyph[16] = { 0x81, 0xff, 0x18 };

	(void)state;
	mode3(f);
	load_glyph(f, 'A', glyph, 16);
	put_char(f, 0, 0, 'A', 0x1f);		/* white on blue */
	assert_int_equal(memr(f, 0xb8000), 'A');	/* odd/even reads back plane 0 */
	assert_int_equal(memr(f, 0xb8001), 0x1f);
	outb(f, 0x3d4, 0x0e), outb(f, 0x3d5, 0);
	outb(f, 0x3d4, 0x0f), outb(f, 0x3d5, 80);	/* cursor at row 1, col 0 */
	refresh(f);

	assert_int_equal(f->d.surface.width, 720);	/* 80 x 9 dots */
	assert_int_equal(f->d.surface.height, 400);	/* 25 x 16 lines */
	/* Row 0 of the glyph is 0x81: dots 0 and 7 white, the rest and the 9th blue. */
	assert_int_equal(px(f, 0, 0), WHITE);
	for (int x = 1; x < 7; x++)
		assert_int_equal(px(f, x, 0), BLUE);
	assert_int_equal(px(f, 7, 0), WHITE);
	assert_int_equal(px(f, 8, 0), BLUE);
	for (int x = 0; x < 8; x++)
		assert_int_equal(px(f, x, 1), WHITE);
	assert_int_equal(px(f, 3, 2), WHITE);
	assert_int_equal(px(f, 2, 2), BLUE);
	/* Cursor lines 13-14 of the cell at row 1 (attr 0: fg = DAC 0, bg the same). */
	assert_int_equal(px(f, 0, 16 + 13), 0);

	int cells;
	const uint16_t *text;
	int cols, rows;
	assert_true(vga_display_ops.text(&f->v, &cols, &rows, &text));
	cells = cols * rows;
	assert_int_equal(cells, 2000);
	assert_int_equal(text[0], 0x1f00 | 'A');
	fixture_free(f);
}

static void test_text_cursor_blinks_and_dirty_cells(void **state)
{
	struct fixture *f = fixture_new(VGA_VRAM_DEFAULT);

	(void)state;
	mode3(f);
	put_char(f, 1, 0, ' ', 0xf1);	/* fg blue (1), bg white (0xf): the cursor shows blue */
	outb(f, 0x3d4, 0x0e), outb(f, 0x3d5, 0);
	outb(f, 0x3d4, 0x0f), outb(f, 0x3d5, 80);
	refresh(f);
	assert_int_equal(px(f, 0, 16 + 13), BLUE);	/* cursor phase on */
	assert_int_equal(px(f, 0, 16 + 12), WHITE);
	assert_int_equal(px(f, 8, 16 + 13), WHITE);	/* 9th dot: background */

	/* Nothing changed, blink period not over: nothing to report. */
	clock_ms = 100;
	refresh(f);
	assert_int_equal(f->nr_rects, 0);

	/* QEMU's phase: 533 ms period, flipping every 266 ms; only the cursor cell redraws. */
	clock_ms = 300;
	refresh(f);
	assert_int_equal(px(f, 0, 16 + 13), WHITE);
	assert_int_equal(f->nr_rects, 1);
	assert_int_equal(f->rects[0][0], 0);
	assert_int_equal(f->rects[0][1], 16);
	assert_int_equal(f->rects[0][2], 9);
	assert_int_equal(f->rects[0][3], 16);

	/* One character written: one cell reported. */
	put_char(f, 5, 10, 'x', 0x07);
	refresh(f);
	assert_int_equal(f->nr_rects, 1);
	assert_int_equal(f->rects[0][0], 90);
	assert_int_equal(f->rects[0][1], 80);
	assert_int_equal(f->rects[0][2], 9);
	assert_int_equal(f->rects[0][3], 16);
	fixture_free(f);
}

static void lfb_write32(struct fixture *f, uint64_t off, uint32_t val)
{
	vga_lfb_mem(&f->v, off, true, (uint8_t *)&val, 4);
}

static void test_vbe_800x600x32(void **state)
{
	struct fixture *f = fixture_new(VGA_VRAM_DEFAULT);

	(void)state;
	assert_int_equal(vbe_get(f, VBE_DISPI_INDEX_ID), 0xb0c5);
	vbe(f, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_GETCAPS);
	assert_int_equal(vbe_get(f, VBE_DISPI_INDEX_XRES), VBE_DISPI_MAX_XRES);
	vbe(f, VBE_DISPI_INDEX_ENABLE, 0);
	vbe(f, VBE_DISPI_INDEX_XRES, 800);
	vbe(f, VBE_DISPI_INDEX_YRES, 600);
	vbe(f, VBE_DISPI_INDEX_BPP, 32);
	vbe(f, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
	lfb_write32(f, (10 * 800 + 20) * 4, 0x00123456);
	lfb_write32(f, (599 * 800 + 799) * 4, 0x00abcdef);
	refresh(f);
	assert_int_equal(f->d.surface.width, 800);
	assert_int_equal(f->d.surface.height, 600);
	assert_int_equal(px(f, 20, 10), 0x123456);
	assert_int_equal(px(f, 799, 599), 0xabcdef);
	assert_int_equal(px(f, 21, 10), 0);

	/* Idle: no rectangle; one pixel: only the lines of its VRAM page. */
	refresh(f);
	assert_int_equal(f->nr_rects, 0);
	lfb_write32(f, (300 * 800 + 400) * 4, 0x00ff0000);
	refresh(f);
	assert_int_equal(px(f, 400, 300), 0xff0000);
	assert_int_equal(f->nr_rects, 1);
	assert_true(f->rects[0][1] <= 300 && f->rects[0][1] + f->rects[0][3] > 300);
	assert_true(f->rects[0][3] <= 3);
	assert_int_equal(f->rects[0][2], 800);
	fixture_free(f);
}

static void test_vbe_1024x768x16_and_bank(void **state)
{
	struct fixture *f = fixture_new(VGA_VRAM_DEFAULT);
	uint16_t red = 0xf800, green = 0x07e0;

	(void)state;
	vbe(f, VBE_DISPI_INDEX_XRES, 1024);
	vbe(f, VBE_DISPI_INDEX_YRES, 768);
	vbe(f, VBE_DISPI_INDEX_BPP, 16);
	vbe(f, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED);
	vga_lfb_mem(&f->v, 0, true, (uint8_t *)&red, 2);
	/* Through the banked window: bank 1 is VRAM 64K on, i.e. line 32 of 2048-byte lines. */
	vbe(f, VBE_DISPI_INDEX_BANK, 1);
	memb(f, 0xa0000 + 2 * 5, (uint8_t)green);
	memb(f, 0xa0000 + 2 * 5 + 1, (uint8_t)(green >> 8));
	refresh(f);
	assert_int_equal(f->d.surface.width, 1024);
	assert_int_equal(f->d.surface.height, 768);
	assert_int_equal(px(f, 0, 0), 0xf80000);
	assert_int_equal(px(f, 5, 32), 0x00fc00);
	/* BAR2: the same registers at 0x500 + 2 * index, QEMU's extended regs at 0x600. */
	uint8_t b[4];
	vga_mmio(&f->v, 0x500 + 2 * VBE_DISPI_INDEX_XRES, false, b, 2);
	assert_int_equal(b[0] | b[1] << 8, 1024);
	vga_mmio(&f->v, 0x604, false, b, 4);
	assert_int_equal(b[0], 0x1e);
	fixture_free(f);
}

static void test_planar_mode12_write_mode2(void **state)
{
	static const uint8_t sr[5] = { 0x03, 0x01, 0x0f, 0x00, 0x06 };
	static const uint8_t cr[25] = { 0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00,
					0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xea, 0x8c,
					0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff };
	static const uint8_t ar[20] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38,
					0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x01, 0x00,
					0x0f, 0x00 };
	static const uint8_t gr[9] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff };
	struct fixture *f = fixture_new(VGA_VRAM_DEFAULT);

	(void)state;
	set_regs(f, 0xe3, sr, cr, ar, gr);
	dac(f, 0x3c, 0x3f, 0x15, 0x15);		/* colour 12 through AR[12] = 0x3c */
	outb(f, 0x3ce, 5), outb(f, 0x3cf, 0x02);	/* write mode 2 */
	outb(f, 0x3ce, 8), outb(f, 0x3cf, 0x80);	/* bit mask: the first pixel */
	(void)memr(f, 0xa0000 + 80 * 7);		/* load the latches */
	memb(f, 0xa0000 + 80 * 7, 0x0c);
	refresh(f);
	assert_int_equal(f->d.surface.width, 640);
	assert_int_equal(f->d.surface.height, 480);
	assert_int_equal(px(f, 0, 7), 0xff5757);
	assert_int_equal(px(f, 1, 7), 0);
	/* Read mode 1 with colour compare 12: only that pixel matches. */
	outb(f, 0x3ce, 5), outb(f, 0x3cf, 0x08);
	outb(f, 0x3ce, 2), outb(f, 0x3cf, 0x0c);
	assert_int_equal(memr(f, 0xa0000 + 80 * 7), 0x80);
	fixture_free(f);
}

static void test_chain4_mode13(void **state)
{
	static const uint8_t sr[5] = { 0x03, 0x01, 0x0f, 0x00, 0x0e };
	static const uint8_t cr[25] = { 0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00,
					0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
					0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff };
	static const uint8_t ar[20] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
					0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x41, 0x00,
					0x0f, 0x00 };
	static const uint8_t gr[9] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff };
	struct fixture *f = fixture_new(VGA_VRAM_DEFAULT);

	(void)state;
	set_regs(f, 0x63, sr, cr, ar, gr);
	dac(f, 0x20, 0x3f, 0x00, 0x00);
	memb(f, 0xa0000 + 2 * 320 + 3, 0x20);
	refresh(f);
	/* As QEMU shows mode 13h: 640x400, each pixel doubled both ways. */
	assert_int_equal(f->d.surface.width, 640);
	assert_int_equal(f->d.surface.height, 400);
	for (int y = 4; y < 6; y++)
		for (int x = 6; x < 8; x++)
			assert_int_equal(px(f, x, y), 0xff0000);
	assert_int_equal(px(f, 8, 4), 0);
	assert_int_equal(memr(f, 0xa0000 + 2 * 320 + 3), 0x20);
	fixture_free(f);
}

/* Mode 4 (CGA 320x200x4): odd/even at 0xb8000, odd lines from the 8K bank (CR17 bit 0 clear). */
static void test_cga_mode4(void **state)
{
	static const uint8_t sr[5] = { 0x03, 0x09, 0x03, 0x00, 0x02 };
	static const uint8_t cr[25] = { 0x2d, 0x27, 0x28, 0x90, 0x2b, 0x80, 0xbf, 0x1f, 0x00,
					0xc1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e,
					0x8f, 0x14, 0x00, 0x96, 0xb9, 0xa2, 0xff };
	static const uint8_t ar[20] = { 0x00, 0x13, 0x15, 0x17, 0x02, 0x04, 0x06, 0x07, 0x10,
					0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x01, 0x00,
					0x03, 0x00 };
	static const uint8_t gr[9] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x0f, 0x0f, 0xff };
	struct fixture *f = fixture_new(VGA_VRAM_DEFAULT);

	(void)state;
	set_regs(f, 0x63, sr, cr, ar, gr);
	dac(f, 0x17, 0x3f, 0x3f, 0x00);		/* colour 3 through AR[3] = 0x17 */
	dac(f, 0x13, 0x00, 0x3f, 0x3f);		/* colour 1 through AR[1] = 0x13 */
	memb(f, 0xb8000, 0xc0);			/* line 0: pixel 0 colour 3 */
	memb(f, 0xb8001, 0x01);			/* line 0: pixel 7 colour 1 */
	memb(f, 0xba000, 0x30);			/* line 1 (odd bank): pixel 1 colour 3 */
	memb(f, 0xb8000 + 80, 0x03);		/* line 2: pixel 3 colour 3 */
	refresh(f);
	assert_int_equal(f->d.surface.width, 640);	/* dot clock / 2: doubled */
	assert_int_equal(f->d.surface.height, 400);	/* double scan */
	assert_int_equal(px(f, 0, 0), 0xffff00);
	assert_int_equal(px(f, 1, 1), 0xffff00);
	assert_int_equal(px(f, 2, 0), 0);
	assert_int_equal(px(f, 14, 0), 0x00ffff);
	assert_int_equal(px(f, 2, 2), 0xffff00);
	assert_int_equal(px(f, 3, 3), 0xffff00);
	assert_int_equal(px(f, 0, 2), 0);
	assert_int_equal(px(f, 6, 4), 0xffff00);
	fixture_free(f);
}

/* A framebuffer write through the KVM slot makes no exit: only the VMM's dirty log tells. */
static unsigned fake_log_page;
static void fake_dirty_log(void *opaque, uint64_t *bitmap)
{
	(void)opaque;
	bitmap[fake_log_page / 64] |= 1ULL << (fake_log_page % 64);
}

static void test_lfb_dirty_log_drives_redraw(void **state)
{
	struct fixture *f = fixture_new(VGA_VRAM_DEFAULT);
	uint32_t *fb;

	(void)state;
	vbe(f, VBE_DISPI_INDEX_XRES, 1024);
	vbe(f, VBE_DISPI_INDEX_YRES, 768);
	vbe(f, VBE_DISPI_INDEX_BPP, 32);
	vbe(f, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
	refresh(f);
	fb = (uint32_t *)f->v.vram;
	fb[100 * 1024 + 7] = 0x00445566;	/* line 100 is VRAM page 100 (4 KiB lines) */
	refresh(f);
	assert_int_equal(f->nr_rects, 0);	/* no exit, no log: not seen */
	f->v.lfb_dirty_log = fake_dirty_log;
	f->v.lfb_gpa = 0xfd000000;
	fake_log_page = 100;
	refresh(f);
	assert_int_equal(px(f, 7, 100), 0x445566);
	assert_int_equal(f->nr_rects, 1);
	assert_int_equal(f->rects[0][1], 100);
	assert_int_equal(f->rects[0][3], 1);
	fixture_free(f);
}

/* Registers at their worst never make the device touch memory outside VRAM (ASan sees it). */
static void test_hostile_values_stay_in_vram(void **state)
{
	struct fixture *f = fixture_new(VGA_VRAM_MIN);

	(void)state;
	vbe(f, VBE_DISPI_INDEX_XRES, 0xffff);
	vbe(f, VBE_DISPI_INDEX_YRES, 0xffff);
	vbe(f, VBE_DISPI_INDEX_BPP, 32);
	vbe(f, VBE_DISPI_INDEX_Y_OFFSET, 0xffff);
	vbe(f, VBE_DISPI_INDEX_X_OFFSET, 0xffff);
	vbe(f, VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED);
	assert_true((uint64_t)vbe_get(f, VBE_DISPI_INDEX_YRES) * f->v.vbe_line_offset +
		    f->v.vbe_start_addr <= f->v.vram_size);
	refresh(f);			/* wider than a surface may be: not drawn, no crash */
	vbe(f, VBE_DISPI_INDEX_XRES, 1024);
	vbe(f, VBE_DISPI_INDEX_YRES, 0xffff);
	vbe(f, VBE_DISPI_INDEX_BPP, 24);
	refresh(f);
	assert_true(f->d.surface.height <= (int)(VGA_VRAM_MIN / (1024 * 3)));
	vbe(f, VBE_DISPI_INDEX_BANK, 0xffff);	/* wraps inside 1 MiB */
	for (uint32_t a = 0xa0000; a < 0xc0000; a += 0xfff)
		memb(f, a, 0xaa), (void)memr(f, a);
	vbe(f, VBE_DISPI_INDEX_ENABLE, 0);

	/* Text and planar modes with the start address, offset and line compare at their ends. */
	mode3(f);
	outb(f, 0x3d4, 0x0c), outb(f, 0x3d5, 0xff);
	outb(f, 0x3d4, 0x0d), outb(f, 0x3d5, 0xff);
	outb(f, 0x3d4, 0x13), outb(f, 0x3d5, 0xff);
	outb(f, 0x3d4, 0x0e), outb(f, 0x3d5, 0xff);
	outb(f, 0x3d4, 0x09), outb(f, 0x3d5, 0x1f);
	outb(f, 0x3c4, 0x03), outb(f, 0x3c5, 0x3f);	/* fonts in the last blocks */
	refresh(f);
	outb(f, 0x3ce, 6), outb(f, 0x3cf, 0x01);	/* graphics, the 128K map */
	outb(f, 0x3ce, 5), outb(f, 0x3cf, 0x40);	/* 256 colours */
	outb(f, 0x3d4, 0x18), outb(f, 0x3d5, 0x00);	/* line compare 0 */
	refresh(f);
	outb(f, 0x3ce, 5), outb(f, 0x3cf, 0x03);	/* planar, write mode 3 */
	outb(f, 0x3c4, 0x04), outb(f, 0x3c5, 0x06);
	for (uint32_t a = 0xa0000; a < 0xc0000; a += 0x7ff)
		memb(f, a, 0x55), (void)memr(f, a);
	refresh(f);
	fixture_free(f);
}

static void test_pci_identity(void **state)
{
	struct vga v, b;
	struct pci_bus bus;

	(void)state;
	assert_int_equal(pci_bus_init(&bus), 0);
	assert_int_equal(vga_init(&v, VGA_MODEL_STD, VGA_VRAM_DEFAULT, NULL), 0);
	assert_int_equal(vga_init(&b, VGA_MODEL_BOCHS_DISPLAY, VGA_VRAM_DEFAULT, NULL), 0);
	vga_pci_init(&v, (const uint8_t *)"\x55\xaa", 2);
	vga_pci_init(&b, NULL, 0);
	assert_int_equal(vga_plug(&v, &bus, 2), 0);
	assert_int_equal(vga_plug(&b, &bus, -1), 0);
	assert_int_equal(v.pci.config[0] | v.pci.config[1] << 8, 0x1234);
	assert_int_equal(v.pci.config[2] | v.pci.config[3] << 8, 0x1111);
	assert_int_equal(v.pci.config[0x0b] << 8 | v.pci.config[0x0a], 0x0300);
	assert_int_equal(b.pci.config[0x0b] << 8 | b.pci.config[0x0a], 0x0380);
	assert_int_equal(v.pci.config[0x10] & 0x0f, 0x08);	/* prefetchable memory */
	assert_int_equal(v.pci.bars[0].size, VGA_VRAM_DEFAULT);
	assert_int_equal(v.pci.bars[2].size, VGA_MMIO_SIZE);
	assert_int_equal(v.pci.bars[PCI_ROM_BAR].size, 2048);
	assert_int_equal(v.pci.slot, 2);
	/* bochs-display has no VGA ports in BAR2. */
	uint8_t x = 0;
	vga_mmio(&b, 0x400 + 0x0c, false, &x, 1);
	assert_int_equal(x, 0xff);
	vga_destroy(&v);
	vga_destroy(&b);
	pci_bus_destroy(&bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_mode_glyph_and_colours),
		cmocka_unit_test(test_text_cursor_blinks_and_dirty_cells),
		cmocka_unit_test(test_vbe_800x600x32),
		cmocka_unit_test(test_vbe_1024x768x16_and_bank),
		cmocka_unit_test(test_planar_mode12_write_mode2),
		cmocka_unit_test(test_chain4_mode13),
		cmocka_unit_test(test_cga_mode4),
		cmocka_unit_test(test_lfb_dirty_log_drives_redraw),
		cmocka_unit_test(test_hostile_values_stay_in_vram),
		cmocka_unit_test(test_pci_identity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
