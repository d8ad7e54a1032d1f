/*
 * A VNC client's bytes after the version string (security choice, VNC auth
 * response, ClientInit, then client messages) into libvncserver's parser
 * with Kestrel's screen setup and its QEMU extended key event extension
 * (ui/vnc_net.c), over a socketpair: what a hostile viewer controls.  Built
 * only with libvncserver.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/input.h"
#include "ui/vnc_int.h"

static struct input input;
static struct vnc vnc;

static void key(void *dev, unsigned qnum, bool down)
{
	if (qnum >= 0x100)
		__builtin_trap();	/* the extension must pass only 8-bit qnums */
}

static void abs_ev(void *dev, int x, int y, int dz, unsigned b)
{
	if (x < 0 || x > INPUT_ABS_MAX || y < 0 || y > INPUT_ABS_MAX)
		__builtin_trap();
}

static const struct input_handler_ops ops = { .key = key, .abs = abs_ev };

static void kbd(rfbBool down, rfbKeySym ks, rfbClientPtr cl)
{
	(void)down;
	(void)ks;
}

static void ptr(int mask, int x, int y, rfbClientPtr cl)
{
	input_pointer(&input, x, y, 64, 48, 0, (unsigned)mask & 7);
}

static void gone(rfbClientPtr cl)
{
	vnc_free_extensions(cl);
}

static enum rfbNewClientAction new_client(rfbClientPtr cl)
{
	cl->clientGoneHook = gone;
	return RFB_CLIENT_ACCEPT;
}

static rfbScreenInfoPtr screen(void)
{
	static rfbScreenInfoPtr s;
	static uint32_t fb[64 * 48];
	int argc = 0;

	if (s)
		return s;
	rfbLogEnable(0);
	input_init(&input);
	input_register(&input, "fuzz", INPUT_KEYBOARD | INPUT_MOUSE_ABS, &ops, NULL);
	vnc.input = &input;
	vnc_register_ext_key();
	s = rfbGetScreen(&argc, NULL, 64, 48, 8, 3, 4);
	vnc_pixel_format(s);
	s->frameBuffer = (char *)fb;
	s->screenData = &vnc;
	s->cursor = NULL;
	s->port = s->ipv6port = 0;
	s->autoPort = FALSE;
	s->httpPort = -1;
	s->kbdAddEvent = kbd;
	s->ptrAddEvent = ptr;
	s->newClientHook = new_client;
	rfbInitServer(s);
	for (int i = 0; i < 48; i++)
		fb[i * 64 + i] = 0xffffff;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rfbScreenInfoPtr s = screen();
	rfbClientPtr cl;
	char sink[65536];
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	/* The client's side, written up front: at most what the socket buffers. */
	if (write(sv[1], "RFB 003.008\n", 12) != 12 ||
	    (size && write(sv[1], data, size > 100000 ? 100000 : size) < 0)) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[1], SHUT_WR);
	rfbMaxClientWait = 100;
	cl = rfbNewClient(s, sv[0]);
	for (int i = 0; cl && i < 64 && s->clientHead; i++) {
		rfbProcessEvents(s, 0);
		while (recv(sv[1], sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
	}
	/* Whatever is left goes, as a disconnect would. */
	while (s->clientHead) {
		rfbClientPtr c = s->clientHead;
		rfbCloseClient(c);
		rfbClientConnectionGone(c);
	}
	close(sv[1]);
	return 0;
}
