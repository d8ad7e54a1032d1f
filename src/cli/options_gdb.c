/*
 * -s and -gdb DEV (QEMU's gdbstub options, issue 23).  DEV is checked here,
 * so a bad one is refused on any host; the socket opens at start-up
 * (app_gdb.c).  QEMU's -gdb takes any chardev; Kestrel serves the two that
 * gdb's "target remote" reaches: a TCP port and a Unix socket.
 */
#include <string.h>

#include "cli/options.h"
#include "cli/options_internal.h"

int options_gdb_check(const char *dev, char *why, size_t whylen)
{
	const char *port;

	if (strcmp(dev, "none") == 0)
		return 0;
	if (strncmp(dev, "tcp:", 4) == 0) {
		port = strrchr(dev + 4, ':');
		if (!port || !port[1] || strspn(port + 1, "0123456789") != strlen(port + 1) ||
		    strlen(port + 1) > 5) {
			snprintf(why, whylen, "expected tcp:[HOST]:PORT");
			return -1;
		}
		return 0;
	}
	if (strncmp(dev, "unix:", 5) == 0) {
		if (dev[5] == 0 || dev[5] == ',') {
			snprintf(why, whylen, "expected unix:PATH[,server][,wait=off]");
			return -1;
		}
		return 0;
	}
	snprintf(why, whylen, "only tcp:[HOST]:PORT and unix:PATH,server devices are supported "
		 "for the gdbstub (issue 23)");
	return -1;
}

int options_gdb(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	char why[160];

	(void)out;
	if (!arg) {
		/* -s: QEMU's shorthand for -gdb tcp::1234 (listening on loopback here). */
		cfg->gdb_dev = "tcp::1234";
		return 0;
	}
	if (options_gdb_check(arg, why, sizeof(why)) < 0)
		return err_invalid(opt, arg, why);
	cfg->gdb_dev = strcmp(arg, "none") == 0 ? NULL : arg;
	return 0;
}
