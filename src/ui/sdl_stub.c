/* The SDL window's entry points in a build without libsdl2. */
#include <stdio.h>

#include "ui/sdl.h"

bool sdl_built_in(void)
{
	return false;
}

struct sdl *sdl_start(const struct sdl_options *o, struct display *d, struct input *in,
		      sdl_quit_fn quit, void *opaque, char *err, size_t errlen)
{
	snprintf(err, errlen, "SDL is not built in (Kestrel was built without libsdl2)");
	return NULL;
}

void sdl_stop(struct sdl *s)
{
}

const struct sdl_options *sdl_options(const struct sdl *s)
{
	return NULL;
}
