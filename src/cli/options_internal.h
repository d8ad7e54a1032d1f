/*
 * What the option parser's files share.  options_common.c holds the helpers
 * every options_*.c may call; the others call each other only downward
 * (options.c's table -> devices -> net, memory; firmware -> devices).
 */
#ifndef KESTREL_CLI_OPTIONS_INTERNAL_H
#define KESTREL_CLI_OPTIONS_INTERNAL_H

#include <stdio.h>

#include "util/opts.h"
#include "vmm/config.h"

/*
 * Every option's parser has this one shape, so the table in options.c names
 * it directly: arg (NULL for a flag) goes into cfg; out is where help and
 * lists go.  Returns 0, 1 when the run is done (help printed), or -1 after
 * logging why.
 */
typedef int option_parser(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);

/* options_common.c */
/* Logs "-opt arg: why"; returns -1. */
int err_invalid(const char *opt, const char *arg, const char *why);
/* While a JSON argument's list form is parsed: the text err_invalid shows (NULL: none). */
void options_json_shown(const char *arg);
/* Rejects keys nobody consumed; returns 0 when all were understood. */
int check_unused(struct opts *o, const char *opt, const char *arg);
/* Parses a key=value list, logging the syntax error; NULL on failure. */
struct opts *parse_list(const char *opt, const char *arg, const char *implied);
struct drive_config *find_drive(struct vm_config *cfg, const char *id);
/* addr=SLOT[.0] for PCI devices; *slot = -1 when addr is NULL. */
int options_pci_addr(const char *addr, int *slot);
/*
 * qcow2's overlap-check= (or overlap-check.template=) on a -drive or
 * -blockdev of format fmt (NULL: probed) into the drive's BLOCK_OL_* flags.
 */
int options_overlap_check(struct opts *o, const char *fmt, struct drive_config *d,
			  const char *opt, const char *arg);
/*
 * discard=, aio= and detect-zeroes= of a -drive or -blockdev node: aio=native
 * needs direct (direct_key names the option that gives it in the message),
 * detect-zeroes=unmap needs discard=unmap; absent keys leave d as it is.
 */
int options_drive_io(struct drive_config *d, const char *discard, const char *aio,
		     const char *detect, bool direct, const char *direct_key, const char *opt,
		     const char *arg);

/* options_json.c: JSON arguments (libvirt's -object, -device, -netdev, -audiodev). */
/* The JSON object arg flattened (QEMU's qdict_flatten), nulls marked; NULL after logging. */
struct opts *options_json_opts(const char *opt, const char *arg);
/* Parses arg as JSON and calls parse with the key=value list that means the same. */
int options_json(option_parser *parse, struct vm_config *cfg, const char *opt, const char *arg,
		 const char *implied, FILE *out);

/* options_platform.c: -cpu, -machine usb/vmport/hpet, -no-hpet, -global, -rtc, -audiodev. */
int options_cpu(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_machine_platform(struct vm_config *cfg, struct opts *o, const char *opt,
			     const char *arg);
int options_no_hpet(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_smbios_refused(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_global(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_rtc(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_audiodev(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);

/* options_devices.c */
int options_drive(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_virtio_device(struct vm_config *cfg, struct opts *o, const char *driver,
			  const char *opt, const char *arg);
void options_device_help(FILE *out);
/* options_blockdev.c */
int options_blockdev(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
/* options_firmware.c */
int options_bios(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_boot(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_ide_shorthand(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_floppy_shorthand(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);

/* Cross-checks drives and devices once all options are read. */
int options_check_devices(struct vm_config *cfg);
/* options_usb.c: -usb, -usbdevice, -device piix3-usb-uhci and usb-tablet/mouse/kbd. */
int options_usb(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_usbdevice(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
bool options_is_usb_driver(const char *driver);
int options_usb_device(struct vm_config *cfg, struct opts *o, const char *driver,
		       const char *opt, const char *arg);
int options_check_usb(struct vm_config *cfg);

/* options_net.c: -net, -netdev, -nic and -device virtio-net-pci. */
int options_net(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_netdev(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_nic(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_net_device(struct vm_config *cfg, struct opts *o, const char *opt, const char *arg);
void options_nic_models(FILE *out);
int options_check_net(struct vm_config *cfg);
void options_free_net(struct vm_config *cfg);

/* options_throttle.c: -drive's I/O limits, -object throttle-group, -blockdev driver=throttle. */
int options_drive_throttle(struct opts *o, struct drive_config *d, const char *opt,
			   const char *arg);
int options_object_throttle_group(struct opts *o, const char *opt, const char *arg);
int options_blockdev_throttle(struct vm_config *cfg, struct opts *o, struct drive_config *d,
			      const char *opt, const char *arg);

/* options_memory.c */
int options_object(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
/* key-secret=ID of a drive (an encrypted format's key): the secret must exist already. */
int options_key_secret(struct opts *o, const char *key, struct drive_config *d, const char *opt,
		       const char *arg);
int options_machine_memory(struct vm_config *cfg, struct opts *o, const char *opt, const char *arg);
int options_numa(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_overcommit(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_balloon(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
/* options_gdb.c: -s (arg NULL) and -gdb DEV. */
int options_gdb(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
int options_balloon_device(struct vm_config *cfg, struct opts *o, int slot, const char *opt,
			   const char *arg);
/* Decides what backs RAM (backends, NUMA nodes) once all options are read. */
int options_check_memory(struct vm_config *cfg);
void options_free_memory(struct vm_config *cfg);

#endif
