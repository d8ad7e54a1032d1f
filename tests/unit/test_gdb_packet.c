/* gdb/packet.c: RSP framing, acks, escapes, run-length encoding, Ctrl-C, hostile bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdb/packet.h"

/* Feeds s; returns the last non-NONE event (NONE if there was none). */
static enum gdb_rx_event feed(struct gdb_rx *rx, const char *s, size_t n)
{
	enum gdb_rx_event last = GDB_RX_NONE, e;

	for (size_t i = 0; i < n; i++) {
		e = gdb_rx_feed(rx, (uint8_t)s[i]);
		if (e != GDB_RX_NONE)
			last = e;
	}
	return last;
}

#define FEED(rx, lit) feed(rx, lit, sizeof(lit) - 1)

static void test_plain_packet(void **state)
{
	(void)state;
	struct gdb_rx rx;

	gdb_rx_init(&rx);
	/* 'g' is 0x67: the checksum is 67. */
	assert_int_equal(FEED(&rx, "$g#67"), GDB_RX_PACKET);
	assert_string_equal((char *)rx.buf, "g");
	assert_int_equal(FEED(&rx, "$qSupported:multiprocess+#c6"), GDB_RX_PACKET);
	assert_string_equal((char *)rx.buf, "qSupported:multiprocess+");
	assert_int_equal(FEED(&rx, "$#00"), GDB_RX_PACKET);
	assert_int_equal(rx.len, 0);
}

static void test_bad_checksum_and_acks(void **state)
{
	(void)state;
	struct gdb_rx rx;

	gdb_rx_init(&rx);
	assert_int_equal(FEED(&rx, "$g#68"), GDB_RX_BAD_CSUM);
	assert_int_equal(FEED(&rx, "$g#6z"), GDB_RX_BAD_CSUM);
	assert_int_equal(FEED(&rx, "+"), GDB_RX_ACK);
	assert_int_equal(FEED(&rx, "-"), GDB_RX_NACK);
	assert_int_equal(FEED(&rx, "\x03"), GDB_RX_INTERRUPT);
	/* Line noise between packets is dropped; a packet after it still parses. */
	assert_int_equal(FEED(&rx, "xyz\n$g#67"), GDB_RX_PACKET);
	/* A '$' inside a packet restarts it (the sender gave up on the first). */
	assert_int_equal(FEED(&rx, "$mabc$g#67"), GDB_RX_PACKET);
	assert_string_equal((char *)rx.buf, "g");
}

static void test_escape_and_rle(void **state)
{
	(void)state;
	struct gdb_rx rx;
	char pkt[64], framed[128];
	int n;

	gdb_rx_init(&rx);
	/* "X}\x03" is 'X' '#': escaped bytes count in the checksum as sent. */
	const char raw[] = "X}\x03}]}\x04}\x0a";
	unsigned sum = 0;
	for (size_t i = 0; i < sizeof(raw) - 1; i++)
		sum += (uint8_t)raw[i];
	n = snprintf(pkt, sizeof(pkt), "$%s#%02x", raw, sum & 0xff);
	assert_int_equal(feed(&rx, pkt, (size_t)n), GDB_RX_PACKET);
	assert_int_equal(rx.len, 5);
	assert_memory_equal(rx.buf, "X#}$*", 5);
	/* "0* " is '0' then 32 - 29 = 3 more. */
	assert_int_equal(FEED(&rx, "$0* #7a"), GDB_RX_PACKET);
	assert_string_equal((char *)rx.buf, "0000");
	/* A repeat with nothing before it is malformed, not a crash. */
	assert_int_equal(FEED(&rx, "$*%#4f"), GDB_RX_TOO_LONG);
	/* Framing escapes what must be; the receiver gets the same bytes back. */
	n = gdb_frame("a$b#c}d*e", 9, framed, sizeof(framed));
	assert_true(n > 0);
	assert_int_equal(feed(&rx, framed, (size_t)n), GDB_RX_PACKET);
	assert_int_equal(rx.len, 9);
	assert_memory_equal(rx.buf, "a$b#c}d*e", 9);
	assert_null(memchr(framed + 1, '$', (size_t)n - 1));
	assert_int_equal(gdb_frame("OK", 2, framed, 3), -1);
	n = gdb_frame("OK", 2, framed, sizeof(framed));
	framed[n] = 0;
	assert_string_equal(framed, "$OK#9a");
}

static void test_too_long(void **state)
{
	(void)state;
	struct gdb_rx rx;
	size_t big = 1u << 20;
	char *p = malloc(big + 8);

	assert_non_null(p);
	gdb_rx_init(&rx);
	p[0] = '$';
	memset(p + 1, 'a', big);
	memcpy(p + 1 + big, "#00", 3);
	assert_int_equal(feed(&rx, p, big + 4), GDB_RX_TOO_LONG);
	/* RLE cannot blow past the buffer either: 1000 * 97 repeats. */
	size_t o = 0;
	p[o++] = '$';
	for (int i = 0; i < 1000; i++) {
		p[o++] = 'a';
		p[o++] = '*';
		p[o++] = '~';
	}
	memcpy(p + o, "#00", 3);
	assert_int_equal(feed(&rx, p, o + 3), GDB_RX_TOO_LONG);
	assert_int_equal(FEED(&rx, "$g#67"), GDB_RX_PACKET);
	free(p);
}

static void test_hex(void **state)
{
	(void)state;
	uint8_t b[4];
	char out[9];
	uint64_t v;
	const char *end;

	gdb_hex_encode("\x01\xab\xff\x00", 4, out);
	assert_string_equal(out, "01abff00");
	assert_int_equal(gdb_hex_decode("01ABff00", b, 4), 0);
	assert_memory_equal(b, "\x01\xab\xff\x00", 4);
	assert_int_equal(gdb_hex_decode("0g", b, 1), -1);
	assert_int_equal(gdb_parse_hex("ffffffff80000000,8", &v, &end), 0);
	assert_true(v == 0xffffffff80000000ull);
	assert_string_equal(end, ",8");
	assert_int_equal(gdb_parse_hex("10000000000000000", &v, &end), -1);
	assert_int_equal(gdb_parse_hex(",8", &v, &end), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_packet),
		cmocka_unit_test(test_bad_checksum_and_acks),
		cmocka_unit_test(test_escape_and_rle),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
