/*
 * The GDB stub's connection: a listening socket (QEMU's -gdb tcp:HOST:PORT
 * or unix:PATH,server), one client at a time, served by its own thread so
 * the VMM's main loop never waits on a debugger.
 */
#ifndef KESTREL_GDB_SERVER_H
#define KESTREL_GDB_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gdb/target.h"

struct gdb_server;

/*
 * Parses spec ("tcp::PORT" listens on 127.0.0.1, "tcp:HOST:PORT",
 * "unix:PATH[,server][,wait=off]") and listens.  NULL with a message in err
 * on failure.
 */
struct gdb_server *gdb_server_open(const char *spec, const struct gdb_target_ops *ops,
				   void *opaque, char *err, size_t errlen);
/* Starts serving on a thread; returns 0 or a negative errno. */
int gdb_server_start(struct gdb_server *srv);
/* Detaches any client (the VM runs on) and frees everything. */
void gdb_server_close(struct gdb_server *srv);
/* From any thread: the target stopped after resume(); the stub tells gdb. */
void gdb_server_notify_stop(struct gdb_server *srv, const struct gdb_stop *st);
/*
 * From a vCPU thread on an int3 exit, with the VM running (so the table is
 * not changing): whether the stub patched addr.  An int3 it did not patch is
 * the guest's own, to be handed back to the guest.
 */
bool gdb_server_has_sw_bp(const struct gdb_server *srv, uint64_t addr);
/* A debugger is attached and holds the VM stopped (QMP query-status "debug"). */
bool gdb_server_holds_vm(const struct gdb_server *srv);
/* The address it listens on, for messages ("tcp:127.0.0.1:1234"). */
const char *gdb_server_address(const struct gdb_server *srv);
/* The port chosen when spec asked for port 0 (tests), else the one given. */
int gdb_server_port(const struct gdb_server *srv);

#endif
