/* core/vmstate.c: save/load round trips and the refusals that name the section. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/vmstate.h"

struct uart {
	uint8_t regs[8];
	uint16_t divisor;
	uint32_t fifo_len;
	uint64_t ticks;
	bool irq;
	uint8_t fifo[16];
	uint32_t added_in_v2;
};

static int uart_post_load(void *obj, unsigned version, char *err, size_t errlen)
{
	struct uart *u = obj;

	(void)version;
	if (u->fifo_len > sizeof(u->fifo)) {
		snprintf(err, errlen, "fifo length %u is past its 16 bytes", u->fifo_len);
		return -1;
	}
	return 0;
}

static const struct vmstate_field uart_fields[] = {
	VMS_ARRAY(struct uart, regs, VMS_U8, 8),
	VMS_FIELD(struct uart, divisor, VMS_U16),
	VMS_FIELD(struct uart, fifo_len, VMS_U32),
	VMS_FIELD(struct uart, ticks, VMS_U64),
	VMS_FIELD(struct uart, irq, VMS_BOOL),
	VMS_ARRAY(struct uart, fifo, VMS_BYTES, 16),
	{ "added_in_v2", VMS_U32, offsetof(struct uart, added_in_v2), 1, 2 },
	VMS_END
};

static const struct vmstate_desc uart_v2 = {
	"serial", sizeof(struct uart), 2, 1, uart_fields, uart_post_load,
};
static const struct vmstate_desc uart_v1 = {	/* an older build: no added_in_v2 */
	"serial", sizeof(struct uart), 1, 1, uart_fields, uart_post_load,
};

/* Padding zeroed too, so whole structs compare. */
static struct uart sample(void)
{
	struct uart u;

	memset(&u, 0, sizeof(u));
	for (int i = 0; i < 8; i++)
		u.regs[i] = (uint8_t)(i + 1);
	u.divisor = 0x1234;
	u.fifo_len = 3;
	u.ticks = 0x0102030405060708ull;
	u.irq = true;
	memcpy(u.fifo, "hello", 5);
	u.added_in_v2 = 0xdeadbeef;
	return u;
}

/* Saves u with d (instance 0) into a memory stream. */
static struct vmstate_membuf save_one(const struct vmstate_desc *d, const struct uart *u)
{
	struct vmstate_membuf m = { 0 };
	struct vmstate_out out;

	assert_int_equal(vmstate_out_begin(&out, (struct vmstate_io){ vmstate_mem_write, &m }), 0);
	assert_int_equal(vmstate_save(&out, d, 0, u), 0);
	assert_int_equal(vmstate_out_end(&out), 0);
	vmstate_out_free(&out);
	return m;
}

/* Loads the first section of m into u with d: 0, or -1 with the error in err. */
static int load_one(struct vmstate_membuf *m, const struct vmstate_desc *d, struct uart *u,
		    char *err)
{
	struct vmstate_in in;
	int rc;

	m->pos = 0;
	rc = vmstate_in_begin(&in, (struct vmstate_io){ vmstate_mem_read, m });
	if (rc == 0)
		rc = vmstate_next_section(&in) == 1 ? 0 : -1;
	if (rc == 0)
		rc = vmstate_load(&in, d, u);
	if (rc == 0)
		rc = vmstate_next_section(&in) == 0 ? 0 : -1;
	strcpy(err, in.err);
	vmstate_in_free(&in);
	return rc;
}

static void test_round_trip(void **state)
{
	struct uart u = sample(), v;

	memset(&v, 0, sizeof(v));
	struct vmstate_membuf m = save_one(&uart_v2, &u);
	char err[400];

	(void)state;
	assert_int_equal(load_one(&m, &uart_v2, &v, err), 0);
	assert_memory_equal(&u, &v, sizeof(u));
	free(m.data);
}

static void test_versions(void **state)
{
	struct uart u = sample(), v;

	memset(&v, 0, sizeof(v));
	struct vmstate_membuf m = save_one(&uart_v1, &u);
	struct vmstate_desc needs_v2 = uart_v2;
	char err[400];

	(void)state;
	/* A v1 stream into v2: the v2-only field keeps what the device had. */
	v.added_in_v2 = 77;
	assert_int_equal(load_one(&m, &uart_v2, &v, err), 0);
	assert_int_equal(v.added_in_v2, 77);
	assert_int_equal(v.divisor, 0x1234);
	free(m.data);

	/* A v2 stream into a v1 build: refused, naming the section. */
	m = save_one(&uart_v2, &u);
	assert_int_equal(load_one(&m, &uart_v1, &v, err), -1);
	assert_string_equal(err, "migration stream: section 'serial' instance 0: "
			    "version 2 is newer than this Kestrel reads (1)");
	free(m.data);

	m = save_one(&uart_v1, &u);
	needs_v2.min_version = 2;
	assert_int_equal(load_one(&m, &needs_v2, &v, err), -1);
	assert_non_null(strstr(err, "version 1 is older than this Kestrel reads (2 or later)"));
	free(m.data);
}

static void test_damage_is_refused_and_leaves_the_device(void **state)
{
	struct uart u = sample(), v, before;

	memset(&v, 0, sizeof(v));
	struct vmstate_membuf m = save_one(&uart_v2, &u);
	char err[400];

	(void)state;
	before = v;
	m.data[40] ^= 0x10;	/* inside the payload */
	assert_int_equal(load_one(&m, &uart_v2, &v, err), -1);
	assert_non_null(strstr(err, "section 'serial' instance 0: checksum mismatch"));
	assert_memory_equal(&v, &before, sizeof(v));

	m.data[40] ^= 0x10;
	m.len -= 3;		/* truncated */
	assert_int_equal(load_one(&m, &uart_v2, &v, err), -1);
	assert_non_null(strstr(err, "truncated stream"));
	m.len += 3;

	m.data[0] = 'Q';	/* QEMU's magic is not ours */
	assert_int_equal(load_one(&m, &uart_v2, &v, err), -1);
	assert_string_equal(err, "migration stream: not a Kestrel migration stream (bad magic)");
	free(m.data);

	/* A value the device refuses (post_load): nothing is applied. */
	u.fifo_len = 1000;
	m = save_one(&uart_v2, &u);
	assert_int_equal(load_one(&m, &uart_v2, &v, err), -1);
	assert_non_null(strstr(err, "section 'serial' instance 0: fifo length 1000 is past"));
	assert_memory_equal(&v, &before, sizeof(v));
	free(m.data);
}

static const struct vmstate_field renamed_fields[] = {
	VMS_ARRAY(struct uart, regs, VMS_U8, 8),
	{ "dlab_divisor", VMS_U16, offsetof(struct uart, divisor), 1, 0 },
	VMS_END
};

static void test_field_mismatch_names_the_field(void **state)
{
	static const struct vmstate_field short_fields[] = {
		VMS_ARRAY(struct uart, regs, VMS_U8, 8),
		VMS_FIELD(struct uart, divisor, VMS_U16),
		VMS_END
	};
	struct vmstate_desc renamed = { "serial", sizeof(struct uart), 2, 1, renamed_fields, NULL };
	struct vmstate_desc shorter = { "serial", sizeof(struct uart), 2, 1, short_fields, NULL };
	struct uart u = sample(), v;

	memset(&v, 0, sizeof(v));
	struct vmstate_membuf m = save_one(&uart_v2, &u);
	char err[400];

	(void)state;
	assert_int_equal(load_one(&m, &renamed, &v, err), -1);
	assert_non_null(strstr(err, "field 'dlab_divisor' expected, the stream has 'divisor'"));
	assert_int_equal(load_one(&m, &shorter, &v, err), -1);
	assert_non_null(strstr(err, "bytes after the last field this Kestrel knows"));
	free(m.data);
}

static void test_fd_stream(void **state)
{
	struct uart u = sample(), v;

	memset(&v, 0, sizeof(v));
	struct vmstate_out out;
	struct vmstate_in in;
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(vmstate_out_begin(&out, (struct vmstate_io){ vmstate_fd_write, &fds[1] }), 0);
	assert_int_equal(vmstate_save(&out, &uart_v2, 3, &u), 0);
	assert_int_equal(vmstate_out_end(&out), 0);
	vmstate_out_free(&out);
	close(fds[1]);
	assert_int_equal(vmstate_in_begin(&in, (struct vmstate_io){ vmstate_fd_read, &fds[0] }), 0);
	assert_int_equal(vmstate_next_section(&in), 1);
	assert_string_equal(in.name, "serial");
	assert_int_equal(in.instance, 3);
	assert_int_equal(in.version, 2);
	assert_int_equal(vmstate_load(&in, &uart_v2, &v), 0);
	assert_memory_equal(&u, &v, sizeof(u));
	assert_int_equal(vmstate_next_section(&in), 0);
	vmstate_in_free(&in);
	close(fds[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_damage_is_refused_and_leaves_the_device),
		cmocka_unit_test(test_field_mismatch_names_the_field),
		cmocka_unit_test(test_fd_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
