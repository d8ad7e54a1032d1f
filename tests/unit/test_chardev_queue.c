/*
 * chardev/chardev.c's output queue (issue #16): a peer that never reads must not
 * block any writer, the memory it costs is bounded, its input is throttled
 * while its output waits, and input flows again once it reads.  Real unix
 * sockets and a real pty, the chardev's own event loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "chardev/chardev.h"
#include "util/loop.h"

#define REPLY (40u << 10)	/* what one "command" answers: an HMP xp /4096g */

struct fe_state {
	struct chardev *cd;
	unsigned inputs, opens, closes;
	size_t reply;		/* bytes to answer each input piece with */
};

static char dir[64];
static char path[96];

static void fe_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct fe_state *f = opaque;
	static uint8_t answer[REPLY];

	f->inputs++;
	if (f->reply) {
		memset(answer, 'a' + (int)(f->inputs % 26), sizeof(answer));
		chardev_write(f->cd, answer, f->reply);
	}
}

static void fe_opened(void *opaque)
{
	((struct fe_state *)opaque)->opens++;
}

static void fe_closed(void *opaque)
{
	((struct fe_state *)opaque)->closes++;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/kestrel-cdq-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/s", dir);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	rmdir(dir);
	return 0;
}

/* A unix socket server chardev on loop, a connected client, and the accept run. */
static int serve(struct chardev *cd, struct loop *loop, struct fe_state *f)
{
	struct chardev_spec spec;
	struct chardev_frontend fe = { fe_input, fe_opened, fe_closed, f };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char text[128], err[128];
	int client;

	snprintf(text, sizeof(text), "unix:%s,server,nowait", path);
	assert_true(chardev_spec_parse(text, &spec, err, sizeof(err)));
	assert_int_equal(chardev_open(cd, "mon0", &spec), 0);
	f->cd = cd;
	assert_int_equal(chardev_attach(cd, loop, &fe), 0);
	client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(client >= 0);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(connect(client, (struct sockaddr *)&sa, sizeof(sa)), 0);
	while (!f->opens)
		assert_true(loop_run_once(loop, 1000) > 0);
	return client;
}

/* Keeps the kernel's share small, so the queue is what holds the backlog. */
static void small_socket_buffers(struct chardev *cd, int client)
{
	int small = 4096;

	assert_int_equal(setsockopt(cd->out_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	assert_int_equal(setsockopt(client, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
}

/* The main loop writing to a client that never reads: never blocks, bounded, then drops it. */
static void test_never_reading_client_is_dropped_not_waited_for(void **state)
{
	struct loop *loop = loop_create();
	struct chardev cd;
	struct fe_state f = { 0 };
	static uint8_t chunk[4096];
	size_t max_queued = 0;
	double t0;
	int client;

	assert_non_null(loop);
	client = serve(&cd, loop, &f);
	small_socket_buffers(&cd, client);
	t0 = now();
	for (unsigned i = 0; i < 2048 && !f.closes; i++) {	/* up to 8 MiB */
		chardev_write(&cd, chunk, sizeof(chunk));
		if (chardev_queued(&cd) > max_queued)
			max_queued = chardev_queued(&cd);
	}
	/* The old chardev_write waited up to a second per call for the reader. */
	assert_true(now() - t0 < 0.5);
	assert_true(max_queued <= CHARDEV_OUT_MAX);
	assert_true(max_queued > CHARDEV_OUT_MAX - sizeof(chunk));
	assert_int_equal(f.closes, 1);		/* dropped, not waited for */
	assert_int_equal(chardev_queued(&cd), 0);	/* and its memory given back */
	assert_false(cd.connected);
	chardev_write(&cd, chunk, sizeof(chunk));	/* nobody there: dropped at once */
	assert_int_equal(chardev_queued(&cd), 0);
	close(client);
	chardev_close(&cd);
	loop_destroy(loop);
}

/*
 * A client that sends ten commands in one write and does not read: it is
 * answered until its backlog passes CHARDEV_OUT_HIGH, then its input waits;
 * once it reads, every answer arrives whole and in order.
 */
static void test_input_throttled_until_output_drains(void **state)
{
	static const char cmds[] = "c0\nc1\rc2\nc3\rc4\nc5\rc6\nc7\rc8\nc9\r";
	struct loop *loop = loop_create();
	struct chardev cd;
	struct fe_state f = { .reply = REPLY };
	static uint8_t got[10 * REPLY];
	size_t have = 0, max_queued = 0;
	int client;

	assert_non_null(loop);
	client = serve(&cd, loop, &f);
	small_socket_buffers(&cd, client);
	assert_int_equal(write(client, cmds, sizeof(cmds) - 1), (ssize_t)sizeof(cmds) - 1);
	for (int i = 0; i < 20; i++)
		loop_run_once(loop, 10);
	/* Two answers fill past the high mark (the kernel takes a few KiB of them). */
	assert_int_equal(f.inputs, 2);
	assert_true(cd.throttled);
	assert_true(chardev_queued(&cd) > CHARDEV_OUT_HIGH);
	assert_true(chardev_queued(&cd) <= CHARDEV_OUT_HIGH + REPLY);
	assert_int_equal(f.closes, 0);

	/* Now the client reads: everything arrives, and the rest of its commands run. */
	for (int spins = 0; have < sizeof(got) && spins < 100000; spins++) {
		ssize_t n = recv(client, got + have, sizeof(got) - have, MSG_DONTWAIT);
		if (n > 0)
			have += (size_t)n;
		else
			assert_true(n < 0 && errno == EAGAIN);
		loop_run_once(loop, 0);
		if (chardev_queued(&cd) > max_queued)
			max_queued = chardev_queued(&cd);
	}
	assert_int_equal(have, sizeof(got));
	assert_int_equal(f.inputs, 10);
	assert_true(max_queued <= CHARDEV_OUT_HIGH + REPLY);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(got[i * REPLY], 'a' + (int)((i + 1) % 26));
	assert_false(cd.throttled);
	assert_int_equal(f.closes, 0);
	close(client);
	chardev_close(&cd);
	loop_destroy(loop);
}

struct writer {
	struct chardev *cd;
	double seconds;
};

static void *vcpu_writer(void *arg)
{
	struct writer *w = arg;
	uint8_t byte = 'x';
	double t0 = now();

	/* A UART's transmit: one byte per call, 4 MiB of them. */
	for (unsigned i = 0; i < (4u << 20); i++)
		chardev_write(w->cd, &byte, 1);
	w->seconds = now() - t0;
	return NULL;
}

/*
 * Another thread (a vCPU printing to a socket serial port nobody reads):
 * it never blocks, the queue stays bounded, bytes past the bound are lost
 * but the client is not (only the loop thread drops clients).
 */
static void test_vcpu_thread_never_blocks(void **state)
{
	struct loop *loop = loop_create();
	struct chardev cd;
	struct fe_state f = { 0 };
	struct writer w = { &cd, 0 };
	pthread_t t;
	int client;

	assert_non_null(loop);
	client = serve(&cd, loop, &f);
	small_socket_buffers(&cd, client);
	assert_int_equal(pthread_create(&t, NULL, vcpu_writer, &w), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(w.seconds < 5.0);
	assert_true(chardev_queued(&cd) <= CHARDEV_OUT_MAX);
	assert_true(cd.out_dropped > 0);
	assert_true(cd.connected);
	assert_int_equal(f.closes, 0);
	close(client);
	chardev_close(&cd);
	loop_destroy(loop);
}

/* A pty nobody has opened: the old code waited a second per write once it was full. */
static void test_pty_without_reader(void **state)
{
	struct loop *loop = loop_create();
	struct chardev cd;
	struct chardev_spec spec = { .kind = CHARDEV_PTY };
	struct fe_state f = { 0 };
	struct chardev_frontend fe = { fe_input, fe_opened, fe_closed, &f };
	static uint8_t chunk[1024];
	double t0;
	FILE *saved = stderr;

	assert_non_null(loop);
	stderr = fopen("/dev/null", "w");	/* "char device redirected to ..." */
	assert_int_equal(chardev_open(&cd, "serial0", &spec), 0);
	fclose(stderr);
	stderr = saved;
	assert_int_equal(chardev_attach(&cd, loop, &fe), 0);
	t0 = now();
	for (unsigned i = 0; i < 2048; i++)	/* 2 MiB */
		chardev_write(&cd, chunk, sizeof(chunk));
	assert_true(now() - t0 < 0.5);
	assert_true(chardev_queued(&cd) <= CHARDEV_OUT_MAX);
	assert_true(cd.out_dropped > 0);
	for (int i = 0; i < 5; i++)
		loop_run_once(loop, 0);		/* nothing to do: no busy EPOLLOUT */
	chardev_close(&cd);
	loop_destroy(loop);
}

/* Sends "x" with n fds open on file (SCM_RIGHTS); returns the file's inode. */
static ino_t send_fds(int sock, const char *file, unsigned n)
{
	char ctlbuf[CMSG_SPACE(4 * sizeof(int))] = { 0 };
	struct iovec iov = { "x", 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctlbuf,
			    .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	int fds[4];
	struct stat st;

	assert_true(n >= 1 && n <= 4);
	for (unsigned i = 0; i < n; i++) {
		fds[i] = open(file, O_RDONLY | O_CLOEXEC);
		assert_true(fds[i] >= 0);
	}
	assert_int_equal(fstat(fds[0], &st), 0);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	assert_int_equal(sendmsg(sock, &m, 0), 1);
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	return st.st_ino;
}

/*
 * fds a socket client passes with its bytes (QMP getfd/add-fd): taken once,
 * the first one; the rest of that read's are closed; a plain read has none.
 */
static void test_socket_passes_fds(void **state)
{
	struct loop *loop = loop_create();
	struct chardev cd;
	struct fe_state f = { 0 };
	struct stat st;
	ino_t ino;
	int client, fd;

	assert_non_null(loop);
	client = serve(&cd, loop, &f);
	assert_int_equal(chardev_take_msgfd(&cd), -1);
	ino = send_fds(client, "/dev/null", 3);
	while (!f.inputs)
		assert_true(loop_run_once(loop, 1000) > 0);
	fd = chardev_take_msgfd(&cd);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_ino == ino);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	assert_int_equal(chardev_take_msgfd(&cd), -1);
	assert_int_equal(write(client, "y", 1), 1);
	while (f.inputs < 2)
		assert_true(loop_run_once(loop, 1000) > 0);
	assert_int_equal(chardev_take_msgfd(&cd), -1);
	/* Unclaimed fds go when the client does. */
	send_fds(client, "/", 1);
	while (f.inputs < 3)
		assert_true(loop_run_once(loop, 1000) > 0);
	assert_int_equal(cd.nr_msgfds, 1);
	fd = cd.msgfds[0];
	close(client);
	while (!f.closes)
		assert_true(loop_run_once(loop, 1000) > 0);
	assert_int_equal(cd.nr_msgfds, 0);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	chardev_close(&cd);
	loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_never_reading_client_is_dropped_not_waited_for,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_throttled_until_output_drains, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_vcpu_thread_never_blocks, setup, teardown),
		cmocka_unit_test(test_pty_without_reader),
		cmocka_unit_test_setup_teardown(test_socket_passes_fds, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
