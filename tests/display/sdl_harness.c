/*
 * The SDL window over a synthetic video device, for tests/system/test_sdl.py
 * (this host has no KVM, so no VM can draw).  The device renders the same
 * pattern as vnc_harness.c; an input handler prints every key and pointer
 * event it receives.  The options go through the window's own parser.
 *
 *   sdl_harness [--rel] [--name NAME] [--no-quit] [--full-screen] [SDLOPTS]
 * SDLOPTS: what follows "sdl" in -display sdl,... (e.g. ",grab-mod=rctrl").
 * --rel registers a relative mouse (a PS/2 mouse) instead of a tablet.
 * stdin, one command a line: pattern SEED | resize W H | screendump FILE | quit
 * stdout: "READY", "KEY QNUM DOWN", "POINTER X Y DZ BUTTONS" (absolute),
 * "REL DX DY DZ BUTTONS", "QUIT" (the window asked to quit the VM), "OK",
 * "ERROR MSG".
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/display.h"
#include "core/input.h"
#include "ui/screendump.h"
#include "ui/sdl.h"

#include "fake_display.h"

static void on_rel(void *dev, int dx, int dy, int dz, unsigned buttons)
{
	say("REL %d %d %d %u", dx, dy, dz, buttons);
}

static const struct input_handler_ops input_ops = {
	.key = on_key, .abs = on_abs, .rel = on_rel,
};

static void on_quit(void *opaque)
{
	say("QUIT");
}

static void command(char *line, struct fake_vga *f)
{
	char err[256], a[512];
	int w, h;

	if (sscanf(line, "pattern %d", &w) == 1 || sscanf(line, "resize %d %d", &w, &h) == 2) {
		display_lock(f->d);
		if (line[0] == 'p') {
			f->seed = w;
		} else {
			f->width = w;
			f->height = h;
		}
		f->redraw = true;
		display_unlock(f->d);
		say("OK");
	} else if (sscanf(line, "screendump %511s", a) == 1) {
		if (screendump(f->d, a, NULL, err, sizeof(err)) < 0)
			say("ERROR %s", err);
		else
			say("OK");
	} else {
		say("ERROR unknown command");
	}
}

int main(int argc, char **argv)
{
	static struct display d;
	static struct input in;
	struct fake_vga f = { .d = &d, .width = 320, .height = 200, .seed = 1, .redraw = true };
	struct sdl_options o;
	const char *opts = "", *name = NULL;
	bool rel = false, no_quit = false, full = false;
	char err[256], line[1024];
	struct sdl *v;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--built-in")) {
			puts(sdl_built_in() ? "yes" : "no");
			return 0;
		} else if (!strcmp(argv[i], "--rel")) {
			rel = true;
		} else if (!strcmp(argv[i], "--no-quit")) {
			no_quit = true;
		} else if (!strcmp(argv[i], "--full-screen")) {
			full = true;
		} else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
			name = argv[++i];
		} else {
			opts = argv[i];
		}
	}
	sdl_defaults(&o);
	if (sdl_parse(opts, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "sdl_harness: -display sdl%s: %s\n", opts, err);
		return 1;
	}
	if (no_quit)
		o.window_close = false;
	if (full)
		o.full_screen = true;
	if (name)
		snprintf(o.name, sizeof(o.name), "%s", name);
	if (display_init(&d) != 0 || input_init(&in) != 0)
		return 1;
	display_set_hw(&d, &fake_ops, &f);
	input_register(&in, "harness", INPUT_KEYBOARD | (rel ? INPUT_MOUSE_REL : INPUT_MOUSE_ABS),
		       &input_ops, NULL);
	v = sdl_start(&o, &d, &in, on_quit, NULL, err, sizeof(err));
	if (!v) {
		fprintf(stderr, "sdl_harness: %s\n", err);
		return 1;
	}
	say("READY");
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, "quit"))
			break;
		command(line, &f);
	}
	sdl_stop(v);
	input_destroy(&in);
	display_destroy(&d);
	say("BYE");
	return 0;
}
