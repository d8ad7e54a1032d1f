/*
 * What can be checked of a VM's configuration before /dev/kvm is opened: the
 * files the boot needs.  QEMU, too, reports a missing kernel or BIOS on a host
 * without KVM before it complains about the accelerator, so a typo gets its
 * own error on every host (and a 2 GiB initrd is refused by its size, not
 * after it was read).
 */
#include <stdint.h>

#include "util/file.h"
#include "core/memory.h"
#include "hw/fdc.h"
#include "util/log.h"
#include "vmm/boot/boot.h"
#include "vmm/firmware.h"
#include "vmm/vm.h"

/* Direct boot: the loaders place the initrd in RAM, so it must be smaller. */
static int check_direct_initrd(const struct vm_config *cfg)
{
	uint64_t size;

	if (file_size("-initrd", cfg->initrd, &size) < 0)
		return -1;
	if (size >= cfg->ram_size) {
		log_error("-initrd %s: %llu MiB does not fit in %llu MiB of guest RAM; increase -m",
			  cfg->initrd, (unsigned long long)(size >> 20) + 1,
			  (unsigned long long)(cfg->ram_size >> 20));
		return -1;
	}
	return 0;
}

int vm_preflight(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->memory.nr_backing; i++)
		if (memory_backing_check(&cfg->memory.backing[i]) < 0)
			return -1;
	if (vm_config_firmware_boot(cfg)) {
		if (firmware_check_bios(cfg->bios ? cfg->bios : FIRMWARE_DEFAULT_BIOS) < 0)
			return -1;
		return cfg->kernel ? firmware_linux_check(cfg) : 0;
	}
	if (boot_check_kernel(cfg->kernel) < 0)
		return -1;
	return cfg->initrd ? check_direct_initrd(cfg) : 0;
}

int vm_preflight_backends(const struct vm_config *cfg, struct block_dev *const *disks)
{
	char err[256];

	for (unsigned i = 0; i < cfg->nr_drives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		if (d->iface != DRIVE_IF_FLOPPY || !disks[i] || d->index < 0)
			continue;
		if (fdc_check_image(disks[i], (unsigned)d->index, err, sizeof(err)) < 0) {
			log_error("-fda: %s", err);
			return -1;
		}
	}
	return 0;
}
