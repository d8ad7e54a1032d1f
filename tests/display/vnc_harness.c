/*
 * The VNC server over a synthetic video device, for tests/system/test_vnc.py
 * (this host has no KVM, so no VM can draw).  The device renders a
 * deterministic pattern that the tests compute too; an input handler prints
 * every key and pointer event it receives.  The -vnc and -k arguments go
 * through the VMM's own parsers.
 *
 *   vnc_harness VNCARG [LAYOUT]
 * stdin, one command a line:
 *   password [PW]        change vnc password (none: clear it)
 *   pattern SEED         draw the pattern with another seed
 *   resize W H           change the mode
 *   query | info         query-vnc JSON | info vnc text
 *   screendump FILE [F]  the screen to FILE (ppm or png)
 *   quit
 * stdout: "LISTENING PORT", "EVENT NAME JSON", "KEY QNUM DOWN",
 * "POINTER X Y DZ BUTTONS", "OK" or "ERROR MSG" after each command.
 */
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/display.h"
#include "core/input.h"
#include "ui/keymap.h"
#include "ui/screendump.h"
#include "ui/vnc.h"

#include "fake_display.h"

static const struct input_handler_ops input_ops = { .key = on_key, .abs = on_abs };

static void on_event(void *opaque, const char *event, struct json_object *data)
{
	say("EVENT %s %s", event, json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN));
	json_object_put(data);
}

static void command(char *line, struct fake_vga *f, struct vnc *v)
{
	char err[256], a[512], b[64];
	int w, h;

	if (sscanf(line, "password %63s", b) == 1 || !strcmp(line, "password")) {
		if (vnc_set_password(v, strcmp(line, "password") ? b : NULL, err, sizeof(err)) < 0)
			say("ERROR %s", err);
		else
			say("OK");
	} else if (sscanf(line, "pattern %d", &w) == 1) {
		display_lock(f->d);
		f->seed = w;
		f->redraw = true;
		display_unlock(f->d);
		say("OK");
	} else if (sscanf(line, "resize %d %d", &w, &h) == 2) {
		display_lock(f->d);
		f->width = w;
		f->height = h;
		f->redraw = true;
		display_unlock(f->d);
		say("OK");
	} else if (!strcmp(line, "query")) {
		struct json_object *q = vnc_query(v);
		say("%s", json_object_to_json_string_ext(q, JSON_C_TO_STRING_PLAIN));
		json_object_put(q);
	} else if (!strcmp(line, "info")) {
		pthread_mutex_lock(&out_lock);
		vnc_info(v, stdout);
		pthread_mutex_unlock(&out_lock);
		say("OK");
	} else if (sscanf(line, "screendump %511s %63s", a, b) >= 1) {
		if (screendump(f->d, a, strstr(line, a)[strlen(a)] ? b : NULL, err,
			       sizeof(err)) < 0)
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
	struct fake_vga f = { .d = &d, .width = 640, .height = 480, .seed = 1, .redraw = true };
	struct vnc_options o;
	char err[256], line[1024];
	struct vnc *v;

	if (argc < 2) {
		fprintf(stderr, "usage: vnc_harness VNCARG [LAYOUT] | --built-in\n");
		return 2;
	}
	if (!strcmp(argv[1], "--built-in")) {
		puts(vnc_built_in() ? "yes" : "no");
		return 0;
	}
	if (vnc_parse(argv[1], &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "vnc_harness: -vnc %s: %s\n", argv[1], err);
		return 1;
	}
	if (argc > 2 && (o.keymap = keymap_find(argv[2])) < 0) {
		fprintf(stderr, "vnc_harness: could not read keymap file: '%s'\n", argv[2]);
		return 1;
	}
	if (display_init(&d) != 0 || input_init(&in) != 0)
		return 1;
	display_set_hw(&d, &fake_ops, &f);
	input_register(&in, "harness", INPUT_KEYBOARD | INPUT_MOUSE_ABS, &input_ops, NULL);
	v = vnc_start(&o, &d, &in, on_event, NULL, err, sizeof(err));
	if (!v) {
		fprintf(stderr, "vnc_harness: %s\n", err);
		return 1;
	}
	say("LISTENING %d", vnc_port(v));
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, "quit"))
			break;
		command(line, &f, v);
	}
	vnc_stop(v);
	input_destroy(&in);
	display_destroy(&d);
	say("BYE");
	return 0;
}
