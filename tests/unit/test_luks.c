/*
 * The LUKS library (src/block/crypto): nettle wired up as the standards say
 * (IEEE 1619 XTS-AES vector 1, RFC 6070 PBKDF2-HMAC-SHA1), the AF splitter's
 * round trip, and LUKS1 header checks on crafted headers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "block/crypto/luks.h"

static void hex(const char *s, uint8_t *out)
{
	for (size_t i = 0; s[2 * i]; i++) {
		unsigned v;
		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* IEEE 1619-2007 annex B, vector 1: zero keys, zero data unit, 32 zero bytes. */
static void test_xts_vector(void **state)
{
	uint8_t key[64] = { 0 }, buf[512] = { 0 }, want[32];
	struct luks_cipher c;
	char err[128];

	hex("917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e", want);
	assert_int_equal(luks_cipher_init(&c, LUKS_AES128, LUKS_MODE_XTS, LUKS_IV_PLAIN64,
					  LUKS_HASH_NONE, key, err, sizeof(err)), 0);
	/* Only the first 32 bytes of a 512-byte unit match a 32-byte unit: XTS is per block. */
	assert_int_equal(luks_cipher_crypt(&c, true, 0, 512, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, want, 32);
	assert_int_equal(luks_cipher_crypt(&c, false, 0, 512, buf, sizeof(buf)), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(luks_cipher_crypt(&c, true, 0, 512, buf, 100), -EINVAL);
	luks_cipher_free(&c);
}

/* RFC 6070: P="password", S="salt", c=2, dkLen=20. */
static void test_pbkdf2_vector(void **state)
{
	uint8_t out[20], want[20];

	hex("ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957", want);
	assert_int_equal(luks_pbkdf2(LUKS_SHA1, "password", 8, (const uint8_t *)"salt", 4, 2, out,
				     sizeof(out)), 0);
	assert_memory_equal(out, want, sizeof(want));
	assert_int_not_equal(luks_pbkdf2(LUKS_SHA1, "password", 8, (const uint8_t *)"salt", 4, 0,
					 out, sizeof(out)), 0);
}

static void test_af_round_trip(void **state)
{
	static uint8_t split[64 * LUKS_STRIPES];
	uint8_t key[64], back[64];

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	for (int h = LUKS_SHA1; h <= LUKS_SHA512; h++) {
		assert_int_equal(luks_af_split((enum luks_hash)h, key, 64, LUKS_STRIPES, split), 0);
		assert_int_equal(luks_af_merge((enum luks_hash)h, split, 64, LUKS_STRIPES, back), 0);
		assert_memory_equal(back, key, 64);
		split[1000] ^= 1;	/* one flipped bit anywhere loses the key */
		assert_int_equal(luks_af_merge((enum luks_hash)h, split, 64, LUKS_STRIPES, back), 0);
		assert_memory_not_equal(back, key, 64);
	}
}

/* A header as QEMU lays it out for aes-256-xts-plain64 sha256, serialised and parsed. */
static void make_header(uint8_t *buf)
{
	struct luks_header h = { .version = 1, .alg = LUKS_AES256, .mode = LUKS_MODE_XTS,
				 .ivgen = LUKS_IV_PLAIN64, .ivhash = LUKS_HASH_NONE,
				 .hash = LUKS_SHA256, .key_bytes = 64, .mk_iters = 1000,
				 .payload_offset = 4040 * 512 };

	strcpy(h.uuid, "00000000-1111-2222-3333-444444444444");
	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
		h.slots[i].active = i ? LUKS_SLOT_DISABLED : LUKS_SLOT_ACTIVE;
		h.slots[i].iters = i ? 0 : 1000;
		h.slots[i].stripes = LUKS_STRIPES;
		h.slots[i].key_offset = 8 + 504 * (uint32_t)i;
	}
	luks1_format(&h, buf);
}

static void expect_error(const uint8_t *buf, const char *msg)
{
	struct luks_header h;
	char err[256] = "";

	assert_int_equal(luks1_parse(buf, 1 << 30, &h, err, sizeof(err)), -1);
	assert_string_equal(err, msg);
}

static void test_header_checks(void **state)
{
	uint8_t buf[LUKS_HDR_SIZE], bad[LUKS_HDR_SIZE];
	struct luks_header h;
	char err[256];

	make_header(buf);
	assert_int_equal(luks1_parse(buf, 1 << 30, &h, err, sizeof(err)), 0);
	assert_int_equal(h.alg, LUKS_AES256);
	assert_int_equal(h.payload_offset, 4040 * 512);
	memcpy(bad, buf, sizeof(bad));
	bad[252] = 0xff;	/* slot 0 stripes */
	expect_error(bad, "Keyslot 0 is corrupted (stripes -16773216 != 4000)");
	memcpy(bad, buf, sizeof(bad));
	bad[208 + 48 + 43] = 8;	/* slot 1 key offset onto slot 0 */
	bad[208 + 48 + 42] = 0;
	expect_error(bad, "Keyslots 0 and 1 are overlapping in the header");
	memcpy(bad, buf, sizeof(bad));
	memset(bad + 40, 'x', 32);	/* cipher mode without its NUL */
	expect_error(bad, "LUKS header cipher mode is not NUL terminated");
	memcpy(bad, buf, sizeof(bad));
	bad[7] = 3;
	expect_error(bad, "LUKS version 3 is not supported");
	memcpy(bad, buf, sizeof(bad));
	bad[0] = 'l';
	expect_error(bad, "Volume is not in LUKS format");
	assert_int_equal(luks1_parse(buf, 4000 * 512, &h, err, sizeof(err)), -1);
	assert_string_equal(err, "LUKS payload offset 2068480 is past the end of the file "
			    "(2048000 bytes)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xts_vector),
		cmocka_unit_test(test_pbkdf2_vector),
		cmocka_unit_test(test_af_round_trip),
		cmocka_unit_test(test_header_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
