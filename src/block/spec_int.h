/*
 * Between spec.c (QEMU's block options and protocol prefixes) and
 * spec_net.c (the network protocols' nodes): not for the drivers.
 */
#ifndef KESTREL_BLOCK_SPEC_INT_H
#define KESTREL_BLOCK_SPEC_INT_H

#include <stdbool.h>
#include <stddef.h>

struct opts;
struct block_dev;

/* spec.c: the option key as on/off, QEMU's message naming its last part otherwise. */
int block_spec_get_bool(struct opts *o, const char *key, bool *out, char *err, size_t errlen);
/*
 * spec_net.c: a protocol on a server that this build has a client for: its
 * name as a string that outlives the options (a node's format_name), or NULL.
 */
const char *block_network_driver(const char *d);
/* The node of network protocol proto (block_network_driver) from options under pfx. */
int block_open_net_opts(const char *proto, struct opts *o, const char *pfx, const char *format,
			unsigned flags, struct block_dev *parent, struct block_dev **out,
			char *err, size_t errlen);
/* The node a URL or legacy name of protocol proto names; "Unknown protocol" for the rest. */
int block_open_net_uri(const char *name, const char *proto, const char *format, unsigned flags,
		       struct block_dev *parent, struct block_dev **out, char *err, size_t errlen);

#endif
