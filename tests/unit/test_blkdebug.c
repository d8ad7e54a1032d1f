/*
 * blkdebug's rule engine (src/block/blkdebug_rules.c) against QEMU 7.2's
 * semantics: the config parser's messages, state matching, the active list
 * an event builds, sector/iotype matching, once=on deleting its rule.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "block/blkdebug.h"

static struct blkdebug *parse(const char *text, char *err, size_t errlen)
{
	struct blkdebug *s = blkdebug_new();

	assert_non_null(s);
	if (blkdebug_parse_config(s, text, strlen(text), err, errlen) < 0) {
		blkdebug_free(s);
		return NULL;
	}
	return s;
}

static void expect_error(const char *text, const char *msg)
{
	char err[256] = "";

	assert_null(parse(text, err, sizeof(err)));
	assert_string_equal(err, msg);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_error("[inject-error]\nfoo = \"1\"\n", "Invalid parameter 'foo'");
	expect_error("event = \"read_aio\"\n", "no group defined");
	expect_error("[bogus]\n", "There is no option group 'bogus'");
	expect_error("[inject-error]\n", "Missing event name for rule");
	expect_error("[inject-error]\nevent = \"l2-load\"\n", "invalid parameter value: l2-load");
	/* An unquoted value is no value at all (QEMU's sscanf falls back to ""). */
	expect_error("[inject-error]\nevent = read_aio\n", "invalid parameter value: ");
	expect_error("[inject-error]\nevent=\"read_aio\"\n", "Invalid parameter 'event=\"read_aio\"'");
	expect_error("[inject-error]\nevent = \"read_aio\"\nerrno = \"1k\"\n",
		     "Parameter 'errno' expects a number");
	expect_error("[inject-error]\nevent = \"read_aio\"\nonce = \"maybe\"\n",
		     "Parameter 'once' expects 'on' or 'off'");
	expect_error("[inject-error]\nevent = \"read_aio\"\niotype = \"trim\"\n",
		     "invalid parameter value: trim");
	expect_error("[set-state]\nevent = \"read_aio\"\nerrno = \"5\"\n", "Invalid parameter 'errno'");
	expect_error("[inject-error]\n   \n", "parse error");
	expect_error("[inject-error]\nevent = \"read_aio\"\nerrno = \"5000\"\n",
		     "Parameter 'errno' expects an errno value from 0 to 4095");
}

static void test_comments_ids_and_numbers(void **state)
{
	char err[256];
	struct blkdebug *s = parse("# a comment\n\n[inject-error \"r1\"]\n  event = \"read_aio\"\n"
				   "  errno = \"0x1c\"\n", err, sizeof(err));

	(void)state;
	assert_non_null(s);
	assert_int_equal(blkdebug_check(s, 0, 512, BLKDBG_IO_READ), 0);	/* not active yet */
	blkdebug_event(s, BLKDBG_READ_AIO);
	assert_int_equal(blkdebug_check(s, 0, 512, BLKDBG_IO_READ), -ENOSPC);
	/* Without once=on the rule stays active for every later request. */
	assert_int_equal(blkdebug_check(s, 4096, 512, BLKDBG_IO_WRITE), -ENOSPC);
	assert_int_equal(blkdebug_check(s, 0, 0, BLKDBG_IO_FLUSH), -ENOSPC);
	/* block-status is not among the default iotypes. */
	assert_int_equal(blkdebug_check(s, 0, 512, BLKDBG_IO_BLOCK_STATUS), 0);
	blkdebug_free(s);
}

static void test_once_lets_retry_pass(void **state)
{
	char err[256];
	struct blkdebug *s = parse("[inject-error]\nevent = \"read_aio\"\nonce = \"on\"\n",
				   err, sizeof(err));

	(void)state;
	assert_non_null(s);
	blkdebug_event(s, BLKDBG_READ_AIO);
	assert_int_equal(blkdebug_check(s, 0, 512, BLKDBG_IO_READ), -EIO);
	assert_int_equal(blkdebug_check(s, 0, 512, BLKDBG_IO_READ), 0);
	/* The rule is gone, not just inactive: the same event does not bring it back. */
	blkdebug_event(s, BLKDBG_READ_AIO);
	assert_int_equal(blkdebug_check(s, 0, 512, BLKDBG_IO_READ), 0);
	blkdebug_free(s);
}

static void test_sector_and_iotype(void **state)
{
	char err[256];
	struct blkdebug *s = parse("[inject-error]\nevent = \"write_aio\"\nsector = \"8\"\n"
				   "iotype = \"write\"\nerrno = \"28\"\n", err, sizeof(err));

	(void)state;
	assert_non_null(s);
	blkdebug_event(s, BLKDBG_WRITE_AIO);
	assert_int_equal(blkdebug_check(s, 0, 4096, BLKDBG_IO_WRITE), 0);	/* ends at sector 8 */
	assert_int_equal(blkdebug_check(s, 4096, 512, BLKDBG_IO_READ), 0);	/* iotype */
	assert_int_equal(blkdebug_check(s, 4096, 512, BLKDBG_IO_WRITE), -ENOSPC);
	assert_int_equal(blkdebug_check(s, 3584, 1024, BLKDBG_IO_WRITE), -ENOSPC);
	assert_int_equal(blkdebug_check(s, 0, 0, BLKDBG_IO_FLUSH), 0);
	blkdebug_free(s);
}

/* set-state moves the state after the event; rules for another state stay quiet. */
static void test_states(void **state)
{
	char err[256];
	struct blkdebug *s = parse("[set-state]\nevent = \"l2_load\"\nstate = \"1\"\nnew_state = \"2\"\n"
				   "[inject-error]\nevent = \"l2_load\"\nstate = \"2\"\nerrno = \"7\"\n",
				   err, sizeof(err));

	(void)state;
	assert_non_null(s);
	assert_int_equal(blkdebug_state(s), 1);
	blkdebug_event(s, BLKDBG_L2_LOAD);	/* state 1: the inject rule (state 2) waits */
	assert_int_equal(blkdebug_state(s), 2);
	assert_int_equal(blkdebug_check(s, 0, 512, BLKDBG_IO_READ), 0);
	blkdebug_event(s, BLKDBG_L2_LOAD);
	assert_int_equal(blkdebug_check(s, 0, 512, BLKDBG_IO_READ), -E2BIG);
	blkdebug_free(s);
}

/* The first rule in the file wins when several are active; an event without matches keeps them. */
static void test_active_order(void **state)
{
	char err[256];
	struct blkdebug *s = parse("[inject-error]\nevent = \"read_aio\"\nerrno = \"5\"\nsector = \"0\"\n"
				   "[inject-error]\nevent = \"read_aio\"\nerrno = \"28\"\n"
				   "[inject-error]\nevent = \"flush_to_disk\"\nerrno = \"1\"\nstate = \"9\"\n",
				   err, sizeof(err));

	(void)state;
	assert_non_null(s);
	blkdebug_event(s, BLKDBG_READ_AIO);
	assert_int_equal(blkdebug_check(s, 0, 512, BLKDBG_IO_READ), -EIO);
	assert_int_equal(blkdebug_check(s, 512, 512, BLKDBG_IO_READ), -ENOSPC);
	blkdebug_event(s, BLKDBG_FLUSH_TO_DISK);	/* its rule is for state 9: nothing changes */
	assert_int_equal(blkdebug_check(s, 0, 512, BLKDBG_IO_READ), -EIO);
	blkdebug_free(s);
}

static void test_inline_rule(void **state)
{
	const char *keys[] = { "event", "errno", "once" }, *vals[] = { "none", "13", "on" };
	struct blkdebug *s = blkdebug_new();
	char err[256];

	(void)state;
	assert_int_equal(blkdebug_add_rule(s, "inject-error", keys, vals, 3, err, sizeof(err)), 0);
	assert_int_equal(blkdebug_add_rule(s, "suspend", keys, vals, 1, err, sizeof(err)), -1);
	assert_string_equal(err, "There is no option group 'suspend'");
	blkdebug_event(s, BLKDBG_NONE);
	assert_int_equal(blkdebug_check(s, 0, 1, BLKDBG_IO_READ), -EACCES);
	assert_int_equal(blkdebug_check(s, 0, 1, BLKDBG_IO_READ), 0);
	assert_int_equal(blkdebug_event_by_name("cluster_alloc"), BLKDBG_CLUSTER_ALLOC);
	assert_int_equal(blkdebug_event_by_name("l2_alloc.write"), -1);
	blkdebug_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_comments_ids_and_numbers),
		cmocka_unit_test(test_once_lets_retry_pass),
		cmocka_unit_test(test_sector_and_iotype),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_active_order),
		cmocka_unit_test(test_inline_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
