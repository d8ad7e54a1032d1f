/*
 * What the option files share (options_internal.h): error reporting, key=value
 * lists, PCI addresses, drive lookup and the drive settings -drive and
 * -blockdev both take.  Every options_*.c may use this file; it uses none
 * of them, so the option files form no circle.
 */
#include <stdio.h>
#include <string.h>

#include "block/block.h"
#include "cli/options_internal.h"
#include "util/log.h"
#include "util/size.h"
#include "virtio/devices.h"

/* The JSON argument being parsed as its key=value list (options_json), or NULL. */
static const char *json_arg;

void options_json_shown(const char *arg)
{
	json_arg = arg;
}

/* Logs "-opt arg: why", arg as the user wrote it (JSON too), as QEMU does; returns -1. */
int err_invalid(const char *opt, const char *arg, const char *why)
{
	log_error("-%s %s: %s", opt, json_arg ? json_arg : arg, why);
	return -1;
}

/* Rejects keys nobody consumed; returns 0 when all were understood. */
int check_unused(struct opts *o, const char *opt, const char *arg)
{
	const char *key = opts_first_unused(o);
	char msg[128];

	if (!key)
		return 0;
	snprintf(msg, sizeof(msg), "Invalid parameter '%s'", key);
	return err_invalid(opt, arg, msg);
}

struct opts *parse_list(const char *opt, const char *arg, const char *implied)
{
	char err[160];
	struct opts *o = opts_parse(arg, implied, err, sizeof(err));

	if (!o)
		err_invalid(opt, arg, err);
	return o;
}

struct drive_config *find_drive(struct vm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->nr_drives; i++)
		if (strcmp(cfg->drives[i].id, id) == 0)
			return &cfg->drives[i];
	return NULL;
}

/* addr=SLOT[.0] (hex or decimal, QEMU's "slot.function"); -1 when absent. */
int options_pci_addr(const char *addr, int *slot)
{
	char buf[16];
	uint64_t n;
	char *dot;

	*slot = -1;
	if (!addr)
		return 0;
	snprintf(buf, sizeof(buf), "%s", addr);
	dot = strchr(buf, '.');
	if (dot) {
		if (strcmp(dot, ".0") != 0)
			return -1;	/* multifunction devices are not modelled */
		*dot = '\0';
	}
	if (strncmp(buf, "0x", 2) != 0) {
		/* QEMU reads addr= as hex even without 0x. */
		char hex[20];
		snprintf(hex, sizeof(hex), "0x%s", buf);
		if (!uint_parse(hex, &n))
			return -1;
	} else if (!uint_parse(buf, &n)) {
		return -1;
	}
	if (n == 0 || n >= 32)
		return -1;	/* slot 0 is the host bridge */
	*slot = (int)n;
	return 0;
}

int options_overlap_check(struct opts *o, const char *fmt, struct drive_config *d,
			  const char *opt, const char *arg)
{
	const char *mode = opts_get(o, "overlap-check");
	const char *tmpl = opts_get(o, "overlap-check.template");
	char msg[200];

	if (!mode && !tmpl)
		return 0;
	/* QEMU's messages (block/qcow2.c qcow2_update_options_prepare). */
	if (fmt && strcmp(fmt, "qcow2")) {
		snprintf(msg, sizeof(msg), "Block format '%s' does not support the option "
			 "'overlap-check'", fmt);
		return err_invalid(opt, arg, msg);
	}
	if (mode && tmpl && strcmp(mode, tmpl)) {
		snprintf(msg, sizeof(msg), "Conflicting values for qcow2 options 'overlap-check' "
			 "('%s') and 'overlap-check.template' ('%s')", mode, tmpl);
		return err_invalid(opt, arg, msg);
	}
	if (block_overlap_check_flags(mode ? mode : tmpl, &d->flags) < 0) {
		snprintf(msg, sizeof(msg), "Unsupported value '%s' for qcow2 option 'overlap-check'. "
			 "Allowed are any of the following: none, constant, cached, all",
			 mode ? mode : tmpl);
		return err_invalid(opt, arg, msg);
	}
	return 0;
}

/*
 * discard=, aio= and detect-zeroes= of a -drive or a -blockdev node, with
 * QEMU's rules: aio=native needs O_DIRECT (direct; direct_key says which
 * option gives it) and detect-zeroes=unmap needs discard=unmap.  A key that
 * is absent leaves d as it is.
 */
int options_drive_io(struct drive_config *d, const char *discard, const char *aio,
		     const char *detect, bool direct, const char *direct_key, const char *opt,
		     const char *arg)
{
	char msg[160];

	if (discard && strcmp(discard, "unmap") && strcmp(discard, "on") &&
	    strcmp(discard, "ignore") && strcmp(discard, "off"))
		return err_invalid(opt, arg, "discard= must be unmap or ignore");
	if (discard)
		d->discard = !strcmp(discard, "unmap") || !strcmp(discard, "on");
	if (aio && strcmp(aio, "threads") && strcmp(aio, "io_uring") && strcmp(aio, "native"))
		return err_invalid(opt, arg, "aio= must be threads, io_uring or native");
	if (aio && !strcmp(aio, "native") && !direct) {
		snprintf(msg, sizeof(msg), "aio=native was specified, but it requires %s, "
			 "which was not specified.", direct_key);
		return err_invalid(opt, arg, msg);
	}
	if (aio) {
		d->aio_io_uring = !strcmp(aio, "io_uring");
		d->aio_native = !strcmp(aio, "native");
	}
	if (detect && !strcmp(detect, "on"))
		d->detect_zeroes = BLK_DETECT_ZEROES_ON;
	else if (detect && !strcmp(detect, "unmap"))
		d->detect_zeroes = BLK_DETECT_ZEROES_UNMAP;
	else if (detect && strcmp(detect, "off"))
		return err_invalid(opt, arg, "detect-zeroes= must be off, on or unmap");
	if (d->detect_zeroes == BLK_DETECT_ZEROES_UNMAP && !d->discard)
		return err_invalid(opt, arg, "setting detect-zeroes to unmap is not allowed without "
				   "setting discard operation to unmap");
	return 0;
}
