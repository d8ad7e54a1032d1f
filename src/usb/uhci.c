/* PIIX3 UHCI: registers, root ports and the schedule walk (UHCI 1.1 design guide). */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "usb/uhci.h"
#include "util/log.h"

enum td_result {
	TD_DONE,	/* completed: a queue advances past it */
	TD_SHORT,	/* completed short with SPD: its queue stops here (§3.2.2 SPD) */
	TD_INACTIVE,	/* not active: skipped */
	TD_RETRY,	/* NAK, or an error with retries left: stays active */
	TD_HALTED,	/* stalled or out of retries: its queue stops */
	TD_FATAL,	/* the controller halted (bad memory, bad length) */
};

static void update_irq(struct uhci *u)
{
	bool level = (u->ioc_pending && (u->intr & UHCI_INTR_IOC)) ||
		     (u->sp_pending && (u->intr & UHCI_INTR_SP)) ||
		     ((u->sts & UHCI_STS_ERRINT) && (u->intr & UHCI_INTR_TIMEOUT)) ||
		     ((u->sts & UHCI_STS_RD) && (u->intr & UHCI_INTR_RESUME)) ||
		     (u->sts & (UHCI_STS_HSE | UHCI_STS_HCPE));

	/* INTx# is level triggered; INTERRUPT_LINE is what the firmware routed it to. */
	if (level != u->irq_level && u->set_irq) {
		u->irq_level = level;
		u->set_irq(u->irq_opaque, u->pci.config[PCI_INTERRUPT_LINE], level);
	}
}

static uint16_t port_value(const struct uhci *u, unsigned i)
{
	return (uint16_t)(u->portsc[i] | UHCI_PORT_ALWAYS1 | (u->ports[i] ? UHCI_PORT_CCS : 0));
}

static void reset_ports(struct uhci *u)
{
	for (unsigned i = 0; i < UHCI_PORTS; i++) {
		u->portsc[i] = u->ports[i] ? UHCI_PORT_CSC : 0;
		if (u->ports[i])
			usb_device_reset(u->ports[i]);
	}
}

/* HCRESET/GRESET and power-on: registers to their defaults (§2.1). */
static void controller_reset(struct uhci *u)
{
	u->cmd = 0;
	u->sts = UHCI_STS_HALTED;
	u->intr = 0;
	u->frnum = 0;
	u->flbase = 0;
	u->sofmod = 0x40;
	u->ioc_pending = u->sp_pending = false;
	reset_ports(u);
	update_irq(u);
}

/* A host system error (§2.1.2): the schedule pointed outside RAM; the controller stops. */
static void host_error(struct uhci *u, uint16_t bit)
{
	u->sts |= bit | UHCI_STS_HALTED;
	u->cmd &= (uint16_t)~UHCI_CMD_RS;
}

static int read32(struct uhci *u, uint64_t gpa, uint32_t *v)
{
	const uint8_t *p = memory_ptr(u->mem, gpa, 4);

	if (!p)
		return -1;
	*v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	return 0;
}

static int write32(struct uhci *u, uint64_t gpa, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	return memory_write(u->mem, gpa, b, 4);
}

static struct usb_device *find_device(struct uhci *u, unsigned addr)
{
	for (unsigned i = 0; i < UHCI_PORTS; i++) {
		struct usb_device *d = u->ports[i];
		/* Only an enabled port passes traffic (§2.1.7 PED). */
		if (d && (u->portsc[i] & UHCI_PORT_PED) && !(u->portsc[i] & UHCI_PORT_PR) &&
		    d->addr == addr)
			return d;
	}
	return NULL;
}

/*
 * A transaction error: C_ERR counts down, and the TD retires stalled when it
 * reaches zero; 0 from the start means retry forever (§3.2.2 C_ERR).
 */
static enum td_result td_error(struct uhci *u, uint32_t *ctrl, uint32_t bit)
{
	unsigned cerr = (*ctrl >> UHCI_TD_CERR_SHIFT) & 3;

	*ctrl |= bit;
	if (cerr == 0)
		return TD_RETRY;
	cerr--;
	*ctrl = (*ctrl & ~(3u << UHCI_TD_CERR_SHIFT)) | cerr << UHCI_TD_CERR_SHIFT;
	if (cerr)
		return TD_RETRY;
	*ctrl = (*ctrl & ~UHCI_TD_ACTIVE) | UHCI_TD_STALLED;
	u->sts |= UHCI_STS_ERRINT;
	return TD_HALTED;
}

/* Runs one TD's transaction; the caller writes ctrl back. */
static enum td_result run_td(struct uhci *u, const uint32_t td[4], uint32_t *ctrl)
{
	uint8_t buf[1280];
	unsigned pid = td[2] & 0xff, addr = (td[2] >> 8) & 0x7f, ep = (td[2] >> 15) & 0xf;
	unsigned maxlen = ((td[2] >> 21) + 1) & 0x7ff;	/* n-1 encoding, 0x7ff: zero (§3.2.3) */
	struct usb_device *dev;
	int r;

	if (!(*ctrl & UHCI_TD_ACTIVE))
		return TD_INACTIVE;
	/* MaxLen 0x500-0x7fe is illegal and pid must be one of three: HC process error. */
	if (maxlen > sizeof(buf) ||
	    (pid != USB_PID_SETUP && pid != USB_PID_IN && pid != USB_PID_OUT)) {
		host_error(u, UHCI_STS_HCPE);
		return TD_FATAL;
	}
	if ((pid == USB_PID_SETUP || pid == USB_PID_OUT) && maxlen) {
		const void *src = memory_ptr(u->mem, td[3], maxlen);
		if (!src) {
			host_error(u, UHCI_STS_HSE);
			return TD_FATAL;
		}
		memcpy(buf, src, maxlen);
	}
	dev = find_device(u, addr);
	if (!dev)
		return td_error(u, ctrl, UHCI_TD_TIMEOUT);	/* nobody answers: timeout */
	*ctrl &= ~(UHCI_TD_NAK | UHCI_TD_TIMEOUT | UHCI_TD_BABBLE | UHCI_TD_DBUFERR |
		   UHCI_TD_BITSTUFF | UHCI_TD_STALLED | UHCI_TD_ACTLEN);
	dev->now_ms = u->now_ms;
	r = usb_handle_packet(dev, (int)pid, ep, buf, maxlen);
	if (r == USB_RET_NAK) {
		*ctrl |= UHCI_TD_NAK | UHCI_TD_ACTLEN;
		return TD_RETRY;
	}
	if (r == USB_RET_STALL || r == USB_RET_BABBLE) {
		*ctrl = (*ctrl & ~UHCI_TD_ACTIVE) | UHCI_TD_STALLED | UHCI_TD_ACTLEN |
			(r == USB_RET_BABBLE ? UHCI_TD_BABBLE : 0);
		u->sts |= UHCI_STS_ERRINT;
		return TD_HALTED;
	}
	if (r < 0 || (unsigned)r > maxlen)
		r = (int)maxlen;
	if (pid == USB_PID_IN && r > 0 && memory_write(u->mem, td[3], buf, (size_t)r) < 0) {
		host_error(u, UHCI_STS_HSE);
		return TD_FATAL;
	}
	*ctrl = (*ctrl & ~UHCI_TD_ACTIVE) | (((unsigned)r - 1) & UHCI_TD_ACTLEN);
	if (*ctrl & UHCI_TD_IOC) {
		u->sts |= UHCI_STS_USBINT;
		u->ioc_pending = true;
	}
	if (pid == USB_PID_IN && (unsigned)r < maxlen && (*ctrl & UHCI_TD_SPD)) {
		u->sts |= UHCI_STS_USBINT;
		u->sp_pending = true;
		return TD_SHORT;
	}
	return TD_DONE;
}

/* Reads a TD, runs it and writes its status back; -1 when its memory is not RAM. */
static int process_td(struct uhci *u, uint32_t addr, uint32_t td[4], enum td_result *res)
{
	uint32_t ctrl;

	for (unsigned i = 0; i < 4; i++)
		if (read32(u, (uint64_t)addr + 4 * i, &td[i]) < 0)
			return -1;
	ctrl = td[1];
	*res = run_td(u, td, &ctrl);
	if (*res == TD_FATAL || *res == TD_INACTIVE)
		return 0;
	if (ctrl != td[1] && write32(u, (uint64_t)addr + 4, ctrl) < 0)
		return -1;
	return 0;
}

/*
 * One frame's schedule (§3.4): from the frame list entry, follow horizontal
 * links; a QH's element is run, and on success the QH advances to the TD's
 * link, continuing down the queue when that link says depth first, else
 * moving on to the next QH.  At most UHCI_FRAME_BUDGET links are followed.
 */
static void walk_frame(struct uhci *u)
{
	uint32_t link, qh_addr = 0, qh_head = 0, td[4];
	bool in_qh = false;
	enum td_result res;
	unsigned budget = 0;

	if (read32(u, (u->flbase & ~0xfffu) + (uint64_t)(u->frnum & 0x3ff) * 4, &link) < 0)
		goto bad;
	for (budget = 0; !(link & UHCI_LINK_T) && budget < UHCI_FRAME_BUDGET; budget++) {
		if (link & UHCI_LINK_Q) {
			uint32_t el;
			qh_addr = link & ~0xfu;
			if (read32(u, qh_addr, &qh_head) < 0 || read32(u, qh_addr + 4, &el) < 0)
				goto bad;
			in_qh = !(el & UHCI_LINK_T) && !(el & UHCI_LINK_Q);
			/* An empty queue moves on; a QH as element is followed (nested queues). */
			link = el & UHCI_LINK_T ? qh_head : el;
			continue;
		}
		if (process_td(u, link & ~0xfu, td, &res) < 0)
			goto bad;
		if (res == TD_FATAL)
			break;
		if (!in_qh) {
			link = td[0];	/* isochronous-style TD in the frame list itself */
			continue;
		}
		if (res != TD_DONE) {
			/* NAK, stall, short, inactive: this queue waits; go to the next QH. */
			link = qh_head;
			in_qh = false;
			continue;
		}
		/* Advance the queue: its element pointer takes the TD's link (§3.4.2). */
		if (write32(u, qh_addr + 4, td[0]) < 0)
			goto bad;
		if ((td[0] & UHCI_LINK_VF) && !(td[0] & UHCI_LINK_T) && !(td[0] & UHCI_LINK_Q)) {
			link = td[0];
		} else {
			link = qh_head;
			in_qh = false;
		}
	}
	u->last_walk_links = budget;
	return;
bad:
	u->last_walk_links = budget;
	host_error(u, UHCI_STS_HSE);
}

void uhci_run_frame(struct uhci *u)
{
	pthread_mutex_lock(&u->lock);
	/* A stopped controller, or one not allowed to master the bus, does no DMA. */
	if ((u->cmd & UHCI_CMD_RS) && (u->pci.config[PCI_COMMAND] & PCI_COMMAND_MASTER)) {
		walk_frame(u);
		u->frnum = (uint16_t)((u->frnum + 1) & 0x7ff);
		u->now_ms++;
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static void *frame_thread(void *arg)
{
	struct uhci *u = arg;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&u->lock);
	while (!u->stopping) {
		if (!(u->cmd & UHCI_CMD_RS)) {
			pthread_cond_wait(&u->wake, &u->lock);
			clock_gettime(CLOCK_MONOTONIC, &next);
			continue;
		}
		pthread_mutex_unlock(&u->lock);
		/* One frame per millisecond (§2.1.4 FRNUM); a late tick does not run missed frames. */
		next.tv_nsec += 1000000;
		if (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		uhci_run_frame(u);
		clock_gettime(CLOCK_MONOTONIC, &next);
		pthread_mutex_lock(&u->lock);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

static uint16_t reg_read(struct uhci *u, unsigned off)
{
	switch (off) {
	case UHCI_USBCMD: return u->cmd;
	case UHCI_USBSTS: return u->sts;
	case UHCI_USBINTR: return u->intr;
	case UHCI_FRNUM: return u->frnum;
	case UHCI_FLBASEADD: return (uint16_t)u->flbase;
	case UHCI_FLBASEADD + 2: return (uint16_t)(u->flbase >> 16);
	case UHCI_SOFMOD: return u->sofmod;
	case UHCI_PORTSC1: return port_value(u, 0);
	case UHCI_PORTSC1 + 2: return port_value(u, 1);
	}
	return 0;
}

static void port_write(struct uhci *u, unsigned i, uint16_t v)
{
	uint16_t old = u->portsc[i];
	uint16_t rw = UHCI_PORT_PED | UHCI_PORT_RD | UHCI_PORT_PR | UHCI_PORT_SUSP;

	/* Setting PR resets the device on the port (§2.1.7); it reads address 0 after. */
	if ((v & UHCI_PORT_PR) && !(old & UHCI_PORT_PR) && u->ports[i])
		usb_device_reset(u->ports[i]);
	u->portsc[i] = (uint16_t)((old & ~rw & ~(v & (UHCI_PORT_CSC | UHCI_PORT_PEDC))) | (v & rw));
	if (!u->ports[i])
		u->portsc[i] &= (uint16_t)~UHCI_PORT_PED;	/* nothing to enable */
}

static void reg_write(struct uhci *u, unsigned off, uint16_t v)
{
	switch (off) {
	case UHCI_USBCMD:
		if (v & (UHCI_CMD_HCRESET | UHCI_CMD_GRESET)) {
			controller_reset(u);
			return;
		}
		u->cmd = v;
		if (v & UHCI_CMD_RS)
			u->sts &= (uint16_t)~UHCI_STS_HALTED;
		else
			u->sts |= UHCI_STS_HALTED;
		pthread_cond_signal(&u->wake);
		break;
	case UHCI_USBSTS:
		u->sts &= (uint16_t)~(v & 0x3f & ~UHCI_STS_HALTED);
		if (v & UHCI_STS_USBINT)
			u->ioc_pending = u->sp_pending = false;
		break;
	case UHCI_USBINTR:
		u->intr = v & 0xf;
		break;
	case UHCI_FRNUM:
		u->frnum = v & 0x7ff;
		break;
	case UHCI_FLBASEADD:
		u->flbase = (u->flbase & 0xffff0000u) | (v & 0xf000u);
		break;
	case UHCI_FLBASEADD + 2:
		u->flbase = (u->flbase & 0xffffu) | (uint32_t)v << 16;
		break;
	case UHCI_SOFMOD:
		u->sofmod = (uint8_t)(v & 0x7f);
		break;
	case UHCI_PORTSC1:
	case UHCI_PORTSC1 + 2:
		port_write(u, (off - UHCI_PORTSC1) / 2, v);
		break;
	}
	update_irq(u);
}

/* Bits a write of 0 leaves alone but a read-modify-write of a byte must not write back as 1. */
static uint16_t w1c_bits(unsigned off)
{
	if (off == UHCI_USBSTS)
		return 0x3f;
	if (off == UHCI_PORTSC1 || off == UHCI_PORTSC1 + 2)
		return UHCI_PORT_CSC | UHCI_PORT_PEDC;
	return 0;
}

/* The registers are 16 bits wide (FLBASEADD two halves); byte and dword accesses are split. */
void uhci_io(void *opaque, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct uhci *u = opaque;

	if (offset >= UHCI_IO_SIZE || size > 4 || offset + size > UHCI_IO_SIZE)
		return;
	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < size;) {
		unsigned off = (unsigned)offset + i, reg = off & ~1u;
		uint16_t v = reg_read(u, reg);
		if (!(off & 1) && i + 1 < size) {
			if (is_write)
				reg_write(u, reg, (uint16_t)(data[i] | data[i + 1] << 8));
			else {
				data[i] = (uint8_t)v;
				data[i + 1] = (uint8_t)(v >> 8);
			}
			i += 2;
			continue;
		}
		if (is_write) {
			unsigned shift = (off & 1) * 8;
			v &= (uint16_t)~w1c_bits(reg);
			v = (uint16_t)((v & ~(0xffu << shift)) | (unsigned)data[i] << shift);
			reg_write(u, reg, v);
		} else {
			data[i] = (uint8_t)(v >> ((off & 1) * 8));
		}
		i++;
	}
	pthread_mutex_unlock(&u->lock);
}

int uhci_init(struct uhci *u, const struct guest_memory *mem, uhci_irq_fn set_irq,
	      void *irq_opaque)
{
	int r;

	memset(u, 0, sizeof(*u));
	r = pthread_mutex_init(&u->lock, NULL);
	if (r)
		return -r;
	r = pthread_cond_init(&u->wake, NULL);
	if (r) {
		pthread_mutex_destroy(&u->lock);
		return -r;
	}
	u->mem = mem;
	u->set_irq = set_irq;
	u->irq_opaque = irq_opaque;
	/* QEMU's piix3-usb-uhci: serial bus / USB / UHCI, revision 1, INTD#, USB 1.0 (SBRN). */
	pci_device_init(&u->pci, "piix3-usb-uhci", 0x8086, 0x7020, 0x0c0300, 0x01, 0x1af4, 0x1100);
	u->pci.config[PCI_INTERRUPT_PIN] = 4;
	u->pci.config[0x60] = 0x10;
	pci_device_add_bar(&u->pci, 4, UHCI_IO_SIZE, true, uhci_io, u);
	controller_reset(u);
	return 0;
}

int uhci_attach(struct uhci *u, unsigned port, struct usb_device *dev)
{
	if (port >= UHCI_PORTS || u->ports[port])
		return -1;
	pthread_mutex_lock(&u->lock);
	u->ports[port] = dev;
	u->portsc[port] |= UHCI_PORT_CSC;
	usb_device_reset(dev);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

int uhci_start(struct uhci *u)
{
	int r = pthread_create(&u->thread, NULL, frame_thread, u);

	if (r)
		return -r;
	u->thread_started = true;
	return 0;
}

void uhci_destroy(struct uhci *u)
{
	if (u->thread_started) {
		pthread_mutex_lock(&u->lock);
		u->stopping = true;
		pthread_cond_signal(&u->wake);
		pthread_mutex_unlock(&u->lock);
		pthread_join(u->thread, NULL);
		u->thread_started = false;
	}
	if (u->irq_level && u->set_irq)
		u->set_irq(u->irq_opaque, u->pci.config[PCI_INTERRUPT_LINE], false);
	u->irq_level = false;
	pthread_cond_destroy(&u->wake);
	pthread_mutex_destroy(&u->lock);
}
