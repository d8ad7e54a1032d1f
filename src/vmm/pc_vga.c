/*
 * Video cards on the pc machine: the VGA model (hw/vga.h) on the buses, its
 * VGA BIOS from Debian's seabios package as the PCI expansion ROM (SeaBIOS
 * runs a VGA-class device's ROM from its ROM BAR, as on QEMU), and BAR0 as a
 * KVM memory slot with dirty logging, so framebuffer writes run at native
 * speed and the renderer still learns which pages changed.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "hw/vga.h"
#include "util/file.h"
#include "util/log.h"
#include "vmm/vm.h"

#define VM_VGA_SLOT 11			/* KVM slots 11, 12: clear of RAM's and the BIOS's */
#define VGABIOS_STD "/usr/share/seabios/vgabios-stdvga.bin"
#define VGABIOS_BOCHS "/usr/share/seabios/vgabios-bochs-display.bin"
#define VGABIOS_MAX (256u << 10)

struct pc_vga {
	struct vga vga;
	struct vm *vm;
	unsigned slot;
	uint8_t *rom;
	size_t rom_len;
	uint64_t *log;			/* KVM_GET_DIRTY_LOG's buffer */
};

static int lfb_map(void *opaque, uint64_t gpa)
{
	struct pc_vga *p = opaque;
	struct kvm_userspace_memory_region r = { .slot = p->slot };

	/* A slot moves by being deleted (size 0) and made again (KVM API 4.35). */
	if (p->vga.lfb_gpa && ioctl(p->vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		log_debug("VGA: deleting the VRAM slot: %s", strerror(errno));
	if (!gpa)
		return 0;
	r.guest_phys_addr = gpa;
	r.memory_size = p->vga.vram_size;
	r.userspace_addr = (uint64_t)(uintptr_t)p->vga.vram;
	r.flags = KVM_MEM_LOG_DIRTY_PAGES;
	if (ioctl(p->vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		log_debug("VGA: VRAM slot at 0x%llx: %s", (unsigned long long)gpa, strerror(errno));
		return -1;
	}
	return 0;
}

static void lfb_dirty_log(void *opaque, uint64_t *bitmap)
{
	struct pc_vga *p = opaque;
	size_t words = ((p->vga.vram_size >> VGA_PAGE_SHIFT) + 63) / 64;
	struct kvm_dirty_log log = { .slot = p->slot, .dirty_bitmap = p->log };

	if (ioctl(p->vm->fd, KVM_GET_DIRTY_LOG, &log) < 0) {
		/* No log: redraw everything rather than miss a change. */
		memset(bitmap, 0xff, words * sizeof(*bitmap));
		return;
	}
	for (size_t i = 0; i < words; i++)
		bitmap[i] |= p->log[i];
}

static void pc_vga_destroy(void *dev)
{
	struct pc_vga *p = dev;

	vga_destroy(&p->vga);
	free(p->rom);
	free(p->log);
	free(p);
}

static int register_legacy(struct vm *vm, struct vga *v)
{
	if (bus_register(&vm->pio, VGA_PIO_BASE, VGA_PIO_LEN, vga_pio, v, "vga") < 0 ||
	    bus_register(&vm->pio, VGA_VBE_PIO_BASE, VGA_VBE_PIO_LEN, vga_vbe_pio, v, "vbe") < 0 ||
	    bus_register(&vm->mmio, VGA_LEGACY_BASE, VGA_LEGACY_LEN, vga_legacy_mem, v,
			 "vga-lowmem") < 0) {
		log_error("VGA: its I/O ports or the 0xa0000 window are already in use");
		return -1;
	}
	return 0;
}

int pc_create_vga(struct vm *vm, const struct device_config *dev)
{
	bool std = !dev || dev->kind == DEVICE_VGA;
	uint32_t vram = dev && dev->vgamem_mb ? dev->vgamem_mb << 20 : VGA_VRAM_DEFAULT;
	struct display *d = vm->nr_vgas == 0 ? vm->backends->display : NULL;
	struct pc_vga *p;

	if (vm->nr_vgas == VM_MAX_VGAS) {
		log_error("too many video cards (at most %d)", VM_MAX_VGAS);
		return -1;
	}
	p = calloc(1, sizeof(*p));
	if (!p || vga_init(&p->vga, std ? VGA_MODEL_STD : VGA_MODEL_BOCHS_DISPLAY, vram, d) < 0) {
		free(p);
		log_error("VGA: cannot allocate %u MiB of video memory", vram >> 20);
		return -1;
	}
	p->vm = vm;
	p->slot = VM_VGA_SLOT + vm->nr_vgas;
	if (pc_add_part(vm, p, pc_vga_destroy) < 0) {
		pc_vga_destroy(p);
		return -1;
	}
	vm->vgas[vm->nr_vgas++] = p;
	p->log = calloc(((vram >> VGA_PAGE_SHIFT) + 63) / 64, sizeof(uint64_t));
	if (!p->log)
		return -1;
	/* No ROM file (seabios not installed): the card works, the guest has no VGA BIOS. */
	if (file_read_all("VGA BIOS", std ? VGABIOS_STD : VGABIOS_BOCHS, VGABIOS_MAX, &p->rom,
			  &p->rom_len) < 0)
		log_warn("VGA: running without its VGA BIOS");
	vga_pci_init(&p->vga, p->rom, p->rom_len);
	p->vga.lfb_map = lfb_map;
	p->vga.lfb_dirty_log = lfb_dirty_log;
	p->vga.lfb_opaque = p;
	if (std && register_legacy(vm, &p->vga) < 0)
		return -1;
	if (vga_plug(&p->vga, &vm->pci, dev ? dev->slot : VGA_PCI_SLOT) < 0) {
		log_error("%s: PCI slot %d is taken or the bus is full", p->vga.pci.name,
			  dev ? dev->slot : VGA_PCI_SLOT);
		return -1;
	}
	return 0;
}
