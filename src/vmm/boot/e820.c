#include "vmm/boot/e820.h"

#include "vmm/boot/layout.h"

_Static_assert(sizeof(struct e820_entry) == 20, "boot_params e820 entries are 20 bytes");

size_t e820_build(const struct guest_memory *mem, struct e820_entry *out)
{
	const struct memory_region *low = &mem->regions[0];
	size_t n = 0;

	/* Conventional memory up to the EBDA, then the BIOS areas the tables live in. */
	out[n++] = (struct e820_entry){ 0, EBDA_ADDR, E820_RAM };
	out[n++] = (struct e820_entry){ EBDA_ADDR, LOWMEM_HOLE_ADDR - EBDA_ADDR, E820_RESERVED };
	out[n++] = (struct e820_entry){ ACPI_TABLES_ADDR, BIOS_AREA_END - ACPI_TABLES_ADDR,
					E820_RESERVED };
	out[n++] = (struct e820_entry){ BIOS_AREA_END, low->size - BIOS_AREA_END, E820_RAM };
	out[n++] = (struct e820_entry){ KVM_IDENTITY_MAP_ADDR, KVM_PRIVATE_SIZE, E820_RESERVED };
	if (mem->nr_regions > 1)
		out[n++] = (struct e820_entry){ mem->regions[1].gpa, mem->regions[1].size, E820_RAM };
	return n;
}
