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
	bool server;
	bool wait;
	bool tcp;		/* CHARDEV_SOCKET: TCP rather than a unix socket */
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
	struct chardev_frontend fe;
	bool connected;		/* a peer is there (always, but for sockets) */
};

/* Opens the back end; logs a message naming the problem and returns -1 on failure. */
int chardev_open(struct chardev *cd, const char *label, const struct chardev_spec *spec);

/* Starts delivering input and connection events to fe on loop (the main thread's). */
int chardev_attach(struct chardev *cd, struct loop *loop, const struct chardev_frontend *fe);

/* Thread-safe; drops bytes when nobody is connected, never blocks on a missing reader. */
void chardev_write(struct chardev *cd, const uint8_t *buf, size_t len);
void chardev_write_str(struct chardev *cd, const char *text);

void chardev_close(struct chardev *cd);

#endif
