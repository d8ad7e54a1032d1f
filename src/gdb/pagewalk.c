/* Page-table walk for the debugger; see pagewalk.h. */
#include <errno.h>
#include <stddef.h>

#include "gdb/pagewalk.h"

#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define EFER_LMA (1ull << 10)
#define PTE_P 1ull
#define PTE_PS (1ull << 7)
/* Bits 51:12 hold the next table or the page frame (SDM 4.5, table 4-15 onward). */
#define PTE_ADDR 0x000ffffffffff000ull

static int read_entry(gdb_phys_read_fn read, void *opaque, uint64_t gpa, unsigned size,
		      uint64_t *e)
{
	uint32_t e32;
	int rc;

	if (size == 4) {
		rc = read(opaque, gpa, &e32, 4);
		*e = e32;
	} else {
		rc = read(opaque, gpa, e, 8);
	}
	return rc;
}

static void leaf(uint64_t base, uint64_t va, unsigned shift, uint64_t *pa, uint64_t *left)
{
	uint64_t mask = (1ull << shift) - 1;

	*pa = (base & ~mask) + (va & mask);
	*left = (mask + 1) - (va & mask);
}

/* Long mode and PAE: 8-byte entries, 9 bits a level, from top_shift down to 12. */
static int walk64(uint64_t table, uint64_t va, int levels, gdb_phys_read_fn read, void *opaque,
		  uint64_t *pa, uint64_t *left)
{
	unsigned shift = 12 + 9 * (unsigned)(levels - 1);
	uint64_t e;
	int rc;

	for (int l = levels; l >= 1; l--, shift -= 9) {
		rc = read_entry(read, opaque, (table & PTE_ADDR) + ((va >> shift) & 511) * 8, 8, &e);
		if (rc < 0)
			return rc;
		if (!(e & PTE_P))
			return -EFAULT;
		/* PS is a large page at the PD (2M) and PDPT (1G) levels only. */
		if (l == 1 || ((l == 2 || l == 3) && (e & PTE_PS))) {
			leaf(e & PTE_ADDR, va, shift, pa, left);
			return 0;
		}
		table = e;
	}
	return -EFAULT;
}

static int walk_pae(uint64_t cr3, uint64_t va, gdb_phys_read_fn read, void *opaque,
		    uint64_t *pa, uint64_t *left)
{
	uint64_t pdpte;
	uint32_t va32 = (uint32_t)va;
	int rc;

	/* The 4 PDPTEs sit at CR3 bits 31:5 (SDM 4.4.1). */
	rc = read_entry(read, opaque, (cr3 & 0xffffffe0u) + (va32 >> 30) * 8, 8, &pdpte);
	if (rc < 0)
		return rc;
	if (!(pdpte & PTE_P))
		return -EFAULT;
	return walk64(pdpte, va32, 2, read, opaque, pa, left);
}

static int walk32(const struct gdb_paging *pg, uint64_t va, gdb_phys_read_fn read,
		  void *opaque, uint64_t *pa, uint64_t *left)
{
	uint32_t va32 = (uint32_t)va;
	uint64_t pde, pte;
	int rc;

	rc = read_entry(read, opaque, (pg->cr3 & 0xfffff000u) + (va32 >> 22) * 4, 4, &pde);
	if (rc < 0)
		return rc;
	if (!(pde & PTE_P))
		return -EFAULT;
	if ((pde & PTE_PS) && (pg->cr4 & CR4_PSE)) {
		/* 4M page: bits 20:13 of the PDE are physical bits 39:32 (SDM table 4-4). */
		uint64_t base = (pde & 0xffc00000u) | ((pde >> 13) & 0xff) << 32;
		leaf(base, va32, 22, pa, left);
		return 0;
	}
	rc = read_entry(read, opaque, (pde & 0xfffff000u) + ((va32 >> 12) & 1023) * 4, 4, &pte);
	if (rc < 0)
		return rc;
	if (!(pte & PTE_P))
		return -EFAULT;
	leaf(pte & 0xfffff000u, va32, 12, pa, left);
	return 0;
}

int gdb_translate(const struct gdb_paging *pg, uint64_t va, gdb_phys_read_fn read,
		  void *opaque, uint64_t *pa, uint64_t *left)
{
	if (!(pg->cr0 & CR0_PG)) {
		/* Real or protected mode without paging: linear is physical. */
		leaf(va, va, 12, pa, left);
		return 0;
	}
	if (pg->efer & EFER_LMA) {
		int levels = (pg->cr4 & CR4_LA57) ? 5 : 4;
		unsigned bits = levels == 5 ? 57 : 48;
		/* A non-canonical address has no translation (SDM 3.3.7.1). */
		int64_t sva = (int64_t)(va << (64 - bits)) >> (64 - bits);
		if ((uint64_t)sva != va)
			return -EFAULT;
		return walk64(pg->cr3, va, levels, read, opaque, pa, left);
	}
	if (pg->cr4 & CR4_PAE)
		return walk_pae(pg->cr3, va, read, opaque, pa, left);
	return walk32(pg, va, read, opaque, pa, left);
}
