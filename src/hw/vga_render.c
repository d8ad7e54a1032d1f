/*
 * Drawing the VGA's screen into the display surface (QEMU vga.c
 * vga_update_display, vga_draw_text, vga_draw_graphic, matched pixel for
 * pixel so screens compare with QEMU's): text mode, CGA 2 bpp, 4 bpp
 * planar, 8 bpp chain-4 and VBE 4/8/15/16/24/32 bpp.
 *
 * Only what changed is drawn and reported: text cells are compared with the
 * last frame's (80x25 cells, as QEMU does), graphics lines are redrawn when a
 * VRAM page they read was written (the page bitmap of exits plus KVM's dirty
 * log for the BAR0 slot).  Every VRAM read is masked or bounds-checked, so no
 * register value reads outside VRAM.
 */
#include <stdlib.h>
#include <string.h>

#include "hw/vga.h"

#define CH_ATTR_MAX (160 * 100)			/* QEMU CH_ATTR_SIZE */
#define CURSOR_PERIOD_MS (1000 * 2 * 16 / 60)	/* QEMU VGA_TEXT_CURSOR_PERIOD_MS */
#define BLANK_W 640
#define BLANK_H 480

static uint32_t rgb(unsigned r, unsigned g, unsigned b)
{
	return (uint32_t)(r << 16 | g << 8 | b);
}

/* The DAC's 6-bit values widened as QEMU does (c6_to_8). */
static unsigned c6_to_8(unsigned v)
{
	v &= 0x3f;
	return v << 2 | (v & 1) << 1 | (v & 1);
}

static uint32_t dac_color(const struct vga *v, unsigned i)
{
	const uint8_t *p = &v->palette[(i & 0xff) * 3];

	if (v->vbe_regs[VBE_DISPI_INDEX_ENABLE] & VBE_DISPI_8BIT_DAC)
		return rgb(p[0], p[1], p[2]);
	return rgb(c6_to_8(p[0]), c6_to_8(p[1]), c6_to_8(p[2]));
}

/* The 16 attribute colours through the attribute controller (VGA ref. AR 0x10, 0x14). */
static void palette16(const struct vga *v, uint32_t pal[16])
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned c = v->ar[i];
		if (v->ar[0x10] & 0x80)
			c = ((v->ar[0x14] & 0xf) << 4) | (c & 0xf);
		else
			c = ((v->ar[0x14] & 0xc) << 4) | (c & 0x3f);
		pal[i] = dac_color(v, c);
	}
}

static void palette256(const struct vga *v, uint32_t pal[256])
{
	for (unsigned i = 0; i < 256; i++)
		pal[i] = dac_color(v, i);
}

static bool palette_changed(struct vga *v, const uint32_t *pal, unsigned n)
{
	if (!memcmp(v->last_pal, pal, n * sizeof(*pal)))
		return false;
	memcpy(v->last_pal, pal, n * sizeof(*pal));
	return true;
}

static uint8_t vram_at(const struct vga *v, uint64_t off)
{
	return v->vram[off & (v->vram_size - 1)];
}

/* Whether a page of VRAM [off, off + len) was written since the last refresh. */
static bool range_dirty(const struct vga *v, uint64_t off, uint64_t len)
{
	uint64_t first, last;

	if (!len)
		return false;
	if (off >= v->vram_size || len > v->vram_size - off)
		return true;		/* wraps: rare, just redraw */
	first = off >> VGA_PAGE_SHIFT;
	last = (off + len - 1) >> VGA_PAGE_SHIFT;
	for (uint64_t p = first; p <= last; p++)
		if (v->dirty_snap[p / 64] & (1ULL << (p % 64)))
			return true;
	return false;
}

/* The CRTC's vertical display end, in scan lines (CR12 + CR07 bits 1 and 6). */
static unsigned crtc_height(const struct vga *v)
{
	return (v->cr[0x12] | (v->cr[7] & 0x02) << 7 | (v->cr[7] & 0x40) << 3) + 1u;
}

static unsigned crtc_start(const struct vga *v)
{
	return (unsigned)(v->cr[0x0c] << 8 | v->cr[0x0d]);
}

static bool ensure_size(struct vga *v, int w, int h, bool *full)
{
	struct display_surface *s = &v->display->surface;

	if (s->pixels && s->width == w && s->height == h)
		return true;
	if (display_resize(v->display, w, h) < 0)
		return false;
	*full = true;
	return true;
}

/* ---- text mode ---------------------------------------------------------------- */

struct text_geom {
	int cols, rows, cw, ch;
	uint32_t font[2];
};

static bool text_geometry(const struct vga *v, struct text_geom *g)
{
	unsigned sr3 = v->sr[3];

	g->cw = (v->sr[1] & 1) ? 8 : 9;
	if (v->sr[1] & 0x08)
		g->cw = 16;		/* dot clock / 2 */
	g->ch = (v->cr[9] & 0x1f) + 1;
	g->cols = v->cr[1] + 1;
	g->rows = (int)crtc_height(v) / g->ch;
	/* Character map select (SR3): which 8K font block of plane 2 each attribute bit 3 picks. */
	g->font[0] = (((sr3 >> 4) & 1) | ((sr3 << 1) & 6)) * 8192 * 4 + 2;
	g->font[1] = (((sr3 >> 5) & 1) | ((sr3 >> 1) & 6)) * 8192 * 4 + 2;
	return g->cols * g->rows > 1 && g->cols * g->rows <= CH_ATTR_MAX;
}

static void draw_glyph(const struct vga *v, uint32_t *dst, int pitch, uint32_t glyph,
		       const struct text_geom *g, bool dup9, uint32_t fg, uint32_t bg, int rows)
{
	for (int i = 0; i < rows; i++, dst += pitch) {
		unsigned bits = glyph == UINT32_MAX ? 0xff : vram_at(v, glyph + 4u * (unsigned)i);
		for (int x = 0; x < 8; x++) {
			uint32_t c = (bits & (0x80u >> x)) ? fg : bg;
			if (g->cw == 16) {
				dst[2 * x] = dst[2 * x + 1] = c;
			} else {
				dst[x] = c;
			}
		}
		if (g->cw == 9)		/* the 9th dot: line graphics repeat the 8th */
			dst[8] = (dup9 && (bits & 1)) ? fg : bg;
	}
}

static void cursor_tick(struct vga *v, bool *changed)
{
	uint64_t now = v->now_ms();

	if (now < v->cursor_blink_ms)
		return;
	v->cursor_blink_ms = now + CURSOR_PERIOD_MS / 2;
	v->cursor_phase = !v->cursor_phase;
	*changed = true;
}

static void draw_text(struct vga *v, bool full)
{
	struct display_surface *s = &v->display->surface;
	struct text_geom g;
	uint32_t pal[16], start, lo;
	int cursor, old_cursor = -1;
	bool cursor_changed = false;

	if (!text_geometry(v, &g))
		return;
	if (g.cols != v->text_cols || g.rows != v->text_rows || g.cw != v->last_cw ||
	    g.ch != v->last_ch || !v->text) {
		uint16_t *t = realloc(v->text, (size_t)g.cols * g.rows * sizeof(*t));
		if (!t)
			return;
		v->text = t;
		v->text_cols = g.cols;
		v->text_rows = g.rows;
		v->last_cw = g.cw;
		v->last_ch = g.ch;
		full = true;
	}
	if (!ensure_size(v, g.cols * g.cw, g.rows * g.ch, &full))
		return;
	palette16(v, pal);
	/*
	 * Text and font share VRAM pages (planes 0-1 and 2 of the same
	 * addresses), so a font change is known by plane 2 writes, not pages.
	 */
	if (palette_changed(v, pal, 16) || memcmp(g.font, v->last_font, sizeof(g.font)) ||
	    v->plane2_written)
		full = true;
	v->plane2_written = false;
	memcpy(v->last_font, g.font, sizeof(g.font));

	start = crtc_start(v);
	lo = (uint32_t)v->cr[0x13] << 3;
	cursor = (int)((v->cr[0x0e] << 8 | v->cr[0x0f]) - start);
	if (cursor != v->last_cursor || v->cr[0x0a] != v->last_cursor_start ||
	    v->cr[0x0b] != v->last_cursor_end) {
		old_cursor = v->last_cursor;
		v->last_cursor = cursor;
		v->last_cursor_start = v->cr[0x0a];
		v->last_cursor_end = v->cr[0x0b];
		cursor_changed = true;
	}
	cursor_tick(v, &cursor_changed);

	for (int row = 0; row < g.rows; row++) {
		int xmin = g.cols, xmax = -1;
		uint64_t src = (uint64_t)start * 4 + (uint64_t)row * lo;
		for (int col = 0; col < g.cols; col++) {
			int idx = row * g.cols + col;
			uint64_t off = src + (uint64_t)col * 4;
			uint8_t ch = vram_at(v, off), attr = vram_at(v, off + 1);
			uint16_t cell = (uint16_t)(attr << 8 | ch);
			bool is_cursor = idx == cursor;
			if (!full && v->text[idx] == cell && !(cursor_changed &&
			    (is_cursor || idx == old_cursor)))
				continue;
			v->text[idx] = cell;
			uint32_t *d = s->pixels + (size_t)row * g.ch * s->width + (size_t)col * g.cw;
			uint32_t glyph = g.font[(attr >> 3) & 1] + 32u * 4 * ch;
			bool dup9 = ch >= 0xb0 && ch <= 0xdf && (v->ar[0x10] & 0x04);
			draw_glyph(v, d, s->width, glyph, &g, dup9, pal[attr & 0xf], pal[attr >> 4],
				   g.ch);
			int ls = v->cr[0x0a] & 0x1f, ll = v->cr[0x0b] & 0x1f;
			if (ll > g.ch - 1)
				ll = g.ch - 1;
			if (is_cursor && !(v->cr[0x0a] & 0x20) && v->cursor_phase && ll >= ls &&
			    ls < g.ch)
				draw_glyph(v, d + (size_t)ls * s->width, s->width, UINT32_MAX, &g,
					   false, pal[attr & 0xf], pal[attr >> 4], ll - ls + 1);
			if (col < xmin)
				xmin = col;
			xmax = col;
		}
		if (xmax >= 0)
			display_dirty(v->display, xmin * g.cw, row * g.ch, (xmax - xmin + 1) * g.cw,
				      g.ch);
	}
}

/* ---- graphics modes ---------------------------------------------------------- */

struct graph_geom {
	int w, h;		/* the surface */
	int depth;		/* 4 (planar), 8, 15, 16, 24, 32 */
	bool d2;		/* each source pixel drawn twice (dot clock / 2, mode 13h) */
	uint64_t start;		/* VRAM bytes */
	uint32_t line_offset;	/* VRAM bytes per line */
	uint32_t bytes;		/* VRAM bytes one line reads */
	unsigned multi_scan;	/* extra scan lines per VRAM line */
	unsigned line_compare;
	bool vbe;
};

static bool graph_geometry(const struct vga *v, struct graph_geom *g)
{
	unsigned shift = (v->gr[5] >> 5) & 3, cr9 = v->cr[9];

	memset(g, 0, sizeof(*g));
	if (vga_vbe_enabled(v)) {
		g->vbe = true;
		g->w = v->vbe_regs[VBE_DISPI_INDEX_XRES];
		g->h = v->vbe_regs[VBE_DISPI_INDEX_YRES];
		g->depth = v->vbe_regs[VBE_DISPI_INDEX_BPP];
		g->start = v->vbe_start_addr;
		g->line_offset = v->vbe_line_offset;
		g->line_compare = UINT32_MAX;
		g->bytes = g->depth == 4 ? (uint32_t)g->w / 2
					 : (uint32_t)g->w * (uint32_t)((g->depth + 7) / 8);
		return g->w > 0 && g->h > 0;
	}
	g->w = (v->cr[1] + 1) * 8;
	g->h = (int)crtc_height(v);
	g->start = (uint64_t)crtc_start(v) * 4;
	g->line_offset = (uint32_t)v->cr[0x13] << 3;
	g->line_compare = v->cr[0x18] | (v->cr[7] & 0x10) << 4 | (v->cr[9] & 0x40) << 3;
	g->multi_scan = (((cr9 & 0x1f) + 1) << (cr9 >> 7)) - 1;
	if (shift == 1) {		/* CGA 2 bpp: the max scan line is ignored */
		g->depth = 2;
		g->multi_scan = cr9 >> 7;
		g->d2 = v->sr[1] & 0x08;
		g->bytes = (uint32_t)g->w / 2;
		if (g->d2)
			g->w *= 2;
	} else if (shift == 0) {
		g->depth = 4;
		g->d2 = v->sr[1] & 0x08;
		g->bytes = (uint32_t)g->w / 2;		/* w / 8 latches of 4 bytes */
		if (g->d2)
			g->w *= 2;
	} else {
		g->depth = 8;
		g->d2 = true;
		g->bytes = (uint32_t)g->w / 2;
	}
	return true;
}

static void line_planar(const struct vga *v, uint32_t *d, uint64_t addr, const struct graph_geom *g,
			const uint32_t *pal)
{
	uint32_t enable = 0;
	int src_w = g->d2 ? g->w / 2 : g->w;

	for (unsigned p = 0; p < 4; p++)
		if (v->ar[0x12] & (1u << p))
			enable |= 0xffu << (8 * p);
	for (int x = 0; x < src_w; x += 8, addr += 4) {
		uint64_t a = addr & (v->vram_size - 1) & ~3ULL;
		uint32_t data;
		memcpy(&data, &v->vram[a], 4);
		data &= enable;
		for (int i = 0; i < 8 && x + i < src_w; i++) {
			unsigned b = 7 - (unsigned)i;
			unsigned c = ((data >> b) & 1) | ((data >> (b + 8)) & 1) << 1 |
				     ((data >> (b + 16)) & 1) << 2 | ((data >> (b + 24)) & 1) << 3;
			if (g->d2) {
				d[2 * (x + i)] = d[2 * (x + i) + 1] = pal[c];
			} else {
				d[x + i] = pal[c];
			}
		}
	}
}

/*
 * CGA 2 bpp (shift register mode 1): pixels 0-3 of a latch are bit pairs of
 * planes 0 (low) and 2 (high), pixels 4-7 those of planes 1 and 3.
 */
static void line_cga(const struct vga *v, uint32_t *d, uint64_t addr, const struct graph_geom *g,
		     const uint32_t *pal)
{
	int src_w = g->d2 ? g->w / 2 : g->w;
	uint8_t p[4];

	for (int x = 0; x < src_w; x += 8, addr += 4) {
		memcpy(p, &v->vram[addr & (v->vram_size - 1) & ~3ULL], 4);
		for (unsigned i = 0; i < 4; i++)
			if (!(v->ar[0x12] & (1u << i)))
				p[i] = 0;
		for (int i = 0; i < 8 && x + i < src_w; i++) {
			unsigned lo = i < 4 ? p[0] : p[1], hi = i < 4 ? p[2] : p[3];
			unsigned sh = 6 - 2 * (unsigned)(i & 3);
			uint32_t c = pal[((lo >> sh) & 3) | ((hi >> sh) & 3) << 2];
			if (g->d2) {
				d[2 * (x + i)] = d[2 * (x + i) + 1] = c;
			} else {
				d[x + i] = c;
			}
		}
	}
}

static void line_pixels(const struct vga *v, uint32_t *d, uint64_t addr, const struct graph_geom *g,
			const uint32_t *pal)
{
	const uint8_t *s;

	if (g->depth == 8 && g->d2) {
		for (int x = 0; x < g->w / 2; x++)
			d[2 * x] = d[2 * x + 1] = pal[vram_at(v, addr + (uint64_t)x)];
		return;
	}
	/* VBE: graph_geometry's caller checked that the line lies inside VRAM. */
	s = v->vram + addr;
	for (int x = 0; x < g->w; x++) {
		unsigned p;
		switch (g->depth) {
		case 8:
			d[x] = pal[s[x]];
			break;
		case 15:
			p = (unsigned)(s[2 * x] | s[2 * x + 1] << 8);
			d[x] = rgb((p >> 7) & 0xf8, (p >> 2) & 0xf8, (p << 3) & 0xf8);
			break;
		case 16:
			p = (unsigned)(s[2 * x] | s[2 * x + 1] << 8);
			d[x] = rgb((p >> 8) & 0xf8, (p >> 3) & 0xfc, (p << 3) & 0xf8);
			break;
		case 24:
			d[x] = rgb(s[3 * x + 2], s[3 * x + 1], s[3 * x]);
			break;
		default:
			d[x] = rgb(s[4 * x + 2], s[4 * x + 1], s[4 * x]);
			break;
		}
	}
}

/* CR17 bits 0-1: which VRAM-line bits choose the CGA (bit 13/14) and Hercules banks. */
static unsigned g_vmask(const struct vga *v)
{
	return (v->cr[0x17] & 3) ^ 3;
}

static uint64_t cga_addr(const struct vga *v, uint64_t addr, unsigned vline)
{
	unsigned cr17 = v->cr[0x17];

	if (!(cr17 & 1)) {
		unsigned shift = 14 + ((cr17 >> 6) & 1);
		addr = (addr & ~(1ULL << shift)) | ((uint64_t)(vline & 1) << shift);
	}
	if (!(cr17 & 2))
		addr = (addr & ~0x8000ULL) | ((uint64_t)(vline & 2) << 14);
	return addr;
}

static void draw_graphic(struct vga *v, bool full)
{
	struct display_surface *s = &v->display->surface;
	struct graph_geom g;
	uint32_t pal[256];
	uint64_t addr;
	unsigned run, vline = 0, vmask = g_vmask(v);
	int y0 = -1;

	if (!graph_geometry(v, &g))
		return;
	if (g.vbe)
		vmask = 0;
	if (g.depth != v->last_depth || g.line_offset != v->last_line_offset ||
	    g.start != v->last_start) {
		v->last_depth = g.depth;
		v->last_line_offset = g.line_offset;
		v->last_start = (uint32_t)g.start;
		full = true;
	}
	if (!ensure_size(v, g.w, g.h, &full))
		return;
	if (g.depth <= 4)
		palette16(v, pal);
	else
		palette256(v, pal);
	if (palette_changed(v, pal, g.depth <= 4 ? 16 : 256) && g.depth <= 8)
		full = true;

	addr = g.start;
	run = g.multi_scan;
	for (int y = 0; y < g.h; y++) {
		uint64_t a = g.vbe ? addr : cga_addr(v, addr, vline);
		bool in_vram = !g.vbe || (a <= v->vram_size && g.bytes <= v->vram_size - a);
		bool draw = in_vram && (full || range_dirty(v, a, g.bytes));
		if (draw) {
			uint32_t *d = s->pixels + (size_t)y * s->width;
			if (g.depth == 4)
				line_planar(v, d, a, &g, pal);
			else if (g.depth == 2)
				line_cga(v, d, a, &g, pal);
			else
				line_pixels(v, d, a, &g, pal);
			if (y0 < 0)
				y0 = y;
		} else if (y0 >= 0) {
			display_dirty(v->display, 0, y0, g.w, y - y0);
			y0 = -1;
		}
		if (!run) {
			/* CR17 bits 0-1 clear: CGA/Hercules banks, the line advances every 2nd or 4th. */
			if ((vline & vmask) == vmask)
				addr += g.line_offset;
			vline++;
			run = g.multi_scan;
		} else {
			run--;
		}
		if ((unsigned)y == g.line_compare)
			addr = 0;	/* split screen: the rest shows VRAM from 0 */
	}
	if (y0 >= 0)
		display_dirty(v->display, 0, y0, g.w, g.h - y0);
}

static void draw_blank(struct vga *v, bool full)
{
	struct display_surface *s = &v->display->surface;

	if (!s->pixels) {
		if (display_resize(v->display, BLANK_W, BLANK_H) < 0)
			return;
		full = true;
	}
	if (!full)
		return;
	memset(s->pixels, 0, (size_t)s->stride * s->height);
	display_dirty(v->display, 0, 0, s->width, s->height);
}

static enum vga_gmode current_mode(const struct vga *v)
{
	if (vga_vbe_enabled(v))
		return VGA_GMODE_GRAPH;
	if (v->model != VGA_MODEL_STD)
		return VGA_GMODE_BLANK;
	/* Palette being loaded (AR index bit 5 clear) or screen off (SR1 bit 5): blank. */
	if (!(v->ar_index & 0x20) || (v->sr[1] & 0x20))
		return VGA_GMODE_BLANK;
	return (v->gr[6] & 1) ? VGA_GMODE_GRAPH : VGA_GMODE_TEXT;
}

static void vga_refresh(void *opaque)
{
	struct vga *v = opaque;
	size_t words = ((v->vram_size >> VGA_PAGE_SHIFT) + 63) / 64;
	enum vga_gmode mode;
	bool full;

	pthread_mutex_lock(&v->lock);
	memcpy(v->dirty_snap, v->dirty, words * sizeof(uint64_t));
	memset(v->dirty, 0, words * sizeof(uint64_t));
	if (v->lfb_dirty_log && v->lfb_gpa)
		v->lfb_dirty_log(v->lfb_opaque, v->dirty_snap);
	mode = current_mode(v);
	full = v->full_update || v->palette_dirty || mode != v->last_mode;
	if (mode != v->last_mode)
		v->last_depth = -1;
	v->full_update = false;
	v->palette_dirty = false;
	v->last_mode = mode;
	switch (mode) {
	case VGA_GMODE_TEXT:
		draw_text(v, full);
		break;
	case VGA_GMODE_GRAPH:
		draw_graphic(v, full);
		break;
	default:
		draw_blank(v, full);
		break;
	}
	pthread_mutex_unlock(&v->lock);
}

static bool vga_text(void *opaque, int *cols, int *rows, const uint16_t **cells)
{
	struct vga *v = opaque;

	if (v->last_mode != VGA_GMODE_TEXT || !v->text)
		return false;
	*cols = v->text_cols;
	*rows = v->text_rows;
	*cells = v->text;
	return true;
}

const struct display_hw_ops vga_display_ops = {
	.refresh = vga_refresh,
	.text = vga_text,
};
