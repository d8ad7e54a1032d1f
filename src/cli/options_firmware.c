/* -bios, -boot, -hda..-hdd and -cdrom: QEMU's firmware-boot options. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/options_internal.h"
#include "util/log.h"
#include "util/size.h"
#include "vmm/firmware.h"

int options_bios(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	if (!*arg)
		return err_invalid(opt, arg, "a firmware file name is needed");
	cfg->bios = arg;
	return 0;
}

static int boot_letters(const char *opt, const char *arg, const char *value, char *dst,
			size_t room)
{
	uint8_t f1, f2;

	/* QEMU accepts a-p but only a, b, c, d and n mean anything on a PC. */
	if (strlen(value) >= room || firmware_cmos_boot_order(value, &f2, &f1) < 0)
		return err_invalid(opt, arg, "boot devices are up to three of a, b, c, d, n");
	strcpy(dst, value);
	return 0;
}

static int boot_ms(const char *opt, const char *arg, const char *value, int *out, int min)
{
	char *end;
	long v = strtol(value, &end, 10);

	if (!*value || *end || v < min || v > 65535)
		return err_invalid(opt, arg, "times are milliseconds, 0 to 65535");
	*out = (int)v;
	return 0;
}

/*
 * -boot splash=FILE: QEMU (hw/nvram/fw_cfg.c fw_cfg_bootsplash) warns, and
 * goes on, when the file is missing or not a JPEG or 24-bit BMP.  We warn the
 * same way; a good picture is still not shown, as there is no display for
 * the firmware to draw it on, and we say so rather than drop it silently.
 */
static void splash_warn(const char *path)
{
	unsigned char head[30] = { 0 };
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		log_warn("failed to find file '%s'", path);
		return;
	}
	n = fread(head, 1, sizeof(head), f);
	fclose(f);
	if (!(n >= 2 && head[0] == 0xff && head[1] == 0xd8) &&
	    !(n >= 30 && head[0] == 'B' && head[1] == 'M' && head[28] == 24 && head[29] == 0)) {
		log_warn("splash file '%s' format not recognized; must be JPEG or 24 bit BMP", path);
		return;
	}
	log_warn("splash file '%s' is not shown: there is no display for the firmware to draw it on",
		 path);
}

int options_boot(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o = parse_list(opt, arg, "order");
	struct boot_config *b = &cfg->boot;
	const char *order, *once, *splash, *reboot, *picture;
	int rc = -1;

	if (!o)
		return -1;
	order = opts_get(o, "order");
	once = opts_get(o, "once");
	splash = opts_get(o, "splash-time");
	reboot = opts_get(o, "reboot-timeout");
	picture = opts_get(o, "splash");
	/* QEMU 7.2's words: its -boot keys live under "boot." */
	if (!opts_get_bool(o, "menu", &b->menu)) {
		err_invalid(opt, arg, "Parameter 'boot.menu' expects 'on' or 'off'");
		goto out;
	}
	if (!opts_get_bool(o, "strict", &b->strict)) {
		err_invalid(opt, arg, "Parameter 'boot.strict' expects 'on' or 'off'");
		goto out;
	}
	if (check_unused(o, opt, arg) < 0)
		goto out;
	if ((order && boot_letters(opt, arg, order, b->order, sizeof(b->order)) < 0) ||
	    (once && boot_letters(opt, arg, once, b->once, sizeof(b->once)) < 0) ||
	    (splash && boot_ms(opt, arg, splash, &b->splash_time, 0) < 0) ||
	    (reboot && boot_ms(opt, arg, reboot, &b->reboot_timeout, -1) < 0))
		goto out;
	if (picture)
		splash_warn(picture);
	rc = 0;
out:
	opts_free(o);
	return rc;
}

/* -hda FILE is -drive file=FILE,index=0,media=disk (if=ide); -cdrom is index 2. */
int options_ide_shorthand(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	char spec[4200];
	int index = strcmp(opt, "cdrom") == 0 ? 2 : opt[2] - 'a';

	if (strlen(arg) > 4000 || strchr(arg, ','))
		return err_invalid(opt, arg, "file names with commas need -drive file=...,,...");
	snprintf(spec, sizeof(spec), "file=%s,if=ide,index=%d,media=%s", arg, index,
		 index == 2 && strcmp(opt, "cdrom") == 0 ? "cdrom" : "disk");
	return options_drive(cfg, opt, spec, out);
}

/* -fda FILE is -drive file=FILE,if=floppy,index=0; -fdb is index 1. */
int options_floppy_shorthand(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	char spec[4200];

	if (strlen(arg) > 4000 || strchr(arg, ','))
		return err_invalid(opt, arg, "file names with commas need -drive file=...,,...");
	snprintf(spec, sizeof(spec), "file=%s,if=floppy,index=%d", arg, opt[2] - 'a');
	return options_drive(cfg, opt, spec, out);
}
