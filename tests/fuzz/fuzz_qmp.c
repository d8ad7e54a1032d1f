/*
 * QMP sessions on arbitrary client bytes (a socket anyone with access to the
 * path can write).  The input is split into chunks at 0x00 0x00 pairs, so a
 * message may arrive in pieces, as it does over a socket.
 *
 * Checked on everything the session writes: each write is one message
 * ending in CRLF, printable ASCII only (QEMU's quoted_str escapes the rest),
 * and valid JSON that is an object.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ui/qmp.h"
#include "fuzz_control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void check_write(void *opaque, const char *data, size_t len)
{
	struct json_object *o;
	char *text;

	if (len < 3 || data[len - 2] != '\r' || data[len - 1] != '\n')
		abort();
	for (size_t i = 0; i < len - 2; i++)
		if ((unsigned char)data[i] < 0x20 || (unsigned char)data[i] > 0x7e)
			abort();
	text = strndup(data, len - 2);
	if (!text)
		return;
	o = json_tokener_parse(text);
	if (!o || !json_object_is_type(o, json_type_object))
		abort();
	json_object_put(o);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct fuzz_machine m;
	struct control ctl = fuzz_control(&m);
	struct qmp_session *s = qmp_session_new(&ctl, check_write, NULL);
	size_t start = 0;

	if (!s)
		return 0;
	for (size_t i = 0; i + 1 < len; i++) {
		if (data[i] == 0 && data[i + 1] == 0) {
			qmp_session_input(s, data + start, i - start);
			start = i + 2;
			i++;
		}
	}
	if (start < len)
		qmp_session_input(s, data + start, len - start);
	qmp_session_event(s, "STOP", NULL);
	qmp_session_free(s);
	return 0;
}
