/* GDB RSP packet framing; see packet.h. */
#include "gdb/packet.h"
#include "util/bytes.h"

#include <string.h>

enum { RX_IDLE, RX_DATA, RX_CS1, RX_CS2 };

void gdb_rx_init(struct gdb_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	rx->state = RX_IDLE;
}

static void rx_start(struct gdb_rx *rx)
{
	rx->state = RX_DATA;
	rx->sum = 0;
	rx->cs = 0;
	rx->escape = false;
	rx->rle = false;
	rx->overflow = false;
	rx->bad_hex = false;
	rx->len = 0;
}

static void rx_put(struct gdb_rx *rx, uint8_t c)
{
	if (rx->len >= GDB_PACKET_MAX) {
		rx->overflow = true;
		return;
	}
	rx->buf[rx->len++] = c;
}

/*
 * Run-length encoding (RSP "Binary Data"): "X*n" repeats X n - 29 more
 * times, n printable (32..126) and never '#' or '$'.
 */
static void rx_repeat(struct gdb_rx *rx, uint8_t n)
{
	if (rx->len == 0 || n < 29 || n > 126) {
		rx->overflow |= rx->len == 0;
		return;
	}
	uint8_t prev = rx->buf[rx->len - 1];
	for (int i = 0; i < n - 29; i++)
		rx_put(rx, prev);
}

static void rx_data(struct gdb_rx *rx, uint8_t c)
{
	rx->sum += c;
	if (rx->rle) {
		rx->rle = false;
		rx_repeat(rx, c);
	} else if (rx->escape) {
		rx->escape = false;
		rx_put(rx, c ^ 0x20);
	} else if (c == '}') {
		rx->escape = true;
	} else if (c == '*') {
		rx->rle = true;
	} else {
		rx_put(rx, c);
	}
}

static enum gdb_rx_event rx_done(struct gdb_rx *rx)
{
	rx->state = RX_IDLE;
	rx->buf[rx->len < GDB_PACKET_MAX ? rx->len : GDB_PACKET_MAX] = 0;
	if (rx->overflow)
		return GDB_RX_TOO_LONG;
	if (rx->bad_hex || rx->cs != rx->sum)
		return GDB_RX_BAD_CSUM;
	return GDB_RX_PACKET;
}

enum gdb_rx_event gdb_rx_feed(struct gdb_rx *rx, uint8_t c)
{
	int v;

	switch (rx->state) {
	case RX_IDLE:
		if (c == '$')
			rx_start(rx);
		else if (c == '+')
			return GDB_RX_ACK;
		else if (c == '-')
			return GDB_RX_NACK;
		else if (c == 0x03)
			return GDB_RX_INTERRUPT;
		/* Anything else between packets is line noise: dropped. */
		return GDB_RX_NONE;
	case RX_DATA:
		if (c == '$' && !rx->escape && !rx->rle) {
			/* A new start: the sender gave up on the last packet. */
			rx_start(rx);
		} else if (c == '#' && !rx->escape && !rx->rle) {
			rx->state = RX_CS1;
		} else {
			rx_data(rx, c);
		}
		return GDB_RX_NONE;
	case RX_CS1:
		v = hex_digit(c);
		rx->bad_hex = v < 0;
		rx->cs = (uint8_t)((v < 0 ? 0 : v) << 4);
		rx->state = RX_CS2;
		return GDB_RX_NONE;
	default:
		v = hex_digit(c);
		rx->bad_hex |= v < 0;
		rx->cs |= (uint8_t)(v < 0 ? 0 : v);
		return rx_done(rx);
	}
}

int gdb_frame(const void *payload, size_t len, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *p = payload;
	uint8_t sum = 0;
	size_t o = 0;

	if (cap < 4)
		return -1;
	out[o++] = '$';
	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];
		bool esc = c == '$' || c == '#' || c == '}' || c == '*';
		if (o + (esc ? 2 : 1) + 3 > cap)
			return -1;
		if (esc) {
			out[o++] = '}';
			sum += '}';
			c ^= 0x20;
		}
		out[o++] = (char)c;
		sum += c;
	}
	out[o++] = '#';
	out[o++] = hex[sum >> 4];
	out[o++] = hex[sum & 15];
	return (int)o;
}

void gdb_hex_encode(const void *in, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *p = in;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * len] = 0;
}

int gdb_hex_decode(const char *in, void *out, size_t len)
{
	uint8_t *p = out;

	for (size_t i = 0; i < len; i++) {
		int hi = hex_digit((unsigned char)in[2 * i]);
		if (hi < 0)
			return -1;
		int lo = hex_digit((unsigned char)in[2 * i + 1]);
		if (lo < 0)
			return -1;
		p[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int gdb_parse_hex(const char *s, uint64_t *val, const char **end)
{
	uint64_t v = 0;
	int n = 0, d;

	while ((d = hex_digit((unsigned char)s[n])) >= 0) {
		if (v >> 60)
			return -1;
		v = v << 4 | (uint64_t)d;
		n++;
	}
	if (n == 0)
		return -1;
	*val = v;
	if (end)
		*end = s + n;
	return 0;
}
