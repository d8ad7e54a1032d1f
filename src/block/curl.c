/*
 * http, https, ftp, ftps: a read-only disk on a web or FTP server, through
 * libcurl, as QEMU's block/curl.c: the size from a HEAD request, every read a
 * byte range (RFC 9110 §14), served from a read-ahead window when it can be.
 * A server without byte ranges cannot be a disk and is refused.
 */
#include "block/block_int.h"
#include "block/curl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const curl_protocols[] = { "http", "https", "ftp", "ftps" };

bool block_curl_protocol(const char *proto)
{
	for (size_t i = 0; i < sizeof(curl_protocols) / sizeof(curl_protocols[0]); i++)
		if (!strcmp(proto, curl_protocols[i]))
			return true;
	return false;
}

#ifdef KESTREL_CURL
#include <curl/curl.h>

/* QEMU's defaults (block/curl.c): 256 KiB read-ahead, 5 s per request. */
#define CURL_DEFAULT_READAHEAD	(256u << 10)
#define CURL_DEFAULT_TIMEOUT	5
#define CURL_MAX_READAHEAD	(64u << 20)

struct curl_conn {
	CURL *h;
	pthread_mutex_t lock;		/* one transfer at a time on the handle */
	int64_t size;
	char errbuf[CURL_ERROR_SIZE];
	/* The read-ahead window: the last range fetched. */
	uint8_t *win;
	uint64_t win_off, win_len, readahead;
	bool accept_ranges;
};

/* Where a transfer's body goes: at most cap bytes (a server sending more is wrong). */
struct sink {
	uint8_t *buf;
	size_t len, cap;
	bool overflow;
};

static size_t to_sink(char *data, size_t size, size_t n, void *opaque)
{
	struct sink *s = opaque;
	size_t bytes = size * n;

	if (bytes > s->cap - s->len) {
		s->overflow = true;
		return 0;	/* ends the transfer with CURLE_WRITE_ERROR */
	}
	memcpy(s->buf + s->len, data, bytes);
	s->len += bytes;
	return bytes;
}

/* "Accept-Ranges: bytes" in the HEAD answer (RFC 9110 §14.3). */
static size_t on_header(char *data, size_t size, size_t n, void *opaque)
{
	struct curl_conn *c = opaque;
	size_t bytes = size * n;
	static const char want[] = "accept-ranges: bytes";

	if (bytes >= sizeof(want) - 1 && !strncasecmp(data, want, sizeof(want) - 1))
		c->accept_ranges = true;
	return bytes;
}

/* Fetches [off, off + len) into buf; 0 or -EIO. */
static int fetch(struct curl_conn *c, uint64_t off, uint8_t *buf, size_t len)
{
	struct sink s = { .buf = buf, .cap = len };
	char range[64];
	CURLcode rc;

	snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
	curl_easy_setopt(c->h, CURLOPT_NOBODY, 0L);
	curl_easy_setopt(c->h, CURLOPT_RANGE, range);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, to_sink);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &s);
	rc = curl_easy_perform(c->h);
	if (rc != CURLE_OK || s.overflow || s.len != len) {
		fprintf(stderr, "curl: reading %zu bytes at %llu: %s\n", len,
			(unsigned long long)off,
			rc != CURLE_OK ? c->errbuf : s.overflow ? "the server sent more than asked"
							       : "short read");
		return -EIO;
	}
	return 0;
}

static int curl_conn_pread(void *conn, uint64_t off, void *buf, size_t len)
{
	struct curl_conn *c = conn;
	uint64_t size = (uint64_t)c->size, want;
	uint8_t *p = buf;
	int ret = 0;

	/* As a file: past the end reads as zeroes. */
	if (off >= size) {
		memset(buf, 0, len);
		return 0;
	}
	if (len > size - off) {
		memset(p + (size - off), 0, len - (size - off));
		len = (size_t)(size - off);
	}
	pthread_mutex_lock(&c->lock);
	if (!(off >= c->win_off && off + len <= c->win_off + c->win_len)) {
		want = len > c->readahead ? len : c->readahead;
		if (want > size - off)
			want = size - off;
		if (want > c->readahead) {
			/* Larger than the window: straight into the caller's buffer. */
			ret = fetch(c, off, p, len);
			pthread_mutex_unlock(&c->lock);
			return ret;
		}
		c->win_len = 0;
		ret = fetch(c, off, c->win, (size_t)want);
		if (ret == 0) {
			c->win_off = off;
			c->win_len = want;
		}
	}
	if (ret == 0)
		memcpy(p, c->win + (off - c->win_off), len);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int curl_conn_pwrite(void *conn, uint64_t off, const void *buf, size_t len)
{
	return -EROFS;
}

static int curl_conn_flush(void *conn)
{
	return 0;
}

static int curl_conn_zero(void *conn, uint64_t off, uint64_t len, bool may_unmap)
{
	return -EROFS;
}

static int64_t curl_conn_size(void *conn)
{
	return ((struct curl_conn *)conn)->size;
}

static void curl_conn_close(void *conn)
{
	struct curl_conn *c = conn;

	if (c->h)
		curl_easy_cleanup(c->h);
	pthread_mutex_destroy(&c->lock);
	free(c->win);
	free(c);
}

static const struct block_proto curl_proto = {
	.name = "curl",
	.label = "curl",
	.pread = curl_conn_pread,
	.pwrite = curl_conn_pwrite,
	.flush = curl_conn_flush,
	.zero = curl_conn_zero,
	.size = curl_conn_size,
	.close = curl_conn_close,
};

/* The HEAD request: the size, and whether the server takes byte ranges. */
static int probe_size(struct curl_conn *c, const char *url, char *err, size_t errlen)
{
	curl_off_t length = -1;
	bool http = !strncmp(url, "http", 4);

	curl_easy_setopt(c->h, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->h, CURLOPT_HEADERDATA, c);
	if (curl_easy_perform(c->h) != CURLE_OK)
		return block_err(err, errlen, "CURL: Error opening file: %s", c->errbuf);
	if (curl_easy_getinfo(c->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) != CURLE_OK ||
	    length < 0)
		return block_err(err, errlen, "CURL: Error opening file: Server didn't report file size.");
	if (http && !c->accept_ranges)
		return block_err(err, errlen, "CURL: Error opening file: Server does not support "
				 "'range' (byte ranges).");
	c->size = (int64_t)length;
	return 0;
}

static void curl_global_init_default(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int block_curl_open(const char *url, const struct block_curl_opts *opts, const char *format,
		    unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		    size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct curl_conn *c;

	*out = NULL;
	if (!(flags & BLOCK_RDONLY))
		return block_err(err, errlen, "curl driver does not support writes");
	if (opts->readahead > CURL_MAX_READAHEAD || (opts->readahead && opts->readahead % 512))
		return block_err(err, errlen, "HTTP_READAHEAD_SIZE %llu is not a multiple of 512 "
				 "or above 64 MiB", (unsigned long long)opts->readahead);
	pthread_once(&once, curl_global_init_default);
	c = calloc(1, sizeof(*c));
	if (!c)
		return block_err(err, errlen, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	c->readahead = opts->readahead ? opts->readahead : CURL_DEFAULT_READAHEAD;
	c->win = malloc(c->readahead);
	c->h = curl_easy_init();
	if (!c->win || !c->h) {
		curl_conn_close(c);
		return block_err(err, errlen, "out of memory");
	}
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->h, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c->h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT, opts->timeout ? opts->timeout
							       : (long)CURL_DEFAULT_TIMEOUT);
	curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYPEER, opts->no_sslverify ? 0L : 1L);
	curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYHOST, opts->no_sslverify ? 0L : 2L);
	if (opts->cookie)
		curl_easy_setopt(c->h, CURLOPT_COOKIE, opts->cookie);
	if (probe_size(c, url, err, errlen) < 0) {
		curl_conn_close(c);
		return -1;
	}
	return block_open_proto(url, &curl_proto, c, format, flags, parent, out, err, errlen);
}

bool block_curl_available(void)
{
	return true;
}

#else

int block_curl_open(const char *url, const struct block_curl_opts *opts, const char *format,
		    unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		    size_t errlen)
{
	*out = NULL;
	return block_err(err, errlen, "Unknown protocol");
}

bool block_curl_available(void)
{
	return false;
}

#endif
