/*
 * Guest virtual to guest physical translation for the debugger, walking the
 * vCPU's page tables through a physical-read callback (SDM vol. 3, ch. 4
 * "Paging"): no paging, 32-bit (with 4M pages), PAE, 4-level and 5-level
 * (CR4.LA57) long mode, with 2M and 1G large pages.  Accessed/dirty bits
 * are never set: the debugger looks without touching.
 */
#ifndef KESTREL_GDB_PAGEWALK_H
#define KESTREL_GDB_PAGEWALK_H

#include <stdint.h>

typedef int (*gdb_phys_read_fn)(void *opaque, uint64_t gpa, void *buf, size_t len);

struct gdb_paging {
	uint64_t cr0, cr3, cr4, efer;
};

/*
 * Translates va; *pa gets the physical address and *left the bytes from pa
 * to the end of its page (so a caller splits accesses at page edges).
 * Returns 0, -EFAULT for a not-present or reserved mapping, or the read's error.
 */
int gdb_translate(const struct gdb_paging *pg, uint64_t va, gdb_phys_read_fn read,
		  void *opaque, uint64_t *pa, uint64_t *left);

#endif
