/*
 * screendump (QEMU 7.2 ui/console.c qmp_screendump): the surface as it is
 * after one refresh, written as binary PPM (P6, maxval 255) or PNG (RGB,
 * 8 bits per channel), the formats QEMU writes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_PNG
#include <png.h>
#endif

#include "core/display.h"
#include "ui/screendump.h"

static void row_rgb(const struct display_surface *s, int y, uint8_t *out)
{
	const uint32_t *p = (const uint32_t *)((const char *)s->pixels + (size_t)y * s->stride);

	for (int x = 0; x < s->width; x++) {
		out[3 * x] = p[x] >> 16;
		out[3 * x + 1] = p[x] >> 8;
		out[3 * x + 2] = p[x];
	}
}

static int write_ppm(FILE *f, const struct display_surface *s, uint8_t *row)
{
	if (fprintf(f, "P6\n%d %d\n255\n", s->width, s->height) < 0)
		return -1;
	for (int y = 0; y < s->height; y++) {
		row_rgb(s, y, row);
		if (fwrite(row, 3, (size_t)s->width, f) != (size_t)s->width)
			return -1;
	}
	return 0;
}

#ifdef HAVE_PNG
static int write_png(FILE *f, const struct display_surface *s, uint8_t *row)
{
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;

	if (!info) {
		png_destroy_write_struct(&png, NULL);
		return -1;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		return -1;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)s->width, (png_uint_32)s->height, 8,
		     PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
		     PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < s->height; y++) {
		row_rgb(s, y, row);
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return 0;
}
#endif

int screendump(struct display *d, const char *file, const char *format, char *err,
	       size_t errlen)
{
	bool png = format && !strcmp(format, "png");
	uint8_t *row;
	FILE *f;
	int rc;

	if (format && !png && strcmp(format, "ppm")) {
		snprintf(err, errlen, "Parameter 'format' does not accept value '%s'", format);
		return -1;
	}
#ifndef HAVE_PNG
	if (png) {
		snprintf(err, errlen, "Enable PNG support with libpng for screendump");
		return -1;
	}
#endif
	if (!d || !d->hw_ops) {
		/* No video device (-vga none, machine none): QEMU has no console then. */
		snprintf(err, errlen, "There is no console to take a screendump from");
		return -1;
	}
	display_refresh(d);
	display_lock(d);
	if (!d->surface.pixels) {
		display_unlock(d);
		snprintf(err, errlen, "There is no surface for the console");
		return -1;
	}
	row = malloc((size_t)d->surface.width * 3);
	f = row ? fopen(file, "wb") : NULL;
	if (!f) {
		display_unlock(d);
		snprintf(err, errlen, "failed to open file '%s': %s", file, strerror(errno));
		free(row);
		return -1;
	}
#ifdef HAVE_PNG
	rc = png ? write_png(f, &d->surface, row) : write_ppm(f, &d->surface, row);
#else
	rc = write_ppm(f, &d->surface, row);
#endif
	display_unlock(d);
	free(row);
	if (fclose(f) != 0 || rc < 0) {
		snprintf(err, errlen, "failed to write file '%s': %s", file, strerror(errno));
		return -1;
	}
	return 0;
}
