/* What the command line asked for: the whole description of one VM, before it exists. */
#ifndef KESTREL_VMM_CONFIG_H
#define KESTREL_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "ui/chardev.h"

#define VM_DEFAULT_RAM (128ULL << 20)	/* QEMU's default -m */
#define VM_MAX_CPUS 255			/* xAPIC IDs, as QEMU's pc machine */

struct smp_config {
	unsigned cpus;		/* started at boot */
	unsigned sockets, cores, threads;
	unsigned maxcpus;	/* cpus + hotpluggable ones, listed in ACPI as disabled */
};

enum display_mode {
	DISPLAY_DEFAULT,	/* no display built in yet: behaves as -nographic */
	DISPLAY_NOGRAPHIC,
	DISPLAY_NONE,
};

struct debug_exit_config {
	bool enabled;
	uint16_t iobase;
	uint16_t iosize;
};

struct vm_config {
	uint64_t ram_size;
	struct smp_config smp;
	char *name;
	uint8_t uuid[16];
	bool has_uuid;
	const char *kernel;
	const char *initrd;
	const char *append;
	struct chardev_spec serial;	/* COM1 */
	bool serial_given;
	enum display_mode display;
	bool no_reboot;
	bool no_shutdown;
	bool daemonize;
	const char *pidfile;
	bool check_host;
	struct debug_exit_config debug_exit;
};

#endif
