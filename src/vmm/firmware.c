#include "vmm/firmware.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "util/file.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/boot.h"
#include "util/log.h"
#include "vmm/boot/e820.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/table_loader.h"
#include "vmm/vm.h"

#define BOOT_DEV_FLOPPY 1
#define BOOT_DEV_DISK 2
#define BOOT_DEV_CDROM 3
#define BOOT_DEV_NET 4

int firmware_cmos_boot_order(const char *order, uint8_t *flag2, uint8_t *flag1)
{
	uint8_t dev[3] = { 0 };

	if (strlen(order) > 3)
		return -1;
	/* QEMU hw/i386/pc.c set_boot_dev: one nibble per device, at most three. */
	for (size_t i = 0; order[i]; i++) {
		switch (order[i]) {
		case 'a':
		case 'b':
			dev[i] = BOOT_DEV_FLOPPY;
			break;
		case 'c':
			dev[i] = BOOT_DEV_DISK;
			break;
		case 'd':
			dev[i] = BOOT_DEV_CDROM;
			break;
		case 'n':
			dev[i] = BOOT_DEV_NET;
			break;
		default:
			return -1;
		}
	}
	*flag2 = (uint8_t)(dev[1] << 4 | dev[0]);
	*flag1 = (uint8_t)(dev[2] << 4 | 1);	/* bit 0: do not check the floppy boot signature */
	return 0;
}

struct boot_path {
	unsigned index;
	char path[64];
};

static int by_index(const void *a, const void *b)
{
	const struct boot_path *x = a, *y = b;
	return (x->index > y->index) - (x->index < y->index);
}

/* Open Firmware paths as QEMU writes them, which SeaBIOS's boot.c matches. */
size_t firmware_bootorder(const struct vm *vm, char *buf, size_t room)
{
	const struct vm_config *cfg = vm->cfg;
	struct boot_path paths[VM_MAX_DEVICES + VM_MAX_DRIVES];
	unsigned n = 0;
	size_t len = 0;

	for (unsigned i = 0; i < cfg->nr_devices; i++) {
		const struct device_config *d = &cfg->devices[i];
		unsigned slot = i < vm->nr_virtio ? vm->virtio[i].pci.slot : 0;
		if (!d->has_bootindex || d->kind != DEVICE_VIRTIO_BLK)
			continue;
		paths[n].index = d->bootindex;
		snprintf(paths[n++].path, sizeof(paths[0].path), "/pci@i0cf8/scsi@%x/disk@0,0", slot);
	}
	for (unsigned i = 0; i < cfg->nr_drives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		if (!d->has_bootindex || d->iface != DRIVE_IF_IDE || d->index < 0)
			continue;
		paths[n].index = d->bootindex;
		snprintf(paths[n++].path, sizeof(paths[0].path), "/pci@i0cf8/ide@1,1/drive@%d/disk@%d",
			 d->index / 2, d->index % 2);
	}
	qsort(paths, n, sizeof(paths[0]), by_index);
	/* -kernel under -bios: QEMU gives the loader ROM bootindex 0, before everything. */
	if (cfg->kernel)
		len += (size_t)snprintf(buf, room, "/rom@genroms/%s\n", FIRMWARE_LINUXBOOT_ROM_NAME);
	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, len < room ? room - len : 0, "%s\n", paths[i].path);
	if (cfg->boot.strict)
		len += (size_t)snprintf(buf + len, len < room ? room - len : 0, "HALT\n");
	return len < room ? len : room - 1;
}

/* The guest's RAM as QEMU's etc/e820 lists it; SeaBIOS adds its own BIOS areas. */
static int add_e820(struct vm *vm)
{
	struct e820_entry e[3];
	unsigned n = 0;

	e[n++] = (struct e820_entry){ 0, vm->mem.regions[0].size, E820_RAM };
	if (vm->mem.nr_regions > 1)
		e[n++] = (struct e820_entry){ vm->mem.regions[1].gpa, vm->mem.regions[1].size,
					      E820_RAM };
	e[n++] = (struct e820_entry){ KVM_IDENTITY_MAP_ADDR, KVM_PRIVATE_SIZE, E820_RESERVED };
	return fw_cfg_add_file(&vm->fw_cfg, "etc/e820", e, n * sizeof(e[0]));
}

static int add_boot_entries(struct vm *vm)
{
	const struct boot_config *b = &vm->cfg->boot;
	struct fw_cfg *fw = &vm->fw_cfg;
	char order[1024];
	size_t len;

	if (fw_cfg_add_u16(fw, FW_CFG_BOOT_MENU, b->menu) < 0)
		return -1;
	if (b->menu && b->splash_time >= 0) {
		uint16_t wait = (uint16_t)b->splash_time;
		if (fw_cfg_add_file(fw, "etc/boot-menu-wait", &wait, 2) < 0)
			return -1;
	}
	/* As QEMU: always given, and -1 (the default) means "do not retry". */
	uint32_t fail_wait = (uint32_t)b->reboot_timeout;
	if (fw_cfg_add_file(fw, "etc/boot-fail-wait", &fail_wait, 4) < 0)
		return -1;
	len = firmware_bootorder(vm, order, sizeof(order));
	if (len && fw_cfg_add_file(fw, "bootorder", order, len + 1) < 0)
		return -1;
	return 0;
}

static int add_fw_cfg_entries(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	struct fw_cfg *fw = &vm->fw_cfg;
	struct acpi_config acpi = { .cpus = cfg->smp.cpus, .maxcpus = cfg->smp.maxcpus };
	struct acpi_numa numa;

	/* The SRAT/SLIT travel with the other tables through the table loader. */
	boot_numa_describe(cfg, &numa);
	acpi.numa = &numa;
	if (fw_cfg_add_u64(fw, FW_CFG_RAM_SIZE, cfg->ram_size) < 0 ||
	    fw_cfg_add_u16(fw, FW_CFG_NOGRAPHIC, 1) < 0 ||
	    fw_cfg_add_u16(fw, FW_CFG_NB_CPUS, (uint16_t)cfg->smp.cpus) < 0 ||
	    fw_cfg_add_u16(fw, FW_CFG_MAX_CPUS, (uint16_t)cfg->smp.maxcpus) < 0 ||
	    fw_cfg_add_u32(fw, FW_CFG_IRQ0_OVERRIDE, 1) < 0 ||
	    (cfg->has_uuid && fw_cfg_add_bytes(fw, FW_CFG_UUID, cfg->uuid, 16) < 0) ||
	    add_e820(vm) < 0 || add_boot_entries(vm) < 0 ||
	    table_loader_install(fw, &acpi) < 0)
		return -1;
	/*
	 * SeaBIOS's serial console (sercon) shows its screen output on COM1; with a
	 * VGA BIOS installed it chains to it (sercon.c), so the VGA shows it too.
	 */
	if (pc_has_part(vm, &vm->com1)) {
		uint16_t port = SERIAL_COM1_BASE;
		if (fw_cfg_add_file(fw, "etc/sercon-port", &port, 2) < 0)
			return -1;
	}
	return 0;
}

static int set_cmos_boot(struct vm *vm)
{
	const struct boot_config *b = &vm->cfg->boot;
	const char *order = b->order[0] ? b->order : "cad";
	uint8_t flag2, flag1;

	/* -boot once= holds for the first boot only; resets go back to order= (QEMU). */
	if (b->once[0] && vm->backends->boots == 0)
		order = b->once;
	if (firmware_cmos_boot_order(order, &flag2, &flag1) < 0)
		return -1;
	rtc_set_byte(&vm->rtc, CMOS_BOOT_FLAG2, flag2);
	rtc_set_byte(&vm->rtc, CMOS_BOOT_FLAG1, flag1);
	return fw_cfg_add_u16(&vm->fw_cfg, FW_CFG_BOOT_DEVICE, (uint16_t)order[0]);
}

/* Maps the ROM read-only below 4 GiB, where the reset vector (0xfffffff0) lies. */
static void fw_cfg_part_destroy(void *dev)
{
	fw_cfg_destroy(dev);
}

static int map_rom(struct vm *vm, const uint8_t *image, size_t len)
{
	struct kvm_userspace_memory_region slot = {
		.slot = FIRMWARE_ROM_SLOT,
		.guest_phys_addr = (1ULL << 32) - len,
		.memory_size = len,
	};
	size_t isa = len < FIRMWARE_ISA_BIOS_SIZE ? len : FIRMWARE_ISA_BIOS_SIZE;

	vm->rom = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->rom == MAP_FAILED) {
		vm->rom = NULL;
		log_error("-bios: cannot allocate %zu KiB: %s", len >> 10, strerror(errno));
		return -1;
	}
	vm->rom_size = len;
	memcpy(vm->rom, image, len);
	slot.userspace_addr = (uint64_t)(uintptr_t)vm->rom;
	/* Without read-only slots (old KVM) guest writes would stick; still bootable. */
	if (ioctl(vm->host->fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0)
		slot.flags = KVM_MEM_READONLY;
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
		log_error("-bios: KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		return -1;
	}
	/*
	 * The isa-bios alias: on QEMU the last 128 KiB of the ROM also appear at
	 * 0xe0000 until the BIOS shadows itself into RAM there.  RAM with the same
	 * bytes behaves the same for SeaBIOS, whose make_bios_writable copies from
	 * the high ROM anyway, and needs no slot juggling on PAM writes.
	 */
	if (memory_write(&vm->mem, BIOS_AREA_END - isa, image + len - isa, isa) < 0) {
		log_error("-bios: guest RAM does not reach 1 MiB");
		return -1;
	}
	return 0;
}

int firmware_check_bios(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		log_error("-bios %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("-bios %s: not a regular file", path);
		return -1;
	}
	/* QEMU's rule (hw/i386/x86.c): a whole number of 64 KiB blocks. */
	if (st.st_size == 0 || st.st_size % 0x10000 || st.st_size > FIRMWARE_MAX_SIZE) {
		log_error("-bios %s: size %lld is not a multiple of 64 KiB up to %u MiB", path,
			  (long long)st.st_size, FIRMWARE_MAX_SIZE >> 20);
		return -1;
	}
	return 0;
}

int firmware_setup(struct vm *vm)
{
	const char *path = vm->cfg->bios ? vm->cfg->bios : FIRMWARE_DEFAULT_BIOS;
	uint8_t *image = NULL;
	size_t len = 0;
	int rc = -1;

	if (file_read_all("-bios", path, FIRMWARE_MAX_SIZE, &image, &len) < 0)
		return -1;
	/* QEMU's rule (hw/i386/x86.c): a whole number of 64 KiB blocks. */
	if (len == 0 || len % 0x10000) {
		log_error("-bios %s: size %zu is not a multiple of 64 KiB", path, len);
		goto out;
	}
	if (map_rom(vm, image, len) < 0)
		goto out;
	/* From here on the VM's teardown frees what was added. */
	if (pc_add_part(vm, &vm->fw_cfg, fw_cfg_part_destroy) < 0)
		goto out;
	if (fw_cfg_init(&vm->fw_cfg, &vm->mem) < 0 || add_fw_cfg_entries(vm) < 0 ||
	    set_cmos_boot(vm) < 0) {
		log_error("fw_cfg: cannot build the firmware configuration");
		goto out;
	}
	if (vm->cfg->kernel && firmware_linux_setup(vm) < 0)
		goto out;
	if (bus_register(&vm->pio, FW_CFG_PORT_BASE, FW_CFG_PORT_LEN, fw_cfg_io, &vm->fw_cfg,
			 "fwcfg") < 0 ||
	    bus_register(&vm->pio, FW_CFG_DMA_PORT, FW_CFG_DMA_PORT_LEN, fw_cfg_dma_io,
			 &vm->fw_cfg, "fwcfg.dma") < 0) {
		log_error("fw_cfg: I/O ports 0x510-0x51b are already in use");
		goto out;
	}
	rc = 0;
out:
	free(image);
	return rc;
}

void firmware_destroy(struct vm *vm)
{
	if (vm->rom)
		munmap(vm->rom, vm->rom_size);
	vm->rom = NULL;
}
