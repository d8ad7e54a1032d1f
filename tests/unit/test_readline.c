/* ui/readline.c: the human monitor's line editing and history. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ui/readline.h"

struct screen {
	char text[8192];
	size_t len;
};

static void screen_write(void *opaque, const char *text, size_t len)
{
	struct screen *s = opaque;

	if (s->len + len < sizeof(s->text)) {
		memcpy(s->text + s->len, text, len);
		s->len += len;
		s->text[s->len] = '\0';
	}
}

/* Types keys; returns true with the line when one was completed. */
static bool type(struct readline *rl, const char *keys, char *line, size_t size)
{
	bool done = false;

	for (const char *k = keys; *k; k++)
		done |= readline_feed(rl, (uint8_t)*k, line, size);
	return done;
}

static void test_typing_and_enter(void **state)
{
	struct screen s = { 0 };
	struct readline rl;
	char line[64];

	readline_init(&rl, "(qemu) ", screen_write, &s);
	assert_false(type(&rl, "info status", line, sizeof(line)));
	assert_string_equal(s.text, "info status");	/* echoed as typed */
	assert_true(type(&rl, "\r", line, sizeof(line)));
	assert_string_equal(line, "info status");
	assert_int_equal(rl.len, 0);
	readline_free(&rl);
}

static void test_editing_keys(void **state)
{
	struct screen s = { 0 };
	struct readline rl;
	char line[64];

	readline_init(&rl, "> ", screen_write, &s);
	/* Backspace (DEL and ^H), cursor left, insert in the middle. */
	assert_true(type(&rl, "stpo\x7f\x08op\x1b[D\x1b[Dx\r", line, sizeof(line)));
	assert_string_equal(line, "stxop");
	/* Home, ^D deletes under the cursor, End appends. */
	assert_true(type(&rl, "abc\x1b[H\x04\x1b[F!\r", line, sizeof(line)));
	assert_string_equal(line, "bc!");
	/* ^A/^E, ^K kills to the end, ^U kills to the start, ^W a word. */
	assert_true(type(&rl, "one two\x01\x06\x0b\r", line, sizeof(line)));
	assert_string_equal(line, "o");
	assert_true(type(&rl, "one two three\x17\x17\r", line, sizeof(line)));
	assert_string_equal(line, "one ");
	assert_true(type(&rl, "junk\x15ok\r", line, sizeof(line)));
	assert_string_equal(line, "ok");
	/* Delete key (ESC [ 3 ~) and Home as ESC [ 1 ~. */
	assert_true(type(&rl, "xab\x1b[1~\x1b[3~\r", line, sizeof(line)));
	assert_string_equal(line, "ab");
	readline_free(&rl);
}

static void test_history(void **state)
{
	struct screen s = { 0 };
	struct readline rl;
	char line[64];

	readline_init(&rl, "> ", screen_write, &s);
	type(&rl, "first\r", line, sizeof(line));
	type(&rl, "second\r", line, sizeof(line));
	type(&rl, "second\r", line, sizeof(line));	/* duplicates are not stored twice */
	assert_int_equal(rl.nr_history, 2);
	assert_true(type(&rl, "\x1b[A\x1b[A\r", line, sizeof(line)));
	assert_string_equal(line, "first");
	/* The recalled line went into the history again: first, second, first. */
	assert_true(type(&rl, "\x10\x10\x10\x0e\r", line, sizeof(line)));	/* ^P ^P ^P ^N */
	assert_string_equal(line, "second");
	/* Down past the newest gives an empty line again. */
	assert_true(type(&rl, "\x1b[A\x1b[B\r", line, sizeof(line)));
	assert_string_equal(line, "");
	readline_free(&rl);
}

static void test_history_is_bounded(void **state)
{
	struct screen s = { 0 };
	struct readline rl;
	char line[64], cmd[16];

	readline_init(&rl, "> ", screen_write, &s);
	for (int i = 0; i < READLINE_HISTORY + 10; i++) {
		snprintf(cmd, sizeof(cmd), "c%d\r", i);
		type(&rl, cmd, line, sizeof(line));
	}
	assert_int_equal(rl.nr_history, READLINE_HISTORY);
	assert_string_equal(rl.history[0], "c10");
	readline_free(&rl);
}

static void test_overlong_line_is_truncated_safely(void **state)
{
	struct screen s = { 0 };
	struct readline rl;
	char line[READLINE_MAX];

	readline_init(&rl, "> ", screen_write, &s);
	for (int i = 0; i < READLINE_MAX * 2; i++)
		readline_feed(&rl, 'a', line, sizeof(line));
	assert_true(readline_feed(&rl, '\r', line, sizeof(line)));
	assert_int_equal(strlen(line), READLINE_MAX - 1);
	readline_free(&rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_typing_and_enter),
		cmocka_unit_test(test_editing_keys),
		cmocka_unit_test(test_history),
		cmocka_unit_test(test_history_is_bounded),
		cmocka_unit_test(test_overlong_line_is_truncated_safely),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
