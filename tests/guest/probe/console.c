/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-console (virtio 1.2 §5.3), port 0 only: what QEMU's
 * virtio-serial-pci + virtconsole gives (virtconsole takes port 0).
 *
 * Without VIRTIO_CONSOLE_F_MULTIPORT, queues 0/1 are port 0's receive and
 * transmit queues and that is all.  With it (QEMU offers it whenever the
 * bus allows more than one port), queues 2/3 carry control messages
 * (§5.3.6.2): the driver says DEVICE_READY, the device announces each
 * port with DEVICE_ADD, the driver answers PORT_READY, the device marks
 * consoles with CONSOLE_PORT, the driver opens its side with PORT_OPEN
 * (QEMU only passes host input to a port the guest opened), and the
 * device says PORT_OPEN when the host side connects.  Ports other than 0
 * are left alone: their queues (4 and up) are never set up.
 */
#include "virtio.h"

#define VIRTIO_CONSOLE_F_MULTIPORT	1

/* §5.3.6.2 control events */
#define VIRTIO_CONSOLE_DEVICE_READY	0
#define VIRTIO_CONSOLE_DEVICE_ADD	1
#define VIRTIO_CONSOLE_DEVICE_REMOVE	2
#define VIRTIO_CONSOLE_PORT_READY	3
#define VIRTIO_CONSOLE_CONSOLE_PORT	4
#define VIRTIO_CONSOLE_RESIZE		5
#define VIRTIO_CONSOLE_PORT_OPEN	6
#define VIRTIO_CONSOLE_PORT_NAME	7

#define Q_RX		0		/* port 0 receiveq */
#define Q_TX		1		/* port 0 transmitq */
#define Q_CRX		2		/* control receiveq */
#define Q_CTX		3		/* control transmitq */
#define RX_BUFS		4
#define RX_LEN		256
/* QEMU drops a control message when no buffer is posted: keep plenty. */
#define CRX_BUFS	16
#define CRX_LEN		128		/* PORT_NAME carries the name after it */
#define LINE_MAX	200

struct ctrl_msg {
	uint32_t id;
	uint16_t event;
	uint16_t value;
};

struct con {
	struct virtio_dev vd;
	struct virtq rx, tx, crx, ctx;
	bool multiport;
	bool port_ready;		/* DEVICE_ADD for port 0 answered */
	bool is_console;		/* CONSOLE_PORT for port 0 */
	bool host_open;			/* PORT_OPEN 1 for port 0 */
	uint8_t *rx_of[VQ_SIZE_MAX];	/* head descriptor -> buffer */
	uint8_t *crx_of[VQ_SIZE_MAX];
};

static uint8_t rx_bufs[RX_BUFS][RX_LEN];
static uint8_t crx_bufs[CRX_BUFS][CRX_LEN];
static struct ctrl_msg ctrl_out;
static const char hello[] = "probe: hello over virtio-console\n";

static bool post(struct virtq *vq, uint8_t **map, uint8_t *buf, uint32_t len)
{
	struct vq_buf b = { buf, len };
	int head = vq_add(vq, &b, 0, 1);

	if (head < 0)
		return fail("console: queue %u full", vq->index);
	map[head] = buf;
	return true;
}

static bool ctrl_send(struct con *c, uint32_t id, uint16_t event, uint16_t value)
{
	struct vq_buf b = { &ctrl_out, sizeof(ctrl_out) };
	uint32_t len;

	ctrl_out = (struct ctrl_msg){ id, event, value };
	return vq_xfer(&c->ctx, &b, 1, 0, &len);
}

static bool ctrl_handle(struct con *c, const struct ctrl_msg *m)
{
	switch (m->event) {
	case VIRTIO_CONSOLE_DEVICE_ADD:
		if (m->id != 0) {
			say("console: port %u added, not used", m->id);
			return true;
		}
		c->port_ready = true;
		return ctrl_send(c, 0, VIRTIO_CONSOLE_PORT_READY, 1);
	case VIRTIO_CONSOLE_DEVICE_REMOVE:
		if (m->id == 0)
			return fail("console: device removed port 0");
		return true;
	case VIRTIO_CONSOLE_CONSOLE_PORT:
		if (m->id != 0 || c->is_console)
			return true;
		c->is_console = true;
		say("console: port 0 is a console");
		/* As Linux's hvc path: a console is open from the start. */
		return ctrl_send(c, 0, VIRTIO_CONSOLE_PORT_OPEN, 1);
	case VIRTIO_CONSOLE_PORT_OPEN:
		if (m->id == 0 && c->host_open != (m->value != 0)) {
			c->host_open = m->value != 0;
			say("console: host %s port 0",
			    c->host_open ? "opened" : "closed");
		}
		return true;
	default:			/* RESIZE, PORT_NAME: nothing to do */
		return true;
	}
}

/* Handle every control message the device has sent, reposting buffers. */
static bool ctrl_poll(struct con *c)
{
	uint32_t id, len;
	bool kick = false;

	if (!c->multiport)
		return true;
	while (vq_poll(&c->crx, &id, &len)) {
		uint8_t *buf = id < c->crx.size ? c->crx_of[id] : NULL;
		struct ctrl_msg m;

		if (!buf)
			return fail("console: control queue returned id %u", id);
		c->crx_of[id] = NULL;
		if (len >= sizeof(m)) {
			memcpy(&m, buf, sizeof(m));
			if (!ctrl_handle(c, &m))
				return false;
		}
		if (!post(&c->crx, c->crx_of, buf, CRX_LEN))
			return false;
		kick = true;
	}
	if (kick)
		vq_kick(&c->crx);
	return true;
}

static bool con_open(const struct platform *p, struct con *c, bool multiport)
{
	memset(c, 0, sizeof(*c));
	if (!virtio_find(p, VIRTIO_ID_CONSOLE, 0, &c->vd))
		return fail("console: no usable virtio-console device");
	if (!virtio_negotiate(&c->vd, multiport ? 1ull << VIRTIO_CONSOLE_F_MULTIPORT : 0))
		return false;
	c->multiport = virtio_has(&c->vd, VIRTIO_CONSOLE_F_MULTIPORT);
	say("console: %s", c->multiport ? "multiport" : "single port");
	if (!virtio_vq_init(&c->vd, &c->rx, Q_RX, VQ_SIZE_DEFAULT) ||
	    !virtio_vq_init(&c->vd, &c->tx, Q_TX, VQ_SIZE_DEFAULT))
		return false;
	if (c->multiport && (!virtio_vq_init(&c->vd, &c->crx, Q_CRX, VQ_SIZE_DEFAULT) ||
			     !virtio_vq_init(&c->vd, &c->ctx, Q_CTX, VQ_SIZE_DEFAULT)))
		return false;
	/* §3.1.1 step 8; buffers go in only after it (§3.1.1 note on notifications). */
	virtio_driver_ok(&c->vd);

	for (int i = 0; i < RX_BUFS; i++)
		if (!post(&c->rx, c->rx_of, rx_bufs[i], RX_LEN))
			return false;
	vq_kick(&c->rx);
	if (!c->multiport)
		return true;
	for (int i = 0; i < CRX_BUFS; i++)
		if (!post(&c->crx, c->crx_of, crx_bufs[i], CRX_LEN))
			return false;
	vq_kick(&c->crx);
	return ctrl_send(c, 0, VIRTIO_CONSOLE_DEVICE_READY, 1);
}

/*
 * Multiport: wait until port 0 is ready, a console, and open on the host
 * side, since QEMU discards output to a port no host client listens on.
 */
static bool con_wait_open(struct con *c, uint64_t ticks)
{
	uint64_t t0 = rdtsc();

	if (!c->multiport)
		return true;
	while (!(c->port_ready && c->is_console && c->host_open)) {
		if (!ctrl_poll(c))
			return false;
		if (rdtsc() - t0 > ticks)
			break;
		cpu_relax();
	}
	if (!c->port_ready)
		return fail("console: the device never added port 0");
	if (!c->is_console)
		say("console: port 0 is not marked as a console");
	if (!c->host_open)
		say("console: host side of port 0 not open; sending anyway");
	return true;
}

/* Collect bytes from port 0 until CR or LF; keep the control queue served. */
static bool con_read_line(struct con *c, char *line, uint64_t ticks)
{
	uint64_t t0 = rdtsc();
	uint32_t id, len;
	uint8_t *buf;
	size_t n = 0;

	for (;;) {
		if (!ctrl_poll(c))
			return false;
		if (!vq_poll(&c->rx, &id, &len)) {
			if (rdtsc() - t0 > ticks) {
				line[n] = 0;
				return fail("console: no complete line from the host (have \"%s\")",
					    line);
			}
			cpu_relax();
			continue;
		}
		buf = id < c->rx.size ? c->rx_of[id] : NULL;
		if (!buf)
			return fail("console: receive queue returned id %u", id);
		c->rx_of[id] = NULL;
		if (len > RX_LEN)
			return fail("console: device wrote %u bytes into a %d-byte buffer",
				    len, RX_LEN);
		for (uint32_t i = 0; i < len; i++) {
			if (buf[i] == '\n' || buf[i] == '\r') {
				if (!n)		/* a CR LF's tail, or an empty line */
					continue;
				line[n] = 0;
				return true;
			}
			if (n < LINE_MAX)
				line[n++] = (char)buf[i];
		}
		if (!post(&c->rx, c->rx_of, buf, RX_LEN))
			return false;
		vq_kick(&c->rx);
	}
}

/*
 * Scenario "console[,multiport=0][,timeout=S]": send hello through port 0,
 * then echo one line of host input to COM1.  multiport=0 declines
 * VIRTIO_CONSOLE_F_MULTIPORT even if offered; timeout (default 30 s)
 * bounds each wait for the host.
 */
bool scenario_console(const struct platform *p, const struct args *a)
{
	uint64_t multiport = 1, timeout = 30;
	/* The device only reads it: .rodata is RAM like any other. */
	struct vq_buf b = { (void *)hello, sizeof(hello) - 1 };
	char line[LINE_MAX + 1];
	static struct con c;
	uint32_t len;

	if (!arg_u64(a, "multiport", &multiport) || multiport > 1 ||
	    !arg_u64(a, "timeout", &timeout) || !timeout)
		return fail("console: bad multiport= (0|1) or timeout=");
	if (!con_open(p, &c, multiport) ||
	    !con_wait_open(&c, virtio_ticks(timeout)))
		return false;

	if (!vq_xfer(&c.tx, &b, 1, 0, &len))
		return false;
	say("console: sent hello");
	if (!con_read_line(&c, line, virtio_ticks(timeout)))
		return false;
	say("console: got %s", line);
	virtio_reset(&c.vd);
	return true;
}
