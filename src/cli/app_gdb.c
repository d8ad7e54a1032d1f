/*
 * The gdbstub of the kestrel process (-s, -gdb, HMP gdbserver): opened once
 * at start-up or from the monitor, pointed at each VM as resets rebuild it,
 * and its qRcmd lines run through the HMP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/app.h"
#include "cli/options.h"
#include "ui/hmp.h"
#include "util/log.h"
#include "vmm/gdb_kvm.h"

/* "monitor CMD" in gdb: the HMP line's output comes back as gdb console text. */
static int app_gdb_monitor(void *opaque, const char *line, char *out, size_t outlen)
{
	struct app *app = opaque;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return -1;
	(void)hmp_run_line(&app->control, line, f);
	if (fclose(f) != 0) {
		free(text);
		return -1;
	}
	snprintf(out, outlen, "%s", text ? text : "");
	free(text);
	return 0;
}

int app_gdb_start(struct app *app, const char *dev, char *err, size_t errlen)
{
	gdb_kvm_close(app->gdb);
	app->gdb = NULL;
	if (!dev || strcmp(dev, "none") == 0)
		return 0;
	if (options_gdb_check(dev, err, errlen) < 0)
		return -1;
	app->gdb = gdb_kvm_open(dev, app->cfg.smp.cpus, app_gdb_monitor, app, err, errlen);
	if (!app->gdb)
		return -1;
	if (app->vm)
		gdb_kvm_set_vm(app->gdb, app->vm, VM_RUNNING);
	log_debug("gdbstub listening on %s", gdb_kvm_address(app->gdb));
	return 0;
}

/* HMP gdbserver [DEV|none]: QEMU 7.2's hmp_gdbserver messages. */
int app_gdb_server(void *opaque, const char *dev, char *msg, size_t msglen)
{
	struct app *app = opaque;
	char err[256];

	if (!dev)
		dev = "tcp::1234";
	if (strcmp(dev, "none") == 0) {
		(void)app_gdb_start(app, NULL, err, sizeof(err));
		snprintf(msg, msglen, "Disabled gdbserver");
		return 0;
	}
	if (app_gdb_start(app, dev, err, sizeof(err)) < 0) {
		snprintf(msg, msglen, "Could not open gdbserver on device '%s'", dev);
		log_debug("%s", err);
		return -1;
	}
	snprintf(msg, msglen, "Waiting for gdb connection on device '%s'", dev);
	return 0;
}

/* At start-up: -gdb/-s's device; its failure ends the run as QEMU's does. */
int app_gdb_open(struct app *app)
{
	char err[256];

	if (!app->cfg.gdb_dev)
		return 0;
	if (app_gdb_start(app, app->cfg.gdb_dev, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}
