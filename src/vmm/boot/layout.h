/*
 * Where the VMM puts boot data in guest-physical memory below 1 MiB.  The
 * ranges follow the PC conventions guests scan (EBDA, BIOS area) and never
 * overlap; e820.c reserves the ones the guest must not reuse.
 */
#ifndef KESTREL_VMM_BOOT_LAYOUT_H
#define KESTREL_VMM_BOOT_LAYOUT_H

#define BOOT_GDT_ADDR 0x500		/* flat code/data descriptors for the 32-bit entry */
#define BOOT_INFO_ADDR 0x7000		/* Linux boot_params (zero page) or PVH hvm_start_info */
#define BOOT_MEMMAP_ADDR 0x8000		/* PVH memory map */
#define BOOT_MODLIST_ADDR 0x9000	/* PVH module list (the initrd) */
#define BOOT_CMDLINE_ADDR 0x20000
#define BOOT_CMDLINE_MAX 0x10000	/* bytes, with the terminating NUL */
#define EBDA_ADDR 0x9fc00
#define LOWMEM_HOLE_ADDR 0xa0000	/* VGA and option ROM space up to 1 MiB */
#define ACPI_TABLES_ADDR 0xe0000	/* RSDP first: guests scan 0xe0000-0xfffff for it */
#define ACPI_TABLES_SIZE 0x10000
#define MPTABLE_ADDR 0xf0000		/* MP floating pointer, scanned in 0xf0000-0xfffff */
#define MPTABLE_SIZE 0x10000
#define BIOS_AREA_END 0x100000
#define KERNEL_LOAD_ADDR 0x100000	/* bzImage protected-mode code (boot protocol) */

/* KVM needs three pages for VMX real mode and an identity page table; QEMU's spot. */
#define KVM_IDENTITY_MAP_ADDR 0xfeffc000ULL
#define KVM_TSS_ADDR 0xfeffd000ULL
#define KVM_PRIVATE_SIZE 0x4000ULL

#define IOAPIC_ADDR 0xfec00000U
#define LAPIC_ADDR 0xfee00000U

/* Selectors the Linux 32-bit boot protocol requires (boot.rst: __BOOT_CS, __BOOT_DS). */
#define BOOT_CS_SELECTOR 0x10
#define BOOT_DS_SELECTOR 0x18

#endif
