/*
 * Character device back ends (QEMU's -chardev/-serial/-monitor targets): where
 * a frontend's (serial port, monitor) bytes go and come from.  A back end knows
 * nothing of the frontend using it.
 */
#ifndef KESTREL_UI_CHARDEV_H
#define KESTREL_UI_CHARDEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

enum chardev_kind {
	CHARDEV_NONE,	/* no device at all ("-serial none") */
	CHARDEV_NULL,	/* output dropped, no input */
	CHARDEV_STDIO,
	CHARDEV_FILE,
	CHARDEV_PTY,
	CHARDEV_SOCKET,	/* unix:PATH or tcp:HOST:PORT, client or server */
};

#define CHARDEV_PATH_MAX 108	/* sun_path's size bounds every path we accept */
#define CHARDEV_ID_MAX 32

struct chardev_spec {
	enum chardev_kind kind;
	bool mux;		/* "mon:" prefix, mux=on or -nographic: Ctrl-a escapes */
	/*
	 * stdio: the terminal's Ctrl-C stays a SIGINT to us (QEMU's signal=, on
	 * for "stdio" and -chardev stdio, off for "mon:stdio" and -nographic,
	 * whose Ctrl-C belongs to the guest).
	 */
	bool signal;
	bool server;
	bool wait;
	bool tcp;		/* CHARDEV_SOCKET: TCP rather than a unix socket */
	/*
	 * CHARDEV_SOCKET fd=N: a socket the caller opened and passed (libvirt's
	 * monitor: already bound and listening with server=on); -1 for none.
	 */
	int fd;
	char path[CHARDEV_PATH_MAX];	/* file or unix socket */
	char host[64];		/* TCP: defaults to 127.0.0.1, never all interfaces */
	uint16_t port;
};

/* Parses the legacy -serial/-monitor syntax ("stdio", "unix:/p,server,nowait", ...). */
bool chardev_spec_parse(const char *text, struct chardev_spec *spec, char *err, size_t errlen);

/* Parses "-chardev BACKEND,id=ID,..." into spec and id (room for CHARDEV_ID_MAX). */
bool chardev_option_parse(const char *text, struct chardev_spec *spec, char *id, char *err,
			  size_t errlen);

/* QEMU's description of a back end for "info chardev" ("unix:/p,server=on", "stdio"). */
void chardev_spec_describe(const struct chardev_spec *spec, char *buf, size_t len);

/*
 * Output to a peer that reads slowly or not at all (sockets, ptys) waits in a
 * per-device queue and goes out as the peer takes it, so no writer (a vCPU,
 * the main loop answering a monitor) ever blocks on it.  Past CHARDEV_OUT_HIGH
 * queued bytes the device stops reading its peer's input (no more commands,
 * so no more answers) until the queue is empty; a queue would pass
 * CHARDEV_OUT_MAX only by output the peer did not ask for (events, guest
 * output), and then a socket client is dropped, as the main loop writes, or
 * the bytes are, as another thread does.
 */
#define CHARDEV_OUT_HIGH (64u << 10)
#define CHARDEV_OUT_MAX (1u << 20)
#define CHARDEV_IN_BUF 4096	/* input read but not yet handed on (one read) */
#define CHARDEV_IN_PIECE 256	/* handed on a line, or this much, at a time */
#define CHARDEV_MAX_FDS 16	/* fds one read of a unix socket takes (SCM_RIGHTS) */

/* What the frontend (serial port, monitor) hears from its back end; main thread only. */
struct chardev_frontend {
	void (*input)(void *opaque, const uint8_t *buf, size_t len);
	void (*opened)(void *opaque);	/* a peer is there: stdio at start, a socket client */
	void (*closed)(void *opaque);	/* the socket client went away */
	void *opaque;
};

struct chardev {
	struct chardev_spec spec;
	char label[CHARDEV_ID_MAX];
	char description[160];	/* "info chardev" filename: "unix:/p,server=on", "pty:/dev/pts/3" */
	pthread_mutex_t lock;	/* vCPU threads write, the main loop accepts clients */
	int in_fd;		/* -1 when the back end has no input (yet) */
	int out_fd;		/* -1 when output is dropped */
	int listen_fd;
	int hold_fd;		/* a pty's slave, kept open so the master never hangs up */
	struct loop *loop;
	pthread_t loop_thread;	/* the thread that runs loop */
	struct chardev_frontend fe;
	bool connected;		/* a peer is there (always, but for sockets) */

	/* Output queue (sockets, ptys), under lock: bytes [outq_head, +outq_len). */
	uint8_t *outq;
	size_t outq_head, outq_len, outq_cap;
	uint64_t out_dropped;	/* bytes lost past CHARDEV_OUT_MAX */
	bool throttled;		/* input paused until the queue is empty */
	bool overflow;		/* a socket client passed CHARDEV_OUT_MAX: drop it */
	uint32_t armed;		/* the epoll events asked for on in_fd */
	/* Input read but not handed on while throttled; main thread only. */
	uint8_t inq[CHARDEV_IN_BUF];
	size_t inq_head, inq_len;
	/* fds the peer passed with its last read (SCM_RIGHTS); main thread only. */
	int msgfds[CHARDEV_MAX_FDS];
	unsigned nr_msgfds;
};

/* Opens the back end; logs a message naming the problem and returns -1 on failure. */
int chardev_open(struct chardev *cd, const char *label, const struct chardev_spec *spec);

/* Starts delivering input and connection events to fe on loop (the main thread's). */
int chardev_attach(struct chardev *cd, struct loop *loop, const struct chardev_frontend *fe);

/*
 * Thread-safe; drops bytes when nobody is connected.  Never blocks on a
 * socket or pty peer (see CHARDEV_OUT_HIGH); stdio and files are written
 * through, as a terminal or disk takes them.
 */
void chardev_write(struct chardev *cd, const uint8_t *buf, size_t len);
void chardev_write_str(struct chardev *cd, const char *text);

/* Bytes waiting in the output queue (tests, "info chardev"-style diagnostics). */
size_t chardev_queued(struct chardev *cd);

/*
 * Takes the first fd the socket peer passed with the bytes last read (QEMU's
 * qemu_chr_fe_get_msgfd): the caller owns it; the others are closed.  -1: none.
 */
int chardev_take_msgfd(struct chardev *cd);

void chardev_close(struct chardev *cd);

#endif
