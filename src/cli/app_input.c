/*
 * The VM's input routing (core/input.h), owned by the app so that it
 * outlives resets and the VNC server and the monitors reach the PS/2
 * devices of whichever VM runs; and the monitors' sendkey/send-key, which
 * press keys now and release them hold_ms later on the main loop's timer
 * (QEMU's qemu_input_event_send_key_delay).
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cli/app.h"
#include "util/log.h"

static void release_pending(struct app *app)
{
	struct app_keys *k = &app->keys;

	/* In reverse order, as QEMU releases them. */
	while (k->nr_held)
		input_key(&app->input, k->held[--k->nr_held], false);
}

static void on_key_timer(void *opaque, uint32_t events)
{
	struct app *app = opaque;
	uint64_t count;

	(void)events;
	if (read(app->keys.timer_fd, &count, sizeof(count)) == sizeof(count))
		release_pending(app);
}

static void send_keys(void *opaque, const unsigned *qnums, unsigned n, unsigned hold_ms)
{
	struct app *app = opaque;
	struct app_keys *k = &app->keys;
	struct itimerspec its = { .it_value = { .tv_sec = hold_ms / 1000,
						 .tv_nsec = (long)(hold_ms % 1000) * 1000000 } };

	/* A chord still held is released first, so the guest sees the keys in order. */
	release_pending(app);
	if (n > APP_KEYS_MAX)
		n = APP_KEYS_MAX;
	for (unsigned i = 0; i < n; i++)
		input_key(&app->input, qnums[i], true);
	memcpy(k->held, qnums, n * sizeof(*qnums));
	k->nr_held = n;
	if (!n)
		return;
	if (!hold_ms || k->timer_fd < 0 || timerfd_settime(k->timer_fd, 0, &its, NULL) < 0)
		release_pending(app);
}

int app_input_init(struct app *app)
{
	int err = input_init(&app->input);

	app->keys.timer_fd = -1;
	if (err) {
		log_error("cannot set up input routing: %s", strerror(-err));
		return -1;
	}
	app->input_ready = true;
	app->backends.input = &app->input;
	app->control.input = &app->input;
	app->control.send_keys = send_keys;
	return 0;
}

/* Once the main loop exists: without the timer, keys are released at once. */
int app_input_start(struct app *app)
{
	app->keys.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (app->keys.timer_fd < 0 ||
	    loop_add(app->loop, app->keys.timer_fd, EPOLLIN, on_key_timer, app) < 0) {
		log_error("cannot set up the key release timer: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void app_input_close(struct app *app)
{
	if (app->keys.timer_fd >= 0)
		close(app->keys.timer_fd);
	app->keys.timer_fd = -1;
	if (app->input_ready)
		input_destroy(&app->input);
	app->input_ready = false;
}
