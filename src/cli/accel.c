/*
 * -machine accel=, -accel, -enable-kvm: QEMU 7.2's configure_accelerators
 * and do_configure_accelerator (softmmu/vl.c) for a binary whose only
 * accelerator is KVM.  Their wording is what scripts and libvirt's logs
 * know, so it is kept ("invalid accelerator tcg" is what a QEMU built
 * without TCG says).
 */
#include "cli/accel.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/options_internal.h"
#include "util/log.h"
#include "util/opts.h"

int accel_machine_option(struct vm_config *cfg, const char *opt, const char *arg,
			 const char *list)
{
	struct accel_config *a = &cfg->accel;

	if (strlen(list) >= sizeof(a->machine_list))
		return err_invalid(opt, arg, "accel= list is too long");
	snprintf(a->machine_list, sizeof(a->machine_list), "%s", list);
	return 0;
}

/*
 * -accel kvm takes none of QEMU's kvm-accel properties (kernel-irqchip=,
 * kvm-shadow-mem=, dirty-ring-size=, ...): each is refused by name, with
 * QEMU's wording, rather than parsed and ignored.  Other names are checked
 * when the accelerators are configured, as QEMU does.
 */
int accel_option(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct accel_config *a = &cfg->accel;
	struct opts *o;
	const char *name, *key;
	char msg[160];
	int rc = 0;

	if (strcmp(arg, "help") == 0 || strcmp(arg, "?") == 0) {
		fprintf(out, "Accelerators supported in QEMU binary:\nkvm\n");
		return 1;
	}
	o = parse_list(opt, arg, "accel");
	if (!o)
		return -1;
	name = opts_get(o, "accel");
	key = opts_first_unused(o);
	if (name && strcmp(name, "kvm") == 0 && key) {
		snprintf(msg, sizeof(msg), "Property 'kvm-accel.%s' not found", key);
		rc = err_invalid(opt, arg, msg);
	} else if (a->nr_opts == VM_MAX_ACCELS) {
		rc = err_invalid(opt, arg, "too many -accel options");
	} else {
		a->opts[a->nr_opts++] = arg;
	}
	opts_free(o);
	return rc;
}

int accel_check(const struct vm_config *cfg)
{
	if (cfg->accel.nr_opts && cfg->accel.machine_list[0]) {
		log_error("The -accel and \"-machine accel=\" options are incompatible");
		return -1;
	}
	return 0;
}

/* The name of -accel's argument ("kvm" of "kvm,prop=..."). */
static void accel_name(const char *arg, char *name, size_t len)
{
	size_t n = strcspn(arg, ",");

	if (n >= len)
		n = len - 1;
	memcpy(name, arg, n);
	name[n] = '\0';
}

/*
 * Machine none could not open /dev/kvm: QEMU's two lines, then it goes on
 * without KVM when the list allows a fallback.  (The pc needs KVM:
 * kvm_host_open has said why, in its own words.)
 */
static int kvm_absent(const char *prefix, bool fallback)
{
	int err = errno;

	/* QEMU's kvm_init prints the first line unprefixed. */
	fprintf(stderr, "Could not access KVM kernel module: %s\n", strerror(err));
	log_error("%sfailed to initialize kvm: %s", prefix, strerror(err));
	if (!fallback)
		return -1;
	log_error("machine 'none' runs no guest code: continuing without an accelerator");
	return 0;
}

/* Tries the named accelerators in order (names[], prefixes[] for the -accel form). */
static int configure(const struct vm_config *cfg, char names[][16], const char **prefixes,
		     unsigned n, bool default_list, struct kvm_host *host, bool *kvm_enabled)
{
	bool init_failed = false;
	unsigned kvm_at = n;

	for (unsigned i = 0; i < n; i++) {
		if (strcmp(names[i], "kvm") == 0) {
			if (kvm_at == n)
				kvm_at = i;
			continue;
		}
		/* Filtered before any is tried, as QEMU does; tcg is absent from Kestrel. */
		log_error("%sinvalid accelerator %s", prefixes[i], names[i]);
		init_failed = true;
	}
	if (kvm_at == n) {
		if (!init_failed)
			log_error("no accelerator found");
		return -1;
	}
	int rc = cfg->machine == MACHINE_NONE ? kvm_host_try_open(host) : kvm_host_open(host);
	if (rc == KVM_HOST_ABSENT)
		return kvm_absent(prefixes[kvm_at], default_list || kvm_at + 1 < n);
	if (rc < 0)
		return -1;
	*kvm_enabled = true;
	if (init_failed)
		log_error("falling back to kvm");
	return 0;
}

int accel_configure(const struct vm_config *cfg, struct kvm_host *host, bool *kvm_enabled)
{
	const struct accel_config *a = &cfg->accel;
	char names[VM_MAX_ACCELS * 4][16];
	char prefixes[VM_MAX_ACCELS][200];
	const char *pfx[VM_MAX_ACCELS * 4];
	unsigned n = 0;

	*kvm_enabled = false;
	if (a->nr_opts) {
		for (unsigned i = 0; i < a->nr_opts; i++) {
			accel_name(a->opts[i], names[n], sizeof(names[n]));
			snprintf(prefixes[i], sizeof(prefixes[i]), "-accel %s: ", a->opts[i]);
			pfx[n++] = prefixes[i];
		}
		return configure(cfg, names, pfx, n, false, host, kvm_enabled);
	}
	if (!a->machine_list[0]) {
		/* No list: KVM, the only one built in; machine none may still start without it. */
		snprintf(names[0], sizeof(names[0]), "kvm");
		pfx[0] = "";
		return configure(cfg, names, pfx, 1, true, host, kvm_enabled);
	}
	const char *p = a->machine_list;
	while (n < VM_MAX_ACCELS * 4) {
		size_t len = strcspn(p, ":");
		if (len >= sizeof(names[n]))
			len = sizeof(names[n]) - 1;
		memcpy(names[n], p, len);
		names[n][len] = '\0';
		pfx[n++] = "";
		p += strcspn(p, ":");
		if (*p != ':')
			break;
		p++;
	}
	return configure(cfg, names, pfx, n, false, host, kvm_enabled);
}
