/* curl.c: read-only disks on web and FTP servers (libcurl; absent: "Unknown protocol"). */
#ifndef KESTREL_BLOCK_CURL_H
#define KESTREL_BLOCK_CURL_H

#include "block/block.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* QEMU's BlockdevOptionsCurl* that change behaviour here; zero: QEMU's default. */
struct block_curl_opts {
	uint64_t readahead;		/* bytes fetched per request at least (256 KiB) */
	long timeout;			/* seconds per request (5) */
	bool no_sslverify;		/* sslverify=off: accept any certificate */
	const char *cookie;		/* a Cookie: header */
};

/* Whether proto is one of http, https, ftp, ftps. */
bool block_curl_protocol(const char *proto);
/* Opens url read-only, with format (NULL: probe) over it. */
int block_curl_open(const char *url, const struct block_curl_opts *opts, const char *format,
		    unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		    size_t errlen);
/* Whether this build has libcurl. */
bool block_curl_available(void);

#endif
