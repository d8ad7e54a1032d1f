/*
 * The VGA (hw/vga.c, vga_vbe.c, vga_render.c) as a hostile guest drives it:
 * the input is a program of port writes and reads (0x3b0-0x3df, the dispi
 * ports), legacy-window and LFB stores and loads, BAR2 accesses, and display
 * refreshes that render whatever mode the registers describe.  VRAM is small
 * (1 MiB) so that clamping matters; AddressSanitizer catches any access
 * outside VRAM, the surface or the device's buffers.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/display.h"
#include "hw/vga.h"

#include "fuzz_cursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fuzz_clock(void)
{
	static uint64_t t;

	return t += 100;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct display d;
	static struct vga v;
	struct cursor c = { data, size };
	uint8_t buf[8];

	if (display_init(&d) != 0)
		return 0;
	if (vga_init(&v, (size && (data[0] & 0x80)) ? VGA_MODEL_BOCHS_DISPLAY : VGA_MODEL_STD,
		     VGA_VRAM_MIN, &d) < 0) {
		display_destroy(&d);
		return 0;
	}
	v.now_ms = fuzz_clock;
	while (c.left) {
		unsigned op = take(&c, 1);
		unsigned len = 1u << (op >> 6);		/* 1, 2, 4 or 8 bytes */
		uint32_t where = take(&c, 3);
		bool write = op & 0x10;
		uint64_t val = take(&c, 4);

		memcpy(buf, &val, 4);
		memcpy(buf + 4, &val, 4);
		switch (op & 0x0f) {
		case 0: case 1: case 2:
			vga_pio(&v, where % VGA_PIO_LEN, write, buf, len > 2 ? 2 : len);
			break;
		case 3:
			vga_vbe_pio(&v, where & 1, write, buf, 2);
			break;
		case 4: case 5: case 6:
			vga_legacy_mem(&v, where % VGA_LEGACY_LEN, write, buf, len);
			break;
		case 7:
			vga_lfb_mem(&v, where % (v.vram_size + 16), write, buf, len);
			break;
		case 8:
			vga_mmio(&v, where % VGA_MMIO_SIZE, write, buf, len > 4 ? 4 : len);
			break;
		default:
			display_refresh(&d);
			break;
		}
	}
	display_refresh(&d);
	vga_destroy(&v);
	display_destroy(&d);
	return 0;
}
