/*
 * The VMM's NBD server (QMP nbd-server-start/add/remove/stop and
 * block-export-add/del): src/nbd's protocol over a listening socket, serving
 * block devices the VM already has open.  A thread accepts, one thread per
 * client serves (the block layer is thread-safe, block.h); exports are held
 * by the sessions that chose them, so one in use is not removed.
 */
#ifndef KESTREL_CLI_APP_NBD_H
#define KESTREL_CLI_APP_NBD_H

#include <stdbool.h>
#include <stddef.h>

#include "ui/control.h"

struct block_dev;
struct app_nbd;

struct app_nbd *app_nbd_new(void);
/* Stops the server if it runs, then frees n. */
void app_nbd_free(struct app_nbd *n);
int app_nbd_start(struct app_nbd *n, const struct nbd_listen *addr, const char *tls_creds,
		  char *err, size_t errlen);
/* Ends every session and removes every export (QEMU: "NBD server not running" if none). */
int app_nbd_stop(struct app_nbd *n, char *err, size_t errlen);
/* Exports bd (node: its name in query-block-exports) as name, under id. */
int app_nbd_add(struct app_nbd *n, const char *id, const char *node, const char *name,
		const char *description, struct block_dev *bd, bool writable, char *err,
		size_t errlen);
int app_nbd_remove(struct app_nbd *n, const char *id, char *err, size_t errlen);
unsigned app_nbd_exports(struct app_nbd *n, struct export_info *out, unsigned max);

#endif
