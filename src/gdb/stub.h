/*
 * The GDB remote protocol's commands (gdb manual, Appendix E "Packets"),
 * one decoded packet in, one reply out, over a struct gdb_target.  No I/O
 * here: server.c owns the socket and the framing, so the unit tests and
 * the fuzzer drive the very same code without one.
 */
#ifndef KESTREL_GDB_STUB_H
#define KESTREL_GDB_STUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gdb/packet.h"
#include "gdb/target.h"

/* Software breakpoints one session may hold; more get E28 (ENOSPC), never a crash. */
#define GDB_MAX_SW_BP 4096

enum gdb_action {
	GDB_ACT_REPLY,		/* send stub->reply */
	GDB_ACT_RESUME,		/* the target runs: the reply is the next stop */
	GDB_ACT_DETACH,		/* send the reply, then close the connection */
	GDB_ACT_KILL,		/* close the connection without a reply */
};

struct gdb_sw_bp {
	uint64_t addr;		/* virtual, as gdb gave it */
	uint64_t gpa;		/* where the int3 was written */
	uint8_t orig;		/* the byte it replaced */
};

struct gdb_hw_bp {
	bool used;
	int type;		/* 1 exec, 2 write, 4 access: the Z packet's type */
	uint64_t addr;
	unsigned len;
};

struct gdb_stub {
	const struct gdb_target_ops *ops;
	void *opaque;
	bool noack;		/* QStartNoAckMode was accepted */
	bool noack_pending;	/* ... and takes effect after its OK is acked */
	int gcpu;		/* Hg: registers and memory (0-based) */
	int ccpu;		/* Hc: step (-1: any) */
	struct gdb_stop last;	/* for '?' */
	struct gdb_debug dbg;
	struct gdb_sw_bp *bps;
	size_t nr_bps;
	struct gdb_hw_bp hw[4];
	char console[GDB_PACKET_MAX];	/* qRcmd output, sent as O packets before the reply */
	size_t console_len;
	char reply[GDB_PACKET_MAX + 1];
	size_t reply_len;
};

void gdb_stub_init(struct gdb_stub *s, const struct gdb_target_ops *ops, void *opaque);
/* Restores every patched int3 and clears the debug registers (D, k, a lost connection). */
void gdb_stub_reset(struct gdb_stub *s);
void gdb_stub_free(struct gdb_stub *s);
/* Handles one decoded packet (NUL-terminated, len bytes). */
enum gdb_action gdb_stub_handle(struct gdb_stub *s, const char *pkt, size_t len);
/* Formats the stop reply for st into s->reply and makes its vCPU current. */
void gdb_stub_stopped(struct gdb_stub *s, const struct gdb_stop *st);
/* Virtual memory through the current vCPU's page tables, int3s hidden (reads) or kept (writes). */
int gdb_stub_read_mem(struct gdb_stub *s, uint64_t va, uint8_t *buf, size_t len, size_t *done);
int gdb_stub_write_mem(struct gdb_stub *s, uint64_t va, const uint8_t *buf, size_t len);

#endif
