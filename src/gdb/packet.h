/*
 * GDB remote serial protocol framing (gdb manual, "Overview" of Appendix E):
 * $payload#cs with a two-hex-digit modulo-256 checksum, '+'/'-' acks, '}'
 * escapes (byte ^ 0x20) and "*n" run-length encoding, and a bare 0x03 that
 * interrupts the target.  The receiver is a byte-at-a-time state machine so
 * a socket, a test buffer and the fuzzer feed it the same way.
 */
#ifndef KESTREL_GDB_PACKET_H
#define KESTREL_GDB_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest packet either side sends, as qSupported's PacketSize says (hex 0x1000). */
#define GDB_PACKET_MAX 4096

enum gdb_rx_event {
	GDB_RX_NONE,		/* more bytes needed */
	GDB_RX_PACKET,		/* a whole packet with a good checksum: payload in rx->buf */
	GDB_RX_BAD_CSUM,	/* a whole packet whose checksum did not match */
	GDB_RX_TOO_LONG,	/* a whole packet longer than GDB_PACKET_MAX decoded */
	GDB_RX_ACK,		/* '+' */
	GDB_RX_NACK,		/* '-': resend the last packet */
	GDB_RX_INTERRUPT,	/* 0x03 outside a packet */
};

struct gdb_rx {
	int state;
	uint8_t sum;		/* running checksum of the raw payload bytes */
	uint8_t cs;		/* checksum digits read so far */
	bool escape;		/* the last raw byte was '}' */
	bool rle;		/* the last raw byte was '*' */
	bool overflow;
	bool bad_hex;		/* a checksum digit was not hex */
	size_t len;
	uint8_t buf[GDB_PACKET_MAX + 1];	/* decoded payload, NUL-terminated */
};

void gdb_rx_init(struct gdb_rx *rx);
enum gdb_rx_event gdb_rx_feed(struct gdb_rx *rx, uint8_t byte);

/* Frames payload as $...#cs into out (escaping $ # } *); returns the length or -1 if cap is short. */
int gdb_frame(const void *payload, size_t len, char *out, size_t cap);

/* Hex text of len bytes; out needs 2 * len + 1. */
void gdb_hex_encode(const void *in, size_t len, char *out);
/* Decodes exactly 2 * len hex digits; -1 on a bad digit. */
int gdb_hex_decode(const char *in, void *out, size_t len);
/* Parses a hex number up to a non-hex character; *end is set past it; -1 if empty or overflowing. */
int gdb_parse_hex(const char *s, uint64_t *val, const char **end);

#endif
