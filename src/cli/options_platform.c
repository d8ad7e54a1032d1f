/*
 * The pc machine's switches that libvirt 9.0 sets at start: -cpu models,
 * -machine usb=/vmport=/hpet=, -no-hpet, -global for the PIT and the ACPI
 * PM device, -rtc and -audiodev.  Each value Kestrel accepts either changes
 * what the guest sees (CPUID, the CMOS clock, usb=on: the UHCI) or names the state Kestrel's
 * machine is in already (no VMware port, no HPET, no
 * \_S3/\_S4 in the DSDT, no audio device; see kestrel(1)); any other value
 * is refused by name, in QEMU 7.2's words where QEMU has them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/options_internal.h"
#include "util/log.h"
#include "util/size.h"

int options_cpu(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	char model[32], msg[200];
	size_t n = strcspn(arg, ",");
	struct opts *o;
	bool host;
	int rc = -1;

	if (strcmp(arg, "help") == 0 || strcmp(arg, "?") == 0) {
		fprintf(out, "Available CPUs:\n"
			     "  host    KVM processor with all supported host features\n"
			     "  max     Enables all features supported by the accelerator (= host)\n"
			     "  qemu64  QEMU Virtual CPU version 2.5+\n");
		return 1;
	}
	snprintf(model, sizeof(model), "%.*s", (int)(n < sizeof(model) ? n : sizeof(model) - 1), arg);
	host = !strcmp(model, "host") || !strcmp(model, "max");
	if (!host && strcmp(model, "qemu64")) {
		snprintf(msg, sizeof(msg), "unable to find CPU model '%s'", model);
		return err_invalid(opt, arg, msg);
	}
	o = parse_list(opt, arg, "model");
	if (!o)
		return -1;
	opts_get(o, "model");
	cfg->cpu.model = host ? CPU_MODEL_HOST : CPU_MODEL_QEMU64;
	cfg->cpu_given = true;
	cfg->cpu.migratable = true;	/* QEMU's default for host and max */
	if (host && !opts_get_bool(o, "migratable", &cfg->cpu.migratable)) {
		snprintf(msg, sizeof(msg), "can't apply global %s-x86_64-cpu.migratable=%s: "
			 "Parameter 'migratable' expects 'on' or 'off'", model,
			 opts_get(o, "migratable"));
		err_invalid(opt, arg, msg);
		goto out;
	}
	if (opts_first_unused(o)) {
		snprintf(msg, sizeof(msg), "CPU property '%s' is not supported (kestrel takes "
			 "host[,migratable=on|off], max or qemu64 without feature flags)",
			 opts_first_unused(o));
		err_invalid(opt, arg, msg);
		goto out;
	}
	rc = 0;
out:
	opts_free(o);
	return rc;
}

/* An on/off key that only its off value describes Kestrel's machine. */
static int off_only(struct opts *o, const char *key, const char *what, const char *opt,
		    const char *arg)
{
	bool on = false;
	char msg[200];

	if (!opts_get_bool(o, key, &on)) {
		snprintf(msg, sizeof(msg), "Parameter '%s' expects 'on' or 'off'", key);
		return err_invalid(opt, arg, msg);
	}
	if (!on)
		return 0;
	snprintf(msg, sizeof(msg), "%s=on is not supported: %s", key, what);
	return err_invalid(opt, arg, msg);
}

/* -machine usb=, vmport=, hpet=, acpi= (called before check_unused). */
int options_machine_platform(struct vm_config *cfg, struct opts *o, const char *opt,
			     const char *arg)
{
	const char *vmport = opts_get(o, "vmport"), *acpi = opts_get(o, "acpi");
	char msg[200];

	/* acpi=on|auto is what the pc machine is; off (libvirt's <features> without <acpi/>) is not. */
	if (acpi && strcmp(acpi, "on") && strcmp(acpi, "auto")) {
		if (strcmp(acpi, "off"))
			snprintf(msg, sizeof(msg), "Parameter 'acpi' does not accept value '%s'",
				 acpi);
		else
			snprintf(msg, sizeof(msg), "acpi=off is not supported: kestrel's pc machine "
				 "always gives the guest ACPI tables");
		return err_invalid(opt, arg, msg);
	}

	bool usb = false;

	if (!opts_get_bool(o, "usb", &usb))
		return err_invalid(opt, arg, "Parameter 'usb' expects 'on' or 'off'");
	/* usb=on: the PIIX3 UHCI, as -usb; off leaves out only that default one. */
	if (usb)
		cfg->usb.uhci = true;
	if (off_only(o, "hpet", "kestrel's pc machine has no HPET", opt, arg) < 0)
		return -1;
	if (vmport && strcmp(vmport, "off")) {
		if (strcmp(vmport, "on") && strcmp(vmport, "auto")) {
			snprintf(msg, sizeof(msg), "Parameter 'vmport' does not accept value '%s'",
				 vmport);
			return err_invalid(opt, arg, msg);
		}
		snprintf(msg, sizeof(msg), "vmport=%s is not supported: kestrel's pc machine has "
			 "no VMware I/O port (give vmport=off)", vmport);
		return err_invalid(opt, arg, msg);
	}
	return 0;
}

/*
 * -smbios: Kestrel hands the firmware no SMBIOS tables (SeaBIOS then builds
 * its defaults), so none of its fields can be set: refused, not ignored.
 */
int options_smbios_refused(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	return err_invalid(opt, arg, "SMBIOS tables are not supported: kestrel gives the "
			   "firmware none to fill in");
}

/* -no-hpet: Kestrel's pc machine has no HPET to leave out. */
int options_no_hpet(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	return 0;
}

/* -global DRIVER.PROPERTY=VALUE, for the properties libvirt sets on the pc machine. */
int options_global(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	const char *eq = strchr(arg, '=');
	char prop[64], msg[300];
	const char *value;
	uint64_t n;

	if (!eq || !strchr(arg, '.') || strchr(arg, '.') > eq) {
		snprintf(msg, sizeof(msg), "Invalid parameter '%.*s' (give DRIVER.PROPERTY=VALUE)",
			 (int)(eq ? eq - arg : (long)strlen(arg)), arg);
		return err_invalid(opt, arg, msg);
	}
	snprintf(prop, sizeof(prop), "%.*s", (int)(eq - arg), arg);
	value = eq + 1;
	if (!strcmp(prop, "kvm-pit.lost_tick_policy")) {
		/* QEMU's kvm-pit: delay is KVM's in-kernel PIT reinjecting every lost tick. */
		if (!strcmp(value, "delay"))
			return 0;
		if (strcmp(value, "discard") && strcmp(value, "slew")) {
			snprintf(msg, sizeof(msg), "can't apply global %s: Parameter "
				 "'lost_tick_policy' does not accept value '%s'", arg, value);
			return err_invalid(opt, arg, msg);
		}
		snprintf(msg, sizeof(msg), "can't apply global %s: Lost tick policy not supported "
			 "(kestrel's in-kernel PIT always reinjects: delay)", arg);
		return err_invalid(opt, arg, msg);
	}
	if (!strcmp(prop, "PIIX4_PM.disable_s3") || !strcmp(prop, "PIIX4_PM.disable_s4")) {
		const char *key = prop + strlen("PIIX4_PM.");
		if (!uint_parse(value, &n)) {
			snprintf(msg, sizeof(msg), "can't apply global %s: Parameter '%s' expects "
				 "uint64", arg, key);
			return err_invalid(opt, arg, msg);
		}
		if (n)
			return 0;	/* acpi.c's DSDT has no \_S3 or \_S4: the guest sees none */
		snprintf(msg, sizeof(msg), "%s=0 is not supported: kestrel's ACPI tables offer no "
			 "S%c sleep state", prop, key[9]);
		return err_invalid(opt, arg, msg);
	}
	snprintf(msg, sizeof(msg), "can't apply global %s: kestrel has no such property "
		 "(it takes kvm-pit.lost_tick_policy, PIIX4_PM.disable_s3, PIIX4_PM.disable_s4)",
		 arg);
	return err_invalid(opt, arg, msg);
}

/* QEMU's configure_rtc_base_datetime: a UTC date, '2006-06-17T16:01:21' or '2006-06-17'. */
static int rtc_date(const char *s, int64_t *offset, time_t now)
{
	struct tm tm = { 0 };
	char tail;

	if (sscanf(s, "%d-%d-%dT%d:%d:%d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &tail) != 6) {
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		if (sscanf(s, "%d-%d-%d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tail) != 3)
			return -1;
	}
	if (tm.tm_year < 1900 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*offset = (int64_t)timegm(&tm) - (int64_t)now;
	return 0;
}

/* -rtc [base=utc|localtime|DATE][,clock=host][,driftfix=none|slew] */
int options_rtc(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o = parse_list(opt, arg, NULL);
	const char *base, *clock, *drift;
	char msg[200];
	int rc = -1;

	if (!o)
		return -1;
	base = opts_get(o, "base");
	clock = opts_get(o, "clock");
	drift = opts_get(o, "driftfix");
	if (check_unused(o, opt, arg) < 0)
		goto out;
	if (base && !strcmp(base, "utc")) {
		cfg->rtc.localtime = false;
		cfg->rtc.offset = 0;
	} else if (base && !strcmp(base, "localtime")) {
		cfg->rtc.localtime = true;
		cfg->rtc.offset = 0;
	} else if (base) {
		cfg->rtc.localtime = false;
		if (rtc_date(base, &cfg->rtc.offset, time(NULL)) < 0) {
			err_invalid(opt, arg, "invalid datetime format\nvalid formats: "
				    "'2006-06-17T16:01:21' or '2006-06-17'");
			goto out;
		}
	}
	if (clock && strcmp(clock, "host")) {
		snprintf(msg, sizeof(msg), strcmp(clock, "rt") && strcmp(clock, "vm")
			 ? "invalid option value '%s'" : "clock=%s is not supported: kestrel's "
			 "RTC follows the host clock (clock=host)", clock);
		err_invalid(opt, arg, msg);
		goto out;
	}
	if (drift && strcmp(drift, "none") && strcmp(drift, "slew")) {
		snprintf(msg, sizeof(msg), "invalid option value '%s'", drift);
		err_invalid(opt, arg, msg);
		goto out;
	}
	if (drift)
		cfg->rtc.driftfix_slew = !strcmp(drift, "slew");
	rc = 0;
out:
	opts_free(o);
	return rc;
}

/* -audiodev none,id=ID: the only driver for a machine with no audio device. */
static int audiodev_list(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	static const char *const drivers[] = { "alsa", "coreaudio", "dbus", "dsound", "jack",
					       "oss", "pa", "sdl", "spice", "wav", NULL };
	struct opts *o = parse_list(opt, arg, "driver");
	const char *driver, *id, *key;
	char msg[200];
	int rc = -1;

	if (!o)
		return -1;
	driver = opts_get(o, "driver");
	id = opts_get(o, "id");
	key = opts_first_unused(o);
	if (!driver) {
		err_invalid(opt, arg, "Parameter 'driver' is missing");
		goto out;
	}
	if (strcmp(driver, "none")) {
		bool known = false;
		for (const char *const *d = drivers; *d; d++)
			known |= !strcmp(*d, driver);
		if (known)
			snprintf(msg, sizeof(msg), "audio driver '%s' is not supported: kestrel has "
				 "no audio device (use -audiodev none)", driver);
		else
			snprintf(msg, sizeof(msg), "Parameter 'driver' does not accept value '%s'",
				 driver);
		err_invalid(opt, arg, msg);
		goto out;
	}
	if (key) {
		snprintf(msg, sizeof(msg), "Parameter '%s' is unexpected", key);
		err_invalid(opt, arg, msg);
		goto out;
	}
	if (!id || !*id) {
		err_invalid(opt, arg, "Parameter 'id' is missing");
		goto out;
	}
	snprintf(cfg->platform.audiodev, sizeof(cfg->platform.audiodev), "%s", id);
	rc = 0;
out:
	opts_free(o);
	return rc;
}

int options_audiodev(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	if (strcmp(arg, "help") == 0) {
		fprintf(out, "Available audio drivers:\nnone\n");
		return 1;
	}
	if (arg[0] == '{')
		return options_json(audiodev_list, cfg, opt, arg, "driver", out);
	return audiodev_list(cfg, opt, arg, out);
}
