/*
 * Character device back ends (QEMU's -serial/-chardev targets): where a serial
 * port's bytes go and come from.  A back end knows nothing of the device using it.
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
	CHARDEV_UNIX,	/* unix:PATH,server,nowait */
};

struct chardev_spec {
	enum chardev_kind kind;
	bool mux;		/* "mon:" prefix or -nographic: Ctrl-a escapes */
	bool server;
	bool wait;
	char path[108];		/* sun_path's size bounds every path we accept */
};

/* Parses QEMU's -serial syntax.  Returns false and fills err on bad input. */
bool chardev_spec_parse(const char *text, struct chardev_spec *spec, char *err, size_t errlen);

typedef void (*chardev_input_fn)(void *opaque, const uint8_t *buf, size_t len);

struct chardev {
	struct chardev_spec spec;
	pthread_mutex_t lock;	/* vCPU threads write, the main loop accepts clients */
	int in_fd;		/* -1 when the back end has no input (yet) */
	int out_fd;		/* -1 when output is dropped */
	int listen_fd;
	int hold_fd;		/* a pty's slave, kept open so the master never hangs up */
	struct loop *loop;
	chardev_input_fn input;
	void *opaque;
};

/* Opens the back end; logs a message naming the problem and returns -1 on failure. */
int chardev_open(struct chardev *cd, const struct chardev_spec *spec);

/* Starts delivering input through fn on loop (the main thread's). */
int chardev_attach(struct chardev *cd, struct loop *loop, chardev_input_fn fn, void *opaque);

/* Thread-safe; drops bytes when nobody is connected, never blocks on a missing reader. */
void chardev_write(struct chardev *cd, const uint8_t *buf, size_t len);

void chardev_close(struct chardev *cd);

#endif
