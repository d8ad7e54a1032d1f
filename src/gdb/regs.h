/*
 * x86-64 registers as gdb numbers them: the order, sizes and names of
 * QEMU's gdb-xml/i386-64bit.xml (target/i386/gdbstub.c's IDX_* groups), so a
 * gdb session written against QEMU reads the same registers here.
 */
#ifndef KESTREL_GDB_REGS_H
#define KESTREL_GDB_REGS_H

#include <stddef.h>
#include <stdint.h>

#include "gdb/target.h"

#define GDB_NR_REGS 66
/* Bytes of a 'g' reply: every register in order, little-endian. */
#define GDB_REGS_BYTES 608

const char *gdb_reg_name(int n);
/* The register's size in bytes on the wire, or -1 for a number past the last. */
int gdb_reg_size(int n);
/* The register number of a name, or -1. */
int gdb_reg_lookup(const char *name);

/* Writes register n of r to out (gdb_reg_size(n) bytes); returns the size or -1. */
int gdb_reg_get(const struct gdb_x86_regs *r, int n, uint8_t *out);
int gdb_reg_set(struct gdb_x86_regs *r, int n, const uint8_t *in);

void gdb_regs_pack(const struct gdb_x86_regs *r, uint8_t out[GDB_REGS_BYTES]);
/* Unpacks len bytes (a 'G' packet may be shorter: the rest are left as they are). */
int gdb_regs_unpack(struct gdb_x86_regs *r, const uint8_t *in, size_t len);

/* The target description (qXfer:features:read:target.xml), built once. */
const char *gdb_target_xml(size_t *len);

#endif
