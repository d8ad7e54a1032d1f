/* GDB remote protocol commands; see stub.h. */
#include "gdb/stub.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdb/pagewalk.h"
#include "gdb/regs.h"

/* 0x1000: room for a 'g' reply (2 * 608 hex digits) and a 2 KiB memory read. */
static const char supported[] =
	"PacketSize=1000;qXfer:features:read+;QStartNoAckMode+;vContSupported+";

static enum gdb_action reply(struct gdb_stub *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static enum gdb_action reply(struct gdb_stub *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s->reply, sizeof(s->reply), fmt, ap);
	va_end(ap);
	s->reply_len = n < 0 ? 0 : (size_t)n < sizeof(s->reply) ? (size_t)n : sizeof(s->reply) - 1;
	return GDB_ACT_REPLY;
}

/* Errors as QEMU's gdbstub sends them: "Exx" with a (Linux) errno in hex. */
static enum gdb_action reply_err(struct gdb_stub *s, int err)
{
	return reply(s, "E%02x", (unsigned)(err < 0 ? -err : err) & 0xff);
}

void gdb_stub_init(struct gdb_stub *s, const struct gdb_target_ops *ops, void *opaque)
{
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	s->opaque = opaque;
	s->ccpu = -1;
	s->last.reason = GDB_STOP_TRAP;
}

void gdb_stub_free(struct gdb_stub *s)
{
	free(s->bps);
	s->bps = NULL;
	s->nr_bps = 0;
}

static int nr_cpus(struct gdb_stub *s)
{
	int n = s->ops->vcpu_count(s->opaque);
	return n < 1 ? 1 : n;
}

static int paging_of(struct gdb_stub *s, struct gdb_paging *pg)
{
	struct gdb_x86_regs r;
	int rc = s->ops->get_regs(s->opaque, s->gcpu, &r);

	if (rc < 0)
		return rc;
	pg->cr0 = r.cr0;
	pg->cr3 = r.cr3;
	pg->cr4 = r.cr4;
	pg->efer = r.efer;
	return 0;
}

static struct gdb_sw_bp *bp_find(struct gdb_stub *s, uint64_t addr)
{
	for (size_t i = 0; i < s->nr_bps; i++)
		if (s->bps[i].addr == addr)
			return &s->bps[i];
	return NULL;
}

/*
 * Reads stop at the first byte that does not translate or read (*done says
 * how far they got), as gdbserver's partial 'm' replies.  Patched int3s read
 * as the bytes they replaced, so gdb never sees its own breakpoints.
 */
int gdb_stub_read_mem(struct gdb_stub *s, uint64_t va, uint8_t *buf, size_t len, size_t *done)
{
	struct gdb_paging pg;
	uint64_t pa, left;
	int rc = paging_of(s, &pg);

	*done = 0;
	while (rc == 0 && *done < len) {
		rc = gdb_translate(&pg, va + *done, s->ops->read_phys, s->opaque, &pa, &left);
		if (rc < 0)
			break;
		size_t n = len - *done < left ? len - *done : (size_t)left;
		rc = s->ops->read_phys(s->opaque, pa, buf + *done, n);
		if (rc < 0)
			break;
		*done += n;
	}
	for (size_t i = 0; i < s->nr_bps; i++) {
		uint64_t off = s->bps[i].addr - va;
		if (off < *done)
			buf[off] = s->bps[i].orig;
	}
	return *done ? 0 : rc;
}

static int write_virt(struct gdb_stub *s, const struct gdb_paging *pg, uint64_t va,
		      const uint8_t *buf, size_t len)
{
	uint64_t pa, left;
	size_t done = 0;
	int rc;

	while (done < len) {
		rc = gdb_translate(pg, va + done, s->ops->read_phys, s->opaque, &pa, &left);
		if (rc < 0)
			return rc;
		size_t n = len - done < left ? len - done : (size_t)left;
		rc = s->ops->write_phys(s->opaque, pa, buf + done, n);
		if (rc < 0)
			return rc;
		done += n;
	}
	return 0;
}

/* A write over a breakpoint updates the saved byte and keeps the int3 in place. */
int gdb_stub_write_mem(struct gdb_stub *s, uint64_t va, const uint8_t *buf, size_t len)
{
	struct gdb_paging pg;
	uint8_t *copy;
	int rc = paging_of(s, &pg);

	if (rc < 0)
		return rc;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, buf, len);
	for (size_t i = 0; i < s->nr_bps; i++) {
		uint64_t off = s->bps[i].addr - va;
		if (off < len) {
			s->bps[i].orig = copy[off];
			copy[off] = 0xcc;
		}
	}
	rc = write_virt(s, &pg, va, copy, len);
	free(copy);
	return rc;
}

static int sync_debug(struct gdb_stub *s)
{
	s->dbg.sw_bp = s->nr_bps > 0;
	return s->ops->set_debug(s->opaque, &s->dbg);
}

static int sw_bp_insert(struct gdb_stub *s, uint64_t addr)
{
	static const uint8_t int3 = 0xcc;
	struct gdb_paging pg;
	struct gdb_sw_bp *bp;
	uint64_t pa, left;
	uint8_t orig;
	int rc;

	if (bp_find(s, addr))
		return 0;
	if (s->nr_bps >= GDB_MAX_SW_BP)
		return -ENOSPC;
	rc = paging_of(s, &pg);
	if (rc == 0)
		rc = gdb_translate(&pg, addr, s->ops->read_phys, s->opaque, &pa, &left);
	if (rc == 0)
		rc = s->ops->read_phys(s->opaque, pa, &orig, 1);
	if (rc == 0)
		rc = s->ops->write_phys(s->opaque, pa, &int3, 1);
	if (rc < 0)
		return rc;
	if (s->nr_bps % 64 == 0) {
		bp = realloc(s->bps, (s->nr_bps + 64) * sizeof(*bp));
		if (!bp) {
			(void)s->ops->write_phys(s->opaque, pa, &orig, 1);
			return -ENOMEM;
		}
		s->bps = bp;
	}
	s->bps[s->nr_bps++] = (struct gdb_sw_bp){ .addr = addr, .gpa = pa, .orig = orig };
	return sync_debug(s);
}

static int sw_bp_remove(struct gdb_stub *s, uint64_t addr)
{
	struct gdb_sw_bp *bp = bp_find(s, addr);
	int rc;

	if (!bp)
		return -ENOENT;
	/* The physical address saved at insertion: the page tables may have changed since. */
	rc = s->ops->write_phys(s->opaque, bp->gpa, &bp->orig, 1);
	*bp = s->bps[--s->nr_bps];
	if (rc < 0)
		return rc;
	return sync_debug(s);
}

/* DR7 (SDM vol. 3, 18.2.4): G0-G3 enable bits, R/W and LEN fields at 16 + 4n. */
static void hw_to_dr7(struct gdb_stub *s)
{
	uint64_t dr7 = 0;

	for (int i = 0; i < 4; i++) {
		const struct gdb_hw_bp *h = &s->hw[i];
		unsigned rw, ln;
		if (!h->used)
			continue;
		rw = h->type == 1 ? 0 : h->type == 2 ? 1 : 3;
		ln = h->len == 1 ? 0 : h->len == 2 ? 1 : h->len == 8 ? 2 : 3;
		if (h->type == 1)
			ln = 0;
		dr7 |= 2ull << (i * 2);
		dr7 |= (uint64_t)(rw | ln << 2) << (16 + i * 4);
		s->dbg.dr[i] = h->addr;
	}
	s->dbg.dr7 = dr7;
}

static int hw_insert(struct gdb_stub *s, int type, uint64_t addr, uint64_t len)
{
	if (type != 1 && len != 1 && len != 2 && len != 4 && len != 8)
		return -EINVAL;
	if (type != 1 && (addr & (len - 1)))
		return -EINVAL;
	for (int i = 0; i < 4; i++) {
		if (s->hw[i].used && s->hw[i].type == type && s->hw[i].addr == addr)
			return 0;
	}
	for (int i = 0; i < 4; i++) {
		if (s->hw[i].used)
			continue;
		s->hw[i] = (struct gdb_hw_bp){ true, type, addr, type == 1 ? 1 : (unsigned)len };
		hw_to_dr7(s);
		return sync_debug(s);
	}
	return -ENOSPC;
}

static int hw_remove(struct gdb_stub *s, int type, uint64_t addr)
{
	for (int i = 0; i < 4; i++) {
		if (s->hw[i].used && s->hw[i].type == type && s->hw[i].addr == addr) {
			s->hw[i].used = false;
			s->dbg.dr[i] = 0;
			hw_to_dr7(s);
			return sync_debug(s);
		}
	}
	return -ENOENT;
}

void gdb_stub_reset(struct gdb_stub *s)
{
	while (s->nr_bps)
		(void)sw_bp_remove(s, s->bps[s->nr_bps - 1].addr);
	memset(s->hw, 0, sizeof(s->hw));
	memset(&s->dbg, 0, sizeof(s->dbg));
	(void)s->ops->set_debug(s->opaque, &s->dbg);
	s->noack = false;
	s->noack_pending = false;
	s->gcpu = 0;
	s->ccpu = -1;
}

void gdb_stub_stopped(struct gdb_stub *s, const struct gdb_stop *st)
{
	static const char *const watch[] = { "", "", "watch", "", "awatch" };

	s->last = *st;
	if (st->cpu >= 0 && st->cpu < nr_cpus(s))
		s->gcpu = st->cpu;
	switch (st->reason) {
	case GDB_STOP_POWEROFF:
		reply(s, "W00");
		return;
	case GDB_STOP_KILLED:
		reply(s, "X09");
		return;
	case GDB_STOP_INTERRUPT:
		reply(s, "T02thread:%02x;", s->gcpu + 1);
		return;
	case GDB_STOP_TRAP:
		break;
	}
	for (int i = 0; i < 4; i++) {
		if ((st->dr6 & (1u << i)) && s->hw[i].used && s->hw[i].type != 1) {
			reply(s, "T05%s:%" PRIx64 ";thread:%02x;", watch[s->hw[i].type],
			      s->hw[i].addr, s->gcpu + 1);
			return;
		}
	}
	reply(s, "T05thread:%02x;", s->gcpu + 1);
}

/* Thread IDs are vCPU index + 1 (0 is "any", -1 "all"), as QEMU numbers them. */
static int parse_thread(struct gdb_stub *s, const char *p, int *cpu)
{
	uint64_t v;
	const char *end;

	if (strncmp(p, "p", 1) == 0) {
		/* Multiprocess form pPID.TID: only process 1 exists. */
		p = strchr(p, '.');
		if (!p)
			return -EINVAL;
		p++;
	}
	if (strcmp(p, "-1") == 0) {
		*cpu = -1;
		return 0;
	}
	if (gdb_parse_hex(p, &v, &end) < 0 || *end)
		return -EINVAL;
	if (v == 0) {
		*cpu = -1;
		return 0;
	}
	if (v > (uint64_t)nr_cpus(s))
		return -EINVAL;
	*cpu = (int)v - 1;
	return 0;
}

static enum gdb_action cmd_regs_read(struct gdb_stub *s)
{
	struct gdb_x86_regs r;
	uint8_t raw[GDB_REGS_BYTES];
	int rc = s->ops->get_regs(s->opaque, s->gcpu, &r);

	if (rc < 0)
		return reply_err(s, rc);
	gdb_regs_pack(&r, raw);
	gdb_hex_encode(raw, sizeof(raw), s->reply);
	s->reply_len = 2 * sizeof(raw);
	return GDB_ACT_REPLY;
}

static enum gdb_action cmd_regs_write(struct gdb_stub *s, const char *hex, size_t n)
{
	struct gdb_x86_regs r;
	uint8_t raw[GDB_REGS_BYTES];
	int rc;

	if (n % 2 || n / 2 > sizeof(raw) || gdb_hex_decode(hex, raw, n / 2) < 0)
		return reply_err(s, EINVAL);
	rc = s->ops->get_regs(s->opaque, s->gcpu, &r);
	if (rc == 0)
		rc = gdb_regs_unpack(&r, raw, n / 2) < 0 ? -EINVAL : 0;
	if (rc == 0)
		rc = s->ops->set_regs(s->opaque, s->gcpu, &r);
	return rc < 0 ? reply_err(s, rc) : reply(s, "OK");
}

static enum gdb_action cmd_reg_read(struct gdb_stub *s, const char *p)
{
	struct gdb_x86_regs r;
	uint8_t raw[16];
	uint64_t n;
	const char *end;
	int rc;

	if (gdb_parse_hex(p, &n, &end) < 0 || *end)
		return reply_err(s, EINVAL);
	/* An unknown register is an empty reply to 'p', so gdb stops asking for it. */
	if (n >= GDB_NR_REGS)
		return reply(s, "%s", "");
	rc = s->ops->get_regs(s->opaque, s->gcpu, &r);
	if (rc < 0)
		return reply_err(s, rc);
	rc = gdb_reg_get(&r, (int)n, raw);
	gdb_hex_encode(raw, (size_t)rc, s->reply);
	s->reply_len = 2 * (size_t)rc;
	return GDB_ACT_REPLY;
}

static enum gdb_action cmd_reg_write(struct gdb_stub *s, const char *p)
{
	struct gdb_x86_regs r;
	uint8_t raw[16];
	uint64_t n;
	const char *end;
	int rc, size;

	if (gdb_parse_hex(p, &n, &end) < 0 || *end != '=' || n >= GDB_NR_REGS)
		return reply_err(s, EINVAL);
	size = gdb_reg_size((int)n);
	if (strlen(end + 1) != 2 * (size_t)size || gdb_hex_decode(end + 1, raw, (size_t)size) < 0)
		return reply_err(s, EINVAL);
	rc = s->ops->get_regs(s->opaque, s->gcpu, &r);
	if (rc == 0) {
		gdb_reg_set(&r, (int)n, raw);
		rc = s->ops->set_regs(s->opaque, s->gcpu, &r);
	}
	return rc < 0 ? reply_err(s, rc) : reply(s, "OK");
}

/* "ADDR,LEN" then the character that follows (':' or end). */
static int parse_addr_len(const char *p, uint64_t *addr, uint64_t *len, const char **end)
{
	if (gdb_parse_hex(p, addr, &p) < 0 || *p != ',')
		return -EINVAL;
	return gdb_parse_hex(p + 1, len, end);
}

static enum gdb_action cmd_mem_read(struct gdb_stub *s, const char *p)
{
	uint8_t buf[(GDB_PACKET_MAX - 4) / 2];
	uint64_t addr, len;
	const char *end;
	size_t done;
	int rc;

	if (parse_addr_len(p, &addr, &len, &end) < 0 || *end)
		return reply_err(s, EINVAL);
	/* gdb never asks for more than PacketSize allows; clamp anyone who does. */
	if (len > sizeof(buf))
		len = sizeof(buf);
	rc = gdb_stub_read_mem(s, addr, buf, (size_t)len, &done);
	if (rc < 0 || (done == 0 && len))
		return reply_err(s, rc < 0 ? rc : EFAULT);
	gdb_hex_encode(buf, done, s->reply);
	s->reply_len = 2 * done;
	return GDB_ACT_REPLY;
}

static enum gdb_action cmd_mem_write(struct gdb_stub *s, const char *pkt, size_t n, bool binary)
{
	uint8_t buf[GDB_PACKET_MAX];
	uint64_t addr, len;
	const char *data;
	size_t avail;
	int rc;

	if (parse_addr_len(pkt + 1, &addr, &len, &data) < 0 || *data != ':')
		return reply_err(s, EINVAL);
	data++;
	avail = n - (size_t)(data - pkt);
	if (binary) {
		if (len != avail)
			return reply_err(s, EINVAL);
		memcpy(buf, data, avail);
	} else if (avail != 2 * len || gdb_hex_decode(data, buf, (size_t)len) < 0) {
		return reply_err(s, EINVAL);
	}
	if (len == 0)
		return reply(s, "OK");
	rc = gdb_stub_write_mem(s, addr, buf, (size_t)len);
	return rc < 0 ? reply_err(s, rc) : reply(s, "OK");
}

static enum gdb_action cmd_breakpoint(struct gdb_stub *s, const char *p, bool insert)
{
	uint64_t type, addr, kind;
	const char *end;
	int rc;

	if (gdb_parse_hex(p, &type, &end) < 0 || *end != ',' ||
	    parse_addr_len(end + 1, &addr, &kind, &end) < 0)
		return reply_err(s, EINVAL);
	/* Conditions and commands (";X..." after the kind) are gdb's to evaluate: ignored. */
	if (*end && *end != ';')
		return reply_err(s, EINVAL);
	switch (type) {
	case 0:
		rc = insert ? sw_bp_insert(s, addr) : sw_bp_remove(s, addr);
		break;
	case 1:
	case 2:
	case 4:
		rc = insert ? hw_insert(s, (int)type, addr, kind) : hw_remove(s, (int)type, addr);
		break;
	default:
		/* Z3 (read-only watch): x86 debug registers cannot watch reads alone. */
		return reply(s, "%s", "");
	}
	return rc < 0 ? reply_err(s, rc) : reply(s, "OK");
}

static enum gdb_action resume(struct gdb_stub *s, int step_cpu)
{
	int rc = s->ops->resume(s->opaque, step_cpu);

	return rc < 0 ? reply_err(s, rc) : GDB_ACT_RESUME;
}

/* 'c [addr]' and 's [addr]': resume at addr if given (RSP "c [addr]"). */
static enum gdb_action cmd_continue(struct gdb_stub *s, const char *p, bool step)
{
	struct gdb_x86_regs r;
	uint64_t addr;
	const char *end;
	int cpu = s->ccpu >= 0 ? s->ccpu : s->gcpu;
	int rc;

	if (*p) {
		if (gdb_parse_hex(p, &addr, &end) < 0 || *end)
			return reply_err(s, EINVAL);
		rc = s->ops->get_regs(s->opaque, cpu, &r);
		if (rc == 0) {
			r.rip = addr;
			rc = s->ops->set_regs(s->opaque, cpu, &r);
		}
		if (rc < 0)
			return reply_err(s, rc);
	}
	return resume(s, step ? cpu : -1);
}

/*
 * vCont;ACTION[:TID][;ACTION[:TID]]...: a step for one thread wins over a
 * continue for the rest, which stay stopped while it steps (as QEMU's
 * gdbstub with KVM); signals (C/S) are not delivered to a machine.
 */
static enum gdb_action cmd_vcont(struct gdb_stub *s, const char *p)
{
	int step_cpu = -2;

	if (strcmp(p, "?") == 0)
		return reply(s, "vCont;c;C;s;S");
	if (*p != ';')
		return reply_err(s, EINVAL);
	while (*p == ';') {
		char act = p[1];
		int cpu = s->ccpu >= 0 ? s->ccpu : s->gcpu;
		p += 2;
		if (act == 'C' || act == 'S') {
			uint64_t sig;
			if (gdb_parse_hex(p, &sig, &p) < 0)
				return reply_err(s, EINVAL);
		} else if (act != 'c' && act != 's') {
			return reply_err(s, EINVAL);
		}
		if (*p == ':') {
			char tid[32];
			size_t n = strcspn(p + 1, ";");
			if (n >= sizeof(tid))
				return reply_err(s, EINVAL);
			memcpy(tid, p + 1, n);
			tid[n] = 0;
			if (parse_thread(s, tid, &cpu) < 0)
				return reply_err(s, EINVAL);
			if (cpu < 0)
				cpu = s->gcpu;
			p += 1 + n;
		}
		if ((act == 's' || act == 'S') && step_cpu == -2)
			step_cpu = cpu;
	}
	if (*p)
		return reply_err(s, EINVAL);
	return resume(s, step_cpu >= 0 ? step_cpu : -1);
}

static enum gdb_action cmd_xfer_features(struct gdb_stub *s, const char *p)
{
	static const char annex[] = "target.xml:";
	uint64_t off, len;
	size_t xlen;
	const char *xml = gdb_target_xml(&xlen);
	const char *end;

	if (strncmp(p, annex, sizeof(annex) - 1) != 0)
		return reply_err(s, ENOENT);
	if (parse_addr_len(p + sizeof(annex) - 1, &off, &len, &end) < 0 || *end)
		return reply_err(s, EINVAL);
	if (off >= xlen)
		return reply(s, "l");
	if (len > GDB_PACKET_MAX - 8)
		len = GDB_PACKET_MAX - 8;
	if (len > xlen - off)
		len = xlen - off;
	/* XML has no '$#}*' needing escapes; server.c escapes all replies anyway. */
	return reply(s, "%c%.*s", off + len >= xlen ? 'l' : 'm', (int)len, xml + off);
}

static enum gdb_action cmd_rcmd(struct gdb_stub *s, const char *hex)
{
	char line[GDB_PACKET_MAX / 2 + 1];
	size_t n = strlen(hex);
	int rc;

	if (n % 2 || n / 2 >= sizeof(line) || gdb_hex_decode(hex, line, n / 2) < 0)
		return reply_err(s, EINVAL);
	line[n / 2] = 0;
	if (!s->ops->monitor)
		return reply(s, "%s", "");
	s->console[0] = 0;
	rc = s->ops->monitor(s->opaque, line, s->console, sizeof(s->console));
	s->console[sizeof(s->console) - 1] = 0;
	s->console_len = strlen(s->console);
	return rc < 0 ? reply_err(s, rc) : reply(s, "OK");
}

static enum gdb_action cmd_thread_info(struct gdb_stub *s, const char *p)
{
	static const char extra[] = "ThreadExtraInfo,";
	char text[64];
	int cpu;

	if (strcmp(p, "fThreadInfo") == 0) {
		size_t o = 0;
		s->reply[o++] = 'm';
		for (int i = 0; i < nr_cpus(s) && o + 12 < sizeof(s->reply); i++)
			o += (size_t)snprintf(s->reply + o, sizeof(s->reply) - o, "%s%02x",
					      i ? "," : "", i + 1);
		s->reply_len = o;
		return GDB_ACT_REPLY;
	}
	if (strcmp(p, "sThreadInfo") == 0)
		return reply(s, "l");
	if (strcmp(p, "C") == 0)
		return reply(s, "QC%02x", s->gcpu + 1);
	if (strncmp(p, extra, sizeof(extra) - 1) == 0) {
		if (parse_thread(s, p + sizeof(extra) - 1, &cpu) < 0 || cpu < 0)
			return reply_err(s, EINVAL);
		snprintf(text, sizeof(text), "CPU#%d [halted ]", cpu);
		gdb_hex_encode(text, strlen(text), s->reply);
		s->reply_len = 2 * strlen(text);
		return GDB_ACT_REPLY;
	}
	return reply(s, "%s", "");
}

static enum gdb_action cmd_query(struct gdb_stub *s, const char *p)
{
	if (strncmp(p, "qSupported", 10) == 0)
		return reply(s, "%s", supported);
	if (strncmp(p, "qXfer:features:read:", 20) == 0)
		return cmd_xfer_features(s, p + 20);
	if (strcmp(p, "qAttached") == 0)
		return reply(s, "1");
	if (strncmp(p, "qRcmd,", 6) == 0)
		return cmd_rcmd(s, p + 6);
	if (strcmp(p, "qOffsets") == 0)
		return reply(s, "Text=0;Data=0;Bss=0");
	if (strncmp(p, "qSymbol", 7) == 0)
		return reply(s, "OK");
	if (strcmp(p, "QStartNoAckMode") == 0) {
		s->noack_pending = true;
		return reply(s, "OK");
	}
	return cmd_thread_info(s, p + 1);
}

static enum gdb_action cmd_set_thread(struct gdb_stub *s, const char *p)
{
	int cpu;

	if ((*p != 'g' && *p != 'c') || parse_thread(s, p + 1, &cpu) < 0)
		return reply_err(s, EINVAL);
	if (*p == 'g')
		s->gcpu = cpu < 0 ? s->gcpu : cpu;
	else
		s->ccpu = cpu;
	return reply(s, "OK");
}

static enum gdb_action cmd_thread_alive(struct gdb_stub *s, const char *p)
{
	int cpu;

	return parse_thread(s, p, &cpu) < 0 ? reply_err(s, ESRCH) : reply(s, "OK");
}

enum gdb_action gdb_stub_handle(struct gdb_stub *s, const char *pkt, size_t len)
{
	s->reply_len = 0;
	s->reply[0] = 0;
	s->console_len = 0;
	if (len == 0)
		return reply(s, "%s", "");
	switch (pkt[0]) {
	case '?':
		gdb_stub_stopped(s, &s->last);
		return GDB_ACT_REPLY;
	case 'g':
		return cmd_regs_read(s);
	case 'G':
		return cmd_regs_write(s, pkt + 1, len - 1);
	case 'p':
		return cmd_reg_read(s, pkt + 1);
	case 'P':
		return cmd_reg_write(s, pkt + 1);
	case 'm':
		return cmd_mem_read(s, pkt + 1);
	case 'M':
		return cmd_mem_write(s, pkt, len, false);
	case 'X':
		return cmd_mem_write(s, pkt, len, true);
	case 'Z':
	case 'z':
		return cmd_breakpoint(s, pkt + 1, pkt[0] == 'Z');
	case 'c':
		return cmd_continue(s, pkt + 1, false);
	case 's':
		return cmd_continue(s, pkt + 1, true);
	case 'H':
		return cmd_set_thread(s, pkt + 1);
	case 'T':
		return cmd_thread_alive(s, pkt + 1);
	case 'q':
	case 'Q':
		return cmd_query(s, pkt);
	case 'v':
		if (strncmp(pkt, "vCont", 5) == 0)
			return cmd_vcont(s, pkt + 5);
		if (strncmp(pkt, "vKill", 5) == 0)
			return GDB_ACT_KILL;
		return reply(s, "%s", "");
	case 'D':
		reply(s, "OK");
		return GDB_ACT_DETACH;
	case 'k':
		return GDB_ACT_KILL;
	default:
		/* RSP: an empty reply says "not supported". */
		return reply(s, "%s", "");
	}
}
