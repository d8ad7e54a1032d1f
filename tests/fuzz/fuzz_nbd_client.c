/*
 * Kestrel's NBD client (src/block/nbd.c over libnbd) fed a hostile server:
 * a thread here listens on a Unix socket, and for each input answers the
 * one connection with the input's bytes, then ends its side, while the
 * client opens the export through the block layer and reads, maps and
 * probes it.  The first byte picks the mode: bit 0 sends a valid handshake
 * first (fixed newstyle, structured replies, base:allocation, a 1 MiB
 * read-only export), so the rest are transmission replies (doc/proto.md
 * "Transmission phase"); bit 1 probes the format instead of naming raw.
 * The client must fail cleanly or succeed: no crash, no hang (the server's
 * end of the input is an end of file), nothing read past a reply.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "block/block.h"
#include "block/block_img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static char sock_path[108];
static int listen_fd = -1;

struct answer {
	const uint8_t *p;
	size_t len;
	bool handshake;
};

static void put(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* One option reply (proto.md "Option reply") at p: its length. */
static size_t rep(uint8_t *p, uint32_t opt, uint32_t type, const void *d, uint32_t n)
{
	put(p, 0x3e889045565a9ULL, 8);
	put(p + 8, opt, 4);
	put(p + 12, type, 4);
	put(p + 16, n, 4);
	if (n)
		memcpy(p + 20, d, n);
	return 20 + n;
}

/* What libnbd 1.14 asks, in its order: STRUCTURED_REPLY, SET_META_CONTEXT, GO. */
static size_t handshake(uint8_t *p)
{
	static const char ctx[] = "\0\0\0\1base:allocation";
	uint8_t info[12] = { 0, 0 };	/* NBD_INFO_EXPORT: size 1 MiB, flags */
	size_t n = 0;

	put(p, 0x4e42444d41474943ULL, 8);	/* NBDMAGIC */
	put(p + 8, 0x49484156454f5054ULL, 8);	/* IHAVEOPT */
	put(p + 16, 3, 2);			/* FIXED_NEWSTYLE | NO_ZEROES */
	n = 18;
	n += rep(p + n, 8, 1, NULL, 0);
	n += rep(p + n, 10, 4, ctx, sizeof(ctx) - 1);
	n += rep(p + n, 10, 1, NULL, 0);
	put(info + 2, 1 << 20, 8);
	put(info + 10, 0x1 | 0x2 | 0x4 | 0x80, 2);	/* HAS_FLAGS READ_ONLY FLUSH DF */
	n += rep(p + n, 7, 3, info, sizeof(info));
	n += rep(p + n, 7, 1, NULL, 0);
	return n;
}

static void send_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void *server(void *opaque)
{
	struct answer *a = opaque;
	uint8_t hs[256], sink[4096];
	int fd = accept(listen_fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	if (a->handshake)
		send_all(fd, hs, handshake(hs));
	send_all(fd, a->p, a->len);
	/* The input's end is the server's: the client sees end of file, never silence. */
	shutdown(fd, SHUT_WR);
	while (read(fd, sink, sizeof(sink)) > 0)
		;
	close(fd);
	return NULL;
}

static void setup(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	signal(SIGPIPE, SIG_IGN);
	snprintf(sock_path, sizeof(sock_path), "/tmp/kestrel-fuzz-nbdc.%d", (int)getpid());
	unlink(sock_path);
	strcpy(sa.sun_path, sock_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(listen_fd, 4) < 0)
		abort();
}

/* What kestrel-img does with an export: map, read the start, the middle and the end. */
static void use(struct block_dev *bd)
{
	static uint8_t buf[65536];
	uint64_t off = 0, size = block_length(bd), pnum, map;
	unsigned flags;

	for (int i = 0; i < 8 && off < size; i++, off += pnum)
		if (block_status(bd, off, size - off, &pnum, &map, &flags) < 0 || !pnum)
			break;
	block_pread(bd, 0, buf, sizeof(buf));
	if (size > sizeof(buf))
		block_pread(bd, size / 2, buf, sizeof(buf));
	block_pread(bd, size > 512 ? size - 512 : 0, buf, 512);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct answer a;
	struct block_dev *bd = NULL;
	char name[160], err[1024];
	pthread_t th;

	if (len < 1)
		return 0;
	if (listen_fd < 0)
		setup();
	a.handshake = data[0] & 1;
	a.p = data + 1;
	a.len = len - 1;
	if (pthread_create(&th, NULL, server, &a))
		abort();
	snprintf(name, sizeof(name), "nbd+unix:///?socket=%s", sock_path);
	if (block_open(name, data[0] & 2 ? NULL : "raw", BLOCK_RDONLY | BLOCK_NO_LOCK, &bd, err,
		       sizeof(err)) == 0) {
		use(bd);
		block_close(bd);
	} else if (!err[0]) {
		abort();		/* a failure without a reason */
	}
	pthread_join(th, NULL);
	return 0;
}
