/* HMP/QMP screendump: the display surface to a PPM (P6) or PNG file. */
#ifndef KESTREL_UI_SCREENDUMP_H
#define KESTREL_UI_SCREENDUMP_H

#include <stddef.h>

struct display;

/* format: NULL or "ppm", or "png" (with libpng); -1 with QEMU's message in err. */
int screendump(struct display *d, const char *file, const char *format, char *err,
	       size_t errlen);

#endif
