/*
 * I/O limits on the command line, as QEMU 7.2 spells them:
 *
 *   -drive ...,iops=N,iops_rd=,iops_wr=,bps=,bps_rd=,bps_wr=, their _max,
 *          iops_size=, group=  (blockdev.c renames them to throttling.*)
 *   -drive ...,throttling.iops-total=N,...,throttling.bps-write-max-length=S,
 *          throttling.iops-size=, throttling.group=
 *   -object throttle-group,id=G,x-iops-total=N,limits.bps-read=N,...
 *   -blockdev driver=throttle,node-name=T,throttle-group=G,file=NODE
 *
 * QEMU has no legacy spelling of the burst lengths (iops_max_length is an
 * unknown option there too); they come as throttling.*-max-length only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "block/throttle.h"
#include "cli/options_internal.h"

/* QEMU's -drive legacy names (blockdev.c's qemu_opt_rename list). */
static const struct { const char *legacy, *name; } legacy_names[] = {
	{ "iops", "iops-total" }, { "iops_rd", "iops-read" }, { "iops_wr", "iops-write" },
	{ "bps", "bps-total" }, { "bps_rd", "bps-read" }, { "bps_wr", "bps-write" },
	{ "iops_max", "iops-total-max" }, { "iops_rd_max", "iops-read-max" },
	{ "iops_wr_max", "iops-write-max" }, { "bps_max", "bps-total-max" },
	{ "bps_rd_max", "bps-read-max" }, { "bps_wr_max", "bps-write-max" },
	{ "iops_size", "iops-size" }, { "group", "group" },
};

/* The throttling.* name a -drive key means, or NULL. */
static const char *limit_name(const char *key)
{
	for (size_t i = 0; i < sizeof(legacy_names) / sizeof(legacy_names[0]); i++)
		if (!strcmp(key, legacy_names[i].legacy))
			return legacy_names[i].name;
	return !strncmp(key, "throttling.", 11) ? key + 11 : NULL;
}

/* QEMU_OPT_NUMBER (qemu_strtou64, base 0: a minus sign wraps round). */
static bool parse_number(const char *v, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(v, &end, 0);
	return *v && !*end && !errno;
}

int options_drive_throttle(struct opts *o, struct drive_config *d, const char *opt,
			   const char *arg)
{
	char msg[160], err[160];

	throttle_config_init(&d->throttle);
	for (size_t i = 0; i < o->count; i++) {
		const char *name = limit_name(o->items[i].key), *v = o->items[i].value;
		uint64_t n;
		int r;

		if (!name)
			continue;
		if (!strcmp(name, "group")) {
			o->items[i].used = true;
			if (!*v || strlen(v) >= sizeof(d->throttle_group))
				return err_invalid(opt, arg, "group= is 1 to 31 characters");
			strcpy(d->throttle_group, v);
			continue;
		}
		if (!throttle_config_get(&d->throttle, name, &n))
			continue;	/* unknown: check_unused names it */
		o->items[i].used = true;
		if (!parse_number(v, &n)) {
			snprintf(msg, sizeof(msg), "Parameter 'throttling.%s' expects a number", name);
			return err_invalid(opt, arg, msg);
		}
		snprintf(msg, sizeof(msg), "throttling.%s", name);
		r = throttle_config_set(&d->throttle, name, n, msg, err, sizeof(err));
		if (r < 0)
			return err_invalid(opt, arg, err);
	}
	if (throttle_config_check(&d->throttle, err, sizeof(err)) < 0)
		return err_invalid(opt, arg, err);
	d->throttled = throttle_config_enabled(&d->throttle);
	return 0;
}

/* -object throttle-group: the group exists from now on, for drives to name. */
int options_object_throttle_group(struct opts *o, const char *opt, const char *arg)
{
	const char *id = opts_get(o, "id");
	struct throttle_config c;
	char err[160];

	if (throttle_object_limits(&c, o, err, sizeof(err)) < 0)
		return err_invalid(opt, arg, err);
	if (check_unused(o, opt, arg) < 0)
		return -1;
	if (!id || !*id)
		return err_invalid(opt, arg, "Parameter 'id' is missing");
	if (block_secret_lookup(id, NULL) || throttle_group_exists(id)) {
		snprintf(err, sizeof(err), "attempt to add duplicate property '%s' to object "
			 "(type 'container')", id);
		return err_invalid(opt, arg, err);
	}
	if (throttle_group_new(id, &c, err, sizeof(err)) < 0)
		return err_invalid(opt, arg, err);
	return 0;
}

/*
 * -blockdev driver=throttle,throttle-group=G,file=NODE: NODE's drive, now
 * named by this node and in group G (an -object throttle-group given first).
 */
int options_blockdev_throttle(struct vm_config *cfg, struct opts *o, struct drive_config *d,
			      const char *opt, const char *arg)
{
	const char *group = opts_get(o, "throttle-group"), *ref = opts_get(o, "file");
	struct drive_config *f;
	char msg[160], id[sizeof(d->id)];

	if (!ref)
		return err_invalid(opt, arg, "A block device must be specified for \"file\"");
	f = find_drive(cfg, ref);
	if (!f || !f->blockdev) {
		snprintf(msg, sizeof(msg), "Cannot find device='%s' nor node-name='%s'", ref, ref);
		return err_invalid(opt, arg, msg);
	}
	if (!group)
		return err_invalid(opt, arg, "Please specify a throttle group");
	if (!throttle_group_exists(group) || strlen(group) >= sizeof(d->throttle_group)) {
		snprintf(msg, sizeof(msg), "Throttle group '%s' does not exist", group);
		return err_invalid(opt, arg, msg);
	}
	if (check_unused(o, opt, arg) < 0)
		return -1;
	/* The filter takes its child's drive over, as a format node takes its file's. */
	strcpy(id, d->id);
	*d = *f;
	strcpy(d->id, id);
	strcpy(d->throttle_group, group);
	d->throttle_node = true;
	memmove(f, f + 1, (size_t)(cfg->drives + cfg->nr_drives - f - 1) * sizeof(*f));
	cfg->nr_drives--;
	return 0;
}
