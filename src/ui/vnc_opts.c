/*
 * QEMU's -vnc syntax (QEMU 7.2 ui/vnc.c vnc_display_open and its option
 * list): the address first, then key=value flags.  Only the options the
 * server carries out are accepted; every other one is refused by name.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ui/vnc.h"

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	if (!*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_bool(const char *val, bool *out)
{
	if (!val || !strcmp(val, "on") || !strcmp(val, "yes") || !strcmp(val, "true")) {
		*out = true;
		return 0;
	}
	if (!strcmp(val, "off") || !strcmp(val, "no") || !strcmp(val, "false")) {
		*out = false;
		return 0;
	}
	return -1;
}

/* HOST:D, :D, [V6]:D; the display number range is QEMU's (port fits 16 bits). */
static int parse_addr(const char *a, struct vnc_options *o, char *err, size_t errlen)
{
	const char *colon;
	size_t hl;

	if (!strncmp(a, "unix:", 5)) {
		if (!a[5] || strlen(a + 5) >= sizeof(o->path)) {
			snprintf(err, errlen, "unix socket path '%s' is empty or too long", a + 5);
			return -1;
		}
		o->kind = VNC_UNIX;
		strcpy(o->path, a + 5);
		return 0;
	}
	if (a[0] == '[') {
		const char *close = strchr(a, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "address '%s': expected [IPV6]:DISPLAY", a);
			return -1;
		}
		hl = (size_t)(close - a - 1);
		colon = close + 1;
		a++;
	} else {
		colon = strrchr(a, ':');
		if (!colon) {
			snprintf(err, errlen, "address '%s': expected HOST:DISPLAY, :DISPLAY, unix:PATH or none", a);
			return -1;
		}
		hl = (size_t)(colon - a);
	}
	if (hl >= sizeof(o->host)) {
		snprintf(err, errlen, "host name too long");
		return -1;
	}
	memcpy(o->host, a, hl);
	o->host[hl] = '\0';
	if (parse_int(colon + 1, 0, 65535 - VNC_PORT_BASE, &o->display) < 0) {
		snprintf(err, errlen, "can't convert to a number: %s", colon + 1);
		return -1;
	}
	o->kind = VNC_TCP;
	return 0;
}

static int parse_flag(struct vnc_options *o, const char *key, const char *val,
		      char *err, size_t errlen)
{
	if (!strcmp(key, "password") || !strcmp(key, "reverse") || !strcmp(key, "lossy")) {
		bool *b = key[0] == 'p' ? &o->password : key[0] == 'r' ? &o->reverse : &o->lossy;
		if (parse_bool(val, b) == 0)
			return 0;
		snprintf(err, errlen, "Parameter '%s' expects 'on' or 'off'", key);
		return -1;
	}
	if (!strcmp(key, "websocket")) {
		bool on;
		if (parse_bool(val, &on) == 0) {
			o->websocket = on ? 0 : -1;	/* 0: 5700 + display, fixed later */
			return 0;
		}
		if (parse_int(val, 1, 65535, &o->websocket) == 0)
			return 0;
		snprintf(err, errlen, "Parameter 'websocket' expects on, off or a port number");
		return -1;
	}
	if (!strcmp(key, "share")) {
		if (val && !strcmp(val, "allow-exclusive"))
			o->share = VNC_SHARE_ALLOW_EXCLUSIVE;
		else if (val && !strcmp(val, "force-shared")) {
			/*
			 * QEMU refuses a client asking for exclusive access; libvncserver
			 * keeps the ClientInit shared flag to itself (its neverShared
			 * refuses every second client), so this cannot be done faithfully.
			 */
			snprintf(err, errlen, "share=force-shared is not supported (libvncserver cannot "
				 "refuse only exclusive clients); use share=ignore or allow-exclusive");
			return -1;
		} else if (val && !strcmp(val, "ignore"))
			o->share = VNC_SHARE_IGNORE;
		else {
			snprintf(err, errlen, "unknown vnc share= option");
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "to")) {
		if (val && parse_int(val, 0, 65535 - VNC_PORT_BASE, &o->to) == 0)
			return 0;
		snprintf(err, errlen, "Parameter 'to' expects a display number");
		return -1;
	}
	snprintf(err, errlen, "Invalid parameter '%s'", key);
	return -1;
}

int vnc_parse(const char *arg, struct vnc_options *o, char *err, size_t errlen)
{
	char *copy, *part, *save = NULL;
	int rc = 0;

	memset(o, 0, sizeof(*o));
	o->websocket = -1;
	o->to = -1;
	copy = strdup(arg);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	part = strtok_r(copy, ",", &save);
	if (!part || !strcmp(part, "none")) {
		o->kind = VNC_OFF;
	} else if (strchr(part, '=')) {
		snprintf(err, errlen, "address missing before '%s'", part);
		rc = -1;
	} else {
		rc = parse_addr(part, o, err, errlen);
	}
	while (rc == 0 && (part = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(part, '=');
		if (eq)
			*eq++ = '\0';
		rc = parse_flag(o, part, eq, err, errlen);
	}
	free(copy);
	if (rc < 0)
		return -1;
	if (o->kind == VNC_OFF)
		return 0;
	if (o->to >= 0 && o->kind == VNC_TCP && !o->reverse && o->to < o->display) {
		snprintf(err, errlen, "to=%d is below the display number %d", o->to, o->display);
		return -1;
	}
	if (o->reverse && o->kind == VNC_TCP && o->display < 1) {
		snprintf(err, errlen, "reverse=on: the display is the viewer's port, 1..65535");
		return -1;
	}
	if (o->reverse && o->websocket >= 0) {
		snprintf(err, errlen, "WebSockets are not supported with reverse=on");
		return -1;
	}
	if (o->reverse && o->kind != VNC_TCP) {
		snprintf(err, errlen, "reverse=on needs HOST:PORT of a listening viewer");
		return -1;
	}
	if (o->kind == VNC_UNIX && (o->websocket == 0 || o->to >= 0)) {
		snprintf(err, errlen, "%s needs a TCP display", o->to >= 0 ? "to=" : "websocket=on");
		return -1;
	}
	if (o->websocket == 0)
		o->websocket = VNC_WS_PORT_BASE + o->display;
	return 0;
}
