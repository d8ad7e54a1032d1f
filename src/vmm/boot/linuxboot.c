/*
 * The setup header a boot loader fills in (Documentation/x86/boot.rst), for
 * the firmware path: QEMU's linuxboot_dma.bin reads the patched header back
 * through fw_cfg and only moves bytes, so every decision is made here.
 */
#include "vmm/boot/linuxboot.h"
#include "vmm/boot/setup_header.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XLF_CAN_BE_LOADED_ABOVE_4G 0x02
#define OLD_INITRD_ADDR_MAX 0x37ffffffu	/* boot.rst: before 2.03 the field is absent */
#define OLD_CMDLINE_MAX 255		/* boot.rst: before 2.06 */

/*
 * vga=normal|ext|ask|N becomes vid_mode, as QEMU reads it for the setup code
 * (boot.rst "vga=": 0xffff, 0xfffe, 0xfffd or the number).  Only a word of its
 * own counts, so "xvga=1" is left alone.  Returns 0, or -1 on a bad value.
 */
static int parse_vga(const char *cmdline, uint8_t *kernel)
{
	const char *v = cmdline;
	unsigned long mode;
	char *end;

	while ((v = strstr(v, "vga=")) && v != cmdline && v[-1] != ' ')
		v += 4;
	if (!v)
		return 0;
	v += 4;
	if (strncmp(v, "normal", 6) == 0) {
		mode = 0xffff;
	} else if (strncmp(v, "ext", 3) == 0) {
		mode = 0xfffe;
	} else if (strncmp(v, "ask", 3) == 0) {
		mode = 0xfffd;
	} else {
		errno = 0;
		mode = strtoul(v, &end, 0);
		if (errno || end == v || (*end && *end != ' ') || mode > 0xffff)
			return -1;
	}
	st_le16(kernel + HDR_VID_MODE, (uint16_t)mode);
	return 0;
}

/* The highest address the initrd may end at, QEMU's rule (x86_load_linux). */
static uint64_t initrd_limit(const uint8_t *kernel, uint16_t version, uint64_t low_ram)
{
	uint64_t max;

	if (version >= 0x20c && (ld_le16(kernel + HDR_XLOADFLAGS) & XLF_CAN_BE_LOADED_ABOVE_4G))
		max = UINT32_MAX;	/* we have no 64-bit ramdisk fields: stay below 4 GiB */
	else if (version >= 0x203)
		max = ld_le32(kernel + HDR_INITRD_ADDR_MAX);
	else
		max = OLD_INITRD_ADDR_MAX;
	/* Keep the top of RAM free for the firmware's tables. */
	if (low_ram > LINUXBOOT_ACPI_DATA_SIZE && max >= low_ram - LINUXBOOT_ACPI_DATA_SIZE)
		max = low_ram - LINUXBOOT_ACPI_DATA_SIZE - 1;
	return max;
}

int linuxboot_prepare(uint8_t *kernel, size_t len, const char *cmdline, uint64_t initrd_size,
		      uint64_t low_ram, struct linuxboot_plan *plan, char *err, size_t errlen)
{
	uint16_t version;
	size_t setup_size, cmdline_len = strlen(cmdline);
	uint64_t need, max;

	memset(plan, 0, sizeof(*plan));
	if (len < HDR_INIT_SIZE + 4 || memcmp(kernel + HDR_MAGIC, "HdrS", 4) != 0 ||
	    ld_le16(kernel + HDR_BOOT_FLAG) != 0xaa55) {
		snprintf(err, errlen, "not a Linux bzImage: with -bios the firmware boots "
			 "only bzImages (without -bios kestrel also boots PVH ELF kernels)");
		return -1;
	}
	version = ld_le16(kernel + HDR_VERSION);
	if (version < 0x202 || !(kernel[HDR_LOADFLAGS] & LOADED_HIGH)) {
		snprintf(err, errlen, "boot protocol %u.%02u%s is too old (need a bzImage of "
			 "protocol 2.02 or later)", version >> 8, version & 0xff,
			 kernel[HDR_LOADFLAGS] & LOADED_HIGH ? "" : " (zImage, loaded low)");
		return -1;
	}
	setup_size = kernel[HDR_SETUP_SECTS] ? kernel[HDR_SETUP_SECTS] : 4;
	setup_size = (setup_size + 1) * 512;
	if (setup_size >= len) {
		snprintf(err, errlen, "invalid kernel header (setup is %zu bytes, the file %zu)",
			 setup_size, len);
		return -1;
	}
	/* Setup code, stack and heap share one 64 KiB segment below the command line. */
	if (setup_size > LINUXBOOT_CMDLINE_ADDR - LINUXBOOT_SETUP_ADDR - 0x200) {
		snprintf(err, errlen, "invalid kernel header (setup of %zu bytes does not fit "
			 "its segment)", setup_size);
		return -1;
	}

	plan->setup_addr = LINUXBOOT_SETUP_ADDR;
	plan->setup_size = (uint32_t)setup_size;
	plan->kernel_addr = LINUXBOOT_KERNEL_ADDR;
	plan->kernel_size = (uint32_t)(len - setup_size);
	/* The kernel decompresses in place: it needs init_size bytes (2.10+) from 1 MiB. */
	need = plan->kernel_size;
	if (version >= 0x20a && ld_le32(kernel + HDR_INIT_SIZE) > need)
		need = ld_le32(kernel + HDR_INIT_SIZE);
	if (LINUXBOOT_KERNEL_ADDR + need > low_ram) {
		snprintf(err, errlen, "the kernel needs %" PRIu64 " MiB above 1 MiB; increase -m",
			 (need >> 20) + 1);
		return -1;
	}

	max = version >= 0x206 ? ld_le32(kernel + HDR_CMDLINE_SIZE) : OLD_CMDLINE_MAX;
	if (cmdline_len > max) {
		snprintf(err, errlen, "-append: command line is %zu bytes, this kernel accepts "
			 "at most %" PRIu64, cmdline_len, max);
		return -1;
	}
	plan->cmdline_addr = LINUXBOOT_CMDLINE_ADDR;
	plan->cmdline_size = (uint32_t)cmdline_len + 1;
	if (parse_vga(cmdline, kernel) < 0) {
		snprintf(err, errlen, "-append: invalid 'vga=' kernel parameter");
		return -1;
	}

	kernel[HDR_TYPE_OF_LOADER] = LINUXBOOT_LOADER_TYPE;
	kernel[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	/* heap_end_ptr is an offset in the setup segment: up to 512 bytes below the command line. */
	st_le16(kernel + HDR_HEAP_END_PTR,
	      (uint16_t)(LINUXBOOT_CMDLINE_ADDR - LINUXBOOT_SETUP_ADDR - 0x200));
	st_le32(kernel + HDR_CMD_LINE_PTR, LINUXBOOT_CMDLINE_ADDR);

	if (initrd_size) {
		max = initrd_limit(kernel, version, low_ram);
		if (initrd_size >= max) {
			snprintf(err, errlen, "-initrd: initrd is too large (max: %" PRIu64 ", need %"
				 PRIu64 ")", max, initrd_size);
			return -1;
		}
		/* As high as allowed, page aligned, and clear of the decompressing kernel. */
		uint64_t addr = (max - initrd_size) & ~4095ULL;
		if (addr < LINUXBOOT_KERNEL_ADDR + need) {
			snprintf(err, errlen, "-initrd: %" PRIu64 " MiB do not fit in guest RAM above "
				 "the kernel; increase -m", (initrd_size >> 20) + 1);
			return -1;
		}
		plan->initrd_addr = (uint32_t)addr;
		plan->initrd_size = (uint32_t)initrd_size;
		st_le32(kernel + HDR_RAMDISK_IMAGE, plan->initrd_addr);
		st_le32(kernel + HDR_RAMDISK_SIZE, plan->initrd_size);
	}
	return 0;
}
