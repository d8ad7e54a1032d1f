/*
 * -kernel/-initrd/-append under an explicit -bios: the kernel goes to the
 * firmware over fw_cfg, as on QEMU's pc machine, and QEMU's own option ROM
 * (linuxboot_dma.bin, Debian's qemu-system-data) loads and enters it.  The
 * ROM is the first boot entry ("/rom@genroms/..." in bootorder), so SeaBIOS
 * runs it after POST the way it would run a disk's boot sector.
 */
#include "vmm/firmware.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/file.h"
#include "util/log.h"
#include "vmm/boot/linuxboot.h"
#include "vmm/vm.h"

#define KERNEL_MAX_SIZE (512u << 20)
#define INITRD_MAX_SIZE (2u << 30)
#define ROM_MAX_SIZE (64u << 10)

static int add_rom(struct fw_cfg *fw)
{
	uint8_t *rom;
	size_t len;
	int rc;

	if (access(FIRMWARE_LINUXBOOT_ROM, R_OK) != 0) {
		log_error("-kernel with -bios needs QEMU's Linux loader ROM %s "
			  "(Debian package qemu-system-data); without -bios kestrel boots "
			  "the kernel directly", FIRMWARE_LINUXBOOT_ROM);
		return -1;
	}
	if (file_read_all("linuxboot ROM", FIRMWARE_LINUXBOOT_ROM, ROM_MAX_SIZE, &rom, &len) < 0)
		return -1;
	rc = fw_cfg_add_file(fw, "genroms/" FIRMWARE_LINUXBOOT_ROM_NAME, rom, len);
	free(rom);
	if (rc < 0)
		log_error("fw_cfg: no room for the linuxboot ROM");
	return rc;
}

/* QEMU's checks and load plan for the kernel, initrd and command line; logs why not. */
static int prepare(const struct vm_config *cfg, uint8_t *kernel, size_t kernel_len,
		   uint64_t initrd_size, uint64_t low_ram, struct linuxboot_plan *plan)
{
	const char *cmdline = cfg->append ? cfg->append : "";
	char err[256];

	if (linuxboot_prepare(kernel, kernel_len, cmdline, initrd_size, low_ram, plan, err,
			      sizeof(err)) == 0)
		return 0;
	/* Messages about -initrd or -append name their option themselves. */
	if (err[0] == '-')
		log_error("%s", err);
	else
		log_error("-kernel %s: %s", cfg->kernel, err);
	return -1;
}

int firmware_linux_check(const struct vm_config *cfg)
{
	struct guest_memory layout = { 0 };
	struct linuxboot_plan plan;
	uint64_t initrd_size = 0;
	uint8_t *kernel;
	size_t kernel_len;
	int rc;

	if (cfg->initrd && file_size("-initrd", cfg->initrd, &initrd_size) < 0)
		return -1;
	if (file_read_all("-kernel", cfg->kernel, KERNEL_MAX_SIZE, &kernel, &kernel_len) < 0)
		return -1;
	memory_layout(&layout, cfg->ram_size);
	rc = prepare(cfg, kernel, kernel_len, initrd_size, layout.regions[0].size, &plan);
	free(kernel);
	return rc;
}

int firmware_linux_setup(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	const char *cmdline = cfg->append ? cfg->append : "";
	struct fw_cfg *fw = &vm->fw_cfg;
	struct linuxboot_plan plan;
	uint8_t *kernel = NULL, *initrd = NULL;
	size_t kernel_len, initrd_len = 0;

	if (file_read_all("-kernel", cfg->kernel, KERNEL_MAX_SIZE, &kernel, &kernel_len) < 0)
		return -1;
	if (cfg->initrd &&
	    file_read_all("-initrd", cfg->initrd, INITRD_MAX_SIZE, &initrd, &initrd_len) < 0)
		goto fail;
	if (prepare(cfg, kernel, kernel_len, initrd_len, vm->mem.regions[0].size, &plan) < 0)
		goto fail;
	if (fw_cfg_add_u32(fw, FW_CFG_SETUP_ADDR, plan.setup_addr) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_SETUP_SIZE, plan.setup_size) < 0 ||
	    fw_cfg_add_bytes(fw, FW_CFG_SETUP_DATA, kernel, plan.setup_size) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_CMDLINE_ADDR, plan.cmdline_addr) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_CMDLINE_SIZE, plan.cmdline_size) < 0 ||
	    fw_cfg_add_bytes(fw, FW_CFG_CMDLINE_DATA, cmdline, plan.cmdline_size) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_KERNEL_ADDR, plan.kernel_addr) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_KERNEL_SIZE, plan.kernel_size) < 0)
		goto nomem;
	/* The protected-mode part moves to the front of the buffer fw_cfg then owns. */
	memmove(kernel, kernel + plan.setup_size, plan.kernel_size);
	if (fw_cfg_add_owned(fw, FW_CFG_KERNEL_DATA, kernel, plan.kernel_size) < 0) {
		kernel = NULL;
		goto nomem;
	}
	kernel = NULL;
	if (initrd) {
		if (fw_cfg_add_u32(fw, FW_CFG_INITRD_ADDR, plan.initrd_addr) < 0 ||
		    fw_cfg_add_u32(fw, FW_CFG_INITRD_SIZE, plan.initrd_size) < 0)
			goto nomem;
		if (fw_cfg_add_owned(fw, FW_CFG_INITRD_DATA, initrd, initrd_len) < 0) {
			initrd = NULL;
			goto nomem;
		}
		initrd = NULL;
	}
	return add_rom(fw) < 0 ? -1 : 0;
nomem:
	log_error("fw_cfg: no room for the kernel's items");
fail:
	free(kernel);
	free(initrd);
	return -1;
}
