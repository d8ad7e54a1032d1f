/*
 * The Linux x86 boot protocol, 32-bit entry (Documentation/x86/boot.rst):
 * the protected-mode kernel at 1 MiB, boot_params ("zero page") holding the
 * setup header, e820 map, command line and initrd, entered at code32_start.
 */
#include <string.h>

#include "util/log.h"
#include "vmm/boot/boot.h"
#include "vmm/boot/e820.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/setup_header.h"

/* Offsets in boot_params (zero-page.rst). */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_SIZE 0x1000

#define LOADER_UNDEFINED 0xff	/* boot.rst: "0xFF no ID assigned" */
#define MIN_VERSION 0x0206	/* cmdline_size exists from 2.06 on */

int bzimage_detect(const uint8_t *kernel, size_t len)
{
	return len > HDR_INIT_SIZE + 4 && memcmp(kernel + HDR_MAGIC, "HdrS", 4) == 0 &&
	       ld_le16(kernel + HDR_BOOT_FLAG) == 0xaa55;
}

int bzimage_load(const struct boot_request *req, const uint8_t *kernel, size_t len,
		 struct boot_entry *entry)
{
	const struct guest_memory *mem = req->mem;
	uint16_t version = ld_le16(kernel + HDR_VERSION);
	size_t setup_sects = kernel[HDR_SETUP_SECTS] ? kernel[HDR_SETUP_SECTS] : 4;
	size_t setup_len = (setup_sects + 1) * 512;
	size_t header_end = 0x202 + kernel[HDR_JUMP_END];
	uint64_t low_end = mem->regions[0].size;
	struct e820_entry e820[E820_MAX_ENTRIES];
	size_t n_e820;
	uint8_t *bp;

	if (version < MIN_VERSION) {
		log_error("-kernel: boot protocol %u.%02u is too old (need 2.06 or later)",
			  version >> 8, version & 0xff);
		return -1;
	}
	if (!(kernel[HDR_LOADFLAGS] & LOADED_HIGH)) {
		log_error("-kernel: a zImage (loaded low) is not supported; use a bzImage");
		return -1;
	}
	if (setup_len >= len || header_end > setup_len || header_end > BP_SIZE) {
		log_error("-kernel: corrupt bzImage header (setup size %zu, file %zu bytes)",
			  setup_len, len);
		return -1;
	}

	/* The kernel decompresses in place and needs init_size bytes from its load address. */
	uint64_t pm_len = len - setup_len;
	uint64_t need = ld_le32(kernel + HDR_INIT_SIZE);
	if (need < pm_len)
		need = pm_len;
	uint8_t *dst = memory_ptr(mem, KERNEL_LOAD_ADDR, need);
	if (!dst) {
		log_error("-kernel: the kernel needs %llu MiB above 1 MiB; increase -m",
			  (unsigned long long)(need >> 20) + 1);
		return -1;
	}
	memcpy(dst, kernel + setup_len, pm_len);

	bp = memory_ptr(mem, BOOT_INFO_ADDR, BP_SIZE);
	memset(bp, 0, BP_SIZE);
	memcpy(bp + HDR_SETUP_SECTS, kernel + HDR_SETUP_SECTS, header_end - HDR_SETUP_SECTS);
	bp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	st_le16(bp + HDR_HEAP_END_PTR, 0xfe00);	/* boot.rst's value for a 32-bit entry */

	uint32_t cmdline_size = ld_le32(kernel + HDR_CMDLINE_SIZE);
	if (strlen(req->cmdline) >= cmdline_size) {
		log_error("-append: command line is %zu bytes, this kernel accepts at most %u",
			  strlen(req->cmdline), cmdline_size ? cmdline_size - 1 : 0);
		return -1;
	}
	st_le32(bp + HDR_CMD_LINE_PTR, BOOT_CMDLINE_ADDR);

	if (req->initrd_len) {
		uint64_t limit = (uint64_t)ld_le32(kernel + HDR_INITRD_ADDR_MAX) + 1;
		uint64_t addr;
		if (limit > low_end)
			limit = low_end;
		if (boot_load_initrd(req, KERNEL_LOAD_ADDR + need, limit, &addr) < 0)
			return -1;
		st_le32(bp + HDR_RAMDISK_IMAGE, (uint32_t)addr);
		st_le32(bp + HDR_RAMDISK_SIZE, (uint32_t)req->initrd_len);
	}

	memcpy(bp + BP_ACPI_RSDP_ADDR, &req->rsdp, 8);
	n_e820 = e820_build(mem, e820);
	bp[BP_E820_ENTRIES] = (uint8_t)n_e820;
	memcpy(bp + BP_E820_TABLE, e820, n_e820 * sizeof(e820[0]));

	entry->entry = ld_le32(kernel + HDR_CODE32_START);
	entry->esi = BOOT_INFO_ADDR;
	entry->ebx = 0;
	return 0;
}
