/* x86-64 register layout and target description; see regs.h. */
#include "gdb/regs.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct reg_desc {
	const char *name;
	unsigned size;		/* bytes on the wire */
	unsigned offset;	/* into struct gdb_x86_regs */
	unsigned field;		/* bytes of the field there */
	const char *type;
	const char *group;	/* NULL: gdb picks from the type */
};

#define R(nm, sz, fld, ty, grp) \
	{ nm, sz, offsetof(struct gdb_x86_regs, fld), sizeof(((struct gdb_x86_regs *)0)->fld), ty, grp }

/* gdb's amd64 numbering for the general registers (amd64-tdep.c), then QEMU's additions. */
static const struct reg_desc regs[GDB_NR_REGS] = {
	R("rax", 8, gpr[0], "int64", NULL), R("rbx", 8, gpr[1], "int64", NULL),
	R("rcx", 8, gpr[2], "int64", NULL), R("rdx", 8, gpr[3], "int64", NULL),
	R("rsi", 8, gpr[4], "int64", NULL), R("rdi", 8, gpr[5], "int64", NULL),
	R("rbp", 8, gpr[6], "data_ptr", NULL), R("rsp", 8, gpr[7], "data_ptr", NULL),
	R("r8", 8, gpr[8], "int64", NULL), R("r9", 8, gpr[9], "int64", NULL),
	R("r10", 8, gpr[10], "int64", NULL), R("r11", 8, gpr[11], "int64", NULL),
	R("r12", 8, gpr[12], "int64", NULL), R("r13", 8, gpr[13], "int64", NULL),
	R("r14", 8, gpr[14], "int64", NULL), R("r15", 8, gpr[15], "int64", NULL),
	R("rip", 8, rip, "code_ptr", NULL),
	R("eflags", 4, rflags, "i386_eflags", NULL),
	R("cs", 4, seg[0], "int32", NULL), R("ss", 4, seg[1], "int32", NULL),
	R("ds", 4, seg[2], "int32", NULL), R("es", 4, seg[3], "int32", NULL),
	R("fs", 4, seg[4], "int32", NULL), R("gs", 4, seg[5], "int32", NULL),
	R("fs_base", 8, fs_base, "int64", NULL), R("gs_base", 8, gs_base, "int64", NULL),
	R("k_gs_base", 8, k_gs_base, "int64", NULL),
	R("cr0", 8, cr0, "int64", NULL), R("cr2", 8, cr2, "int64", NULL),
	R("cr3", 8, cr3, "int64", NULL), R("cr4", 8, cr4, "int64", NULL),
	R("cr8", 8, cr8, "int64", NULL), R("efer", 8, efer, "int64", NULL),
	R("st0", 10, st[0], "i387_ext", NULL), R("st1", 10, st[1], "i387_ext", NULL),
	R("st2", 10, st[2], "i387_ext", NULL), R("st3", 10, st[3], "i387_ext", NULL),
	R("st4", 10, st[4], "i387_ext", NULL), R("st5", 10, st[5], "i387_ext", NULL),
	R("st6", 10, st[6], "i387_ext", NULL), R("st7", 10, st[7], "i387_ext", NULL),
	R("fctrl", 4, fctrl, "int", "float"), R("fstat", 4, fstat, "int", "float"),
	R("ftag", 4, ftag, "int", "float"), R("fiseg", 4, fiseg, "int", "float"),
	R("fioff", 4, fioff, "int", "float"), R("foseg", 4, foseg, "int", "float"),
	R("fooff", 4, fooff, "int", "float"), R("fop", 4, fop, "int", "float"),
	R("xmm0", 16, xmm[0], "vec128", NULL), R("xmm1", 16, xmm[1], "vec128", NULL),
	R("xmm2", 16, xmm[2], "vec128", NULL), R("xmm3", 16, xmm[3], "vec128", NULL),
	R("xmm4", 16, xmm[4], "vec128", NULL), R("xmm5", 16, xmm[5], "vec128", NULL),
	R("xmm6", 16, xmm[6], "vec128", NULL), R("xmm7", 16, xmm[7], "vec128", NULL),
	R("xmm8", 16, xmm[8], "vec128", NULL), R("xmm9", 16, xmm[9], "vec128", NULL),
	R("xmm10", 16, xmm[10], "vec128", NULL), R("xmm11", 16, xmm[11], "vec128", NULL),
	R("xmm12", 16, xmm[12], "vec128", NULL), R("xmm13", 16, xmm[13], "vec128", NULL),
	R("xmm14", 16, xmm[14], "vec128", NULL), R("xmm15", 16, xmm[15], "vec128", NULL),
	R("mxcsr", 4, mxcsr, "i386_mxcsr", "vector"),
};

/* The first register of the SSE feature: gdb's amd64 checks find xmm0..15 and mxcsr there. */
#define FIRST_SSE 49

const char *gdb_reg_name(int n)
{
	return n >= 0 && n < GDB_NR_REGS ? regs[n].name : NULL;
}

int gdb_reg_size(int n)
{
	return n >= 0 && n < GDB_NR_REGS ? (int)regs[n].size : -1;
}

int gdb_reg_lookup(const char *name)
{
	for (int i = 0; i < GDB_NR_REGS; i++)
		if (strcmp(regs[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * The host is x86 (KVM x86 is what Kestrel runs on), so the fields are
 * already little-endian as the wire wants; a narrower wire size (eflags,
 * the segment selectors) takes the low bytes.
 */
int gdb_reg_get(const struct gdb_x86_regs *r, int n, uint8_t *out)
{
	if (n < 0 || n >= GDB_NR_REGS)
		return -1;
	const struct reg_desc *d = &regs[n];
	memset(out, 0, d->size);
	memcpy(out, (const uint8_t *)r + d->offset, d->size < d->field ? d->size : d->field);
	return (int)d->size;
}

int gdb_reg_set(struct gdb_x86_regs *r, int n, const uint8_t *in)
{
	if (n < 0 || n >= GDB_NR_REGS)
		return -1;
	const struct reg_desc *d = &regs[n];
	uint8_t *f = (uint8_t *)r + d->offset;
	memset(f, 0, d->field);
	memcpy(f, in, d->size < d->field ? d->size : d->field);
	return (int)d->size;
}

void gdb_regs_pack(const struct gdb_x86_regs *r, uint8_t out[GDB_REGS_BYTES])
{
	size_t o = 0;

	for (int i = 0; i < GDB_NR_REGS; i++)
		o += (size_t)gdb_reg_get(r, i, out + o);
}

int gdb_regs_unpack(struct gdb_x86_regs *r, const uint8_t *in, size_t len)
{
	size_t o = 0;

	if (len > GDB_REGS_BYTES)
		return -1;
	for (int i = 0; i < GDB_NR_REGS && o + regs[i].size <= len; i++)
		o += (size_t)gdb_reg_set(r, i, in + o);
	return o == len ? 0 : -1;
}

static const char xml_head[] =
	"<?xml version=\"1.0\"?>\n"
	"<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
	"<target version=\"1.0\">\n"
	"<architecture>i386:x86-64</architecture>\n"
	"<feature name=\"org.gnu.gdb.i386.core\">\n"
	"<flags id=\"i386_eflags\" size=\"4\">\n"
	"<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"\" start=\"1\" end=\"1\"/>\n"
	"<field name=\"PF\" start=\"2\" end=\"2\"/><field name=\"AF\" start=\"4\" end=\"4\"/>\n"
	"<field name=\"ZF\" start=\"6\" end=\"6\"/><field name=\"SF\" start=\"7\" end=\"7\"/>\n"
	"<field name=\"TF\" start=\"8\" end=\"8\"/><field name=\"IF\" start=\"9\" end=\"9\"/>\n"
	"<field name=\"DF\" start=\"10\" end=\"10\"/><field name=\"OF\" start=\"11\" end=\"11\"/>\n"
	"<field name=\"NT\" start=\"14\" end=\"14\"/><field name=\"RF\" start=\"16\" end=\"16\"/>\n"
	"<field name=\"VM\" start=\"17\" end=\"17\"/><field name=\"AC\" start=\"18\" end=\"18\"/>\n"
	"<field name=\"VIF\" start=\"19\" end=\"19\"/><field name=\"VIP\" start=\"20\" end=\"20\"/>\n"
	"<field name=\"ID\" start=\"21\" end=\"21\"/>\n"
	"</flags>\n";

static const char xml_sse[] =
	"</feature>\n"
	"<feature name=\"org.gnu.gdb.i386.sse\">\n"
	"<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>\n"
	"<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>\n"
	"<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>\n"
	"<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>\n"
	"<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>\n"
	"<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n"
	"<union id=\"vec128\"><field name=\"v4_float\" type=\"v4f\"/>"
	"<field name=\"v2_double\" type=\"v2d\"/><field name=\"v16_int8\" type=\"v16i8\"/>"
	"<field name=\"v8_int16\" type=\"v8i16\"/><field name=\"v4_int32\" type=\"v4i32\"/>"
	"<field name=\"v2_int64\" type=\"v2i64\"/><field name=\"uint128\" type=\"uint128\"/></union>\n"
	"<flags id=\"i386_mxcsr\" size=\"4\">\n"
	"<field name=\"IE\" start=\"0\" end=\"0\"/><field name=\"DE\" start=\"1\" end=\"1\"/>\n"
	"<field name=\"ZE\" start=\"2\" end=\"2\"/><field name=\"OE\" start=\"3\" end=\"3\"/>\n"
	"<field name=\"UE\" start=\"4\" end=\"4\"/><field name=\"PE\" start=\"5\" end=\"5\"/>\n"
	"<field name=\"DAZ\" start=\"6\" end=\"6\"/><field name=\"IM\" start=\"7\" end=\"7\"/>\n"
	"<field name=\"DM\" start=\"8\" end=\"8\"/><field name=\"ZM\" start=\"9\" end=\"9\"/>\n"
	"<field name=\"OM\" start=\"10\" end=\"10\"/><field name=\"UM\" start=\"11\" end=\"11\"/>\n"
	"<field name=\"PM\" start=\"12\" end=\"12\"/><field name=\"FZ\" start=\"15\" end=\"15\"/>\n"
	"</flags>\n";

static char xml[16384];
static size_t xml_len;
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_build(void)
{
	size_t o = 0;
	int n;

	o += (size_t)snprintf(xml + o, sizeof(xml) - o, "%s", xml_head);
	for (int i = 0; i < GDB_NR_REGS; i++) {
		if (i == FIRST_SSE)
			o += (size_t)snprintf(xml + o, sizeof(xml) - o, "%s", xml_sse);
		n = snprintf(xml + o, sizeof(xml) - o,
			     "<reg name=\"%s\" bitsize=\"%u\" type=\"%s\"%s%s%s/>\n",
			     regs[i].name, regs[i].size * 8, regs[i].type,
			     regs[i].group ? " group=\"" : "", regs[i].group ? regs[i].group : "",
			     regs[i].group ? "\"" : "");
		o += (size_t)n;
	}
	o += (size_t)snprintf(xml + o, sizeof(xml) - o, "</feature>\n</target>\n");
	xml_len = o;
}

const char *gdb_target_xml(size_t *len)
{
	pthread_once(&xml_once, xml_build);
	*len = xml_len;
	return xml;
}
