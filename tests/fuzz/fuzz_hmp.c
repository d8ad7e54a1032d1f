/*
 * The human monitor on arbitrary terminal bytes: readline's editing keys and
 * escape sequences, then each completed line through hmp_run_line.
 * Checked: readline's line is NUL-terminated within its buffer, and HMP
 * output uses QEMU's "\r\n" line ends only.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/hmp.h"
#include "ui/readline.h"
#include "fuzz_control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void discard(void *opaque, const char *text, size_t len)
{
	/* Echo and redraw: read every byte so ASan sees an overrun. */
	volatile char sink = 0;

	for (size_t i = 0; i < len; i++)
		sink ^= text[i];
	(void)sink;
}

static void check_output(const char *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct fuzz_machine m;
	struct control ctl = fuzz_control(&m);
	struct readline rl;
	char line[READLINE_MAX + 16];

	readline_init(&rl, "(qemu) ", discard, NULL);
	readline_show_prompt(&rl);
	for (size_t i = 0; i < len; i++) {
		memset(line, 'x', sizeof(line));
		if (!readline_feed(&rl, data[i], line, READLINE_MAX))
			continue;
		if (!memchr(line, '\0', READLINE_MAX))
			abort();

		char *out = NULL;
		size_t out_len = 0;
		FILE *f = open_memstream(&out, &out_len);
		if (!f)
			break;
		hmp_run_line(&ctl, line, f);
		fclose(f);
		check_output(out, out_len);
		free(out);
		if (m.quit)
			break;
	}
	readline_free(&rl);
	return 0;
}
