#include "chardev/mux.h"

const char mux_help_text[] =
	"\r\n"
	"C-a h    print this help\r\n"
	"C-a x    exit emulator\r\n"
	"C-a s    save disk data back to file (if -snapshot)\r\n"
	"C-a b    send break (magic sysrq)\r\n"
	"C-a c    switch between console and monitor\r\n"
	"C-a C-a  sends C-a\r\n";

enum mux_action mux_input(struct mux *mux, uint8_t byte, uint8_t *out)
{
	if (!mux->escaped) {
		if (byte == MUX_ESCAPE) {
			mux->escaped = true;
			return MUX_SWALLOW;
		}
		*out = byte;
		return MUX_PASS;
	}
	mux->escaped = false;
	switch (byte) {
	case MUX_ESCAPE:
		*out = byte;
		return MUX_PASS;
	case 'h':
	case '?':
		return MUX_HELP;
	case 'x':
		return MUX_QUIT;
	case 'c':
		return MUX_MONITOR;
	case 'b':
		return MUX_BREAK;
	case 's':
		return MUX_FLUSH;
	default:
		/* QEMU drops an unknown escape and the key after it. */
		return MUX_SWALLOW;
	}
}
