/*
 * The PIIX3 USB UHCI controller (8086:7020) at 00:01.2, as QEMU's -usb
 * places it: I/O BAR4 of 32 bytes with the registers of the UHCI 1.1 design
 * guide §2.1, two root ports, and a 1 ms frame timer that walks the guest's
 * schedule (frame list → queue heads → transfer descriptors, §3) while
 * USBCMD.RS is set.  Every guest-physical access goes through memory_ptr, so
 * a schedule pointing outside guest RAM halts the controller with a host
 * system error instead of touching host memory, and each frame's walk stops
 * after UHCI_FRAME_BUDGET links, so loops in the schedule cannot hang it.
 */
#ifndef KESTREL_USB_UHCI_H
#define KESTREL_USB_UHCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/memory.h"
#include "hw/pci.h"
#include "usb/usb.h"

#define UHCI_PORTS 2
#define UHCI_IO_SIZE 32
#define UHCI_FRAME_BUDGET 512	/* links followed per frame at most */
#define UHCI_FN 2		/* PCI function of the PIIX3 */

/* Registers (UHCI 1.1 §2.1). */
#define UHCI_USBCMD 0x00
#define UHCI_USBSTS 0x02
#define UHCI_USBINTR 0x04
#define UHCI_FRNUM 0x06
#define UHCI_FLBASEADD 0x08
#define UHCI_SOFMOD 0x0c
#define UHCI_PORTSC1 0x10

#define UHCI_CMD_RS 0x0001
#define UHCI_CMD_HCRESET 0x0002
#define UHCI_CMD_GRESET 0x0004
#define UHCI_CMD_EGSM 0x0008
#define UHCI_CMD_FGR 0x0010
#define UHCI_CMD_MAXP 0x0080

#define UHCI_STS_USBINT 0x0001
#define UHCI_STS_ERRINT 0x0002
#define UHCI_STS_RD 0x0004
#define UHCI_STS_HSE 0x0008
#define UHCI_STS_HCPE 0x0010
#define UHCI_STS_HALTED 0x0020

#define UHCI_INTR_TIMEOUT 0x0001
#define UHCI_INTR_RESUME 0x0002
#define UHCI_INTR_IOC 0x0004
#define UHCI_INTR_SP 0x0008

#define UHCI_PORT_CCS 0x0001
#define UHCI_PORT_CSC 0x0002
#define UHCI_PORT_PED 0x0004
#define UHCI_PORT_PEDC 0x0008
#define UHCI_PORT_RD 0x0040
#define UHCI_PORT_ALWAYS1 0x0080
#define UHCI_PORT_LSDA 0x0100
#define UHCI_PORT_PR 0x0200
#define UHCI_PORT_SUSP 0x1000

/* Link pointers (§3.1, §3.3): terminate, QH (else TD), depth first. */
#define UHCI_LINK_T 0x1
#define UHCI_LINK_Q 0x2
#define UHCI_LINK_VF 0x4

/* TD control and status (§3.2.2). */
#define UHCI_TD_ACTLEN 0x7ff
#define UHCI_TD_BITSTUFF (1u << 17)
#define UHCI_TD_TIMEOUT (1u << 18)
#define UHCI_TD_NAK (1u << 19)
#define UHCI_TD_BABBLE (1u << 20)
#define UHCI_TD_DBUFERR (1u << 21)
#define UHCI_TD_STALLED (1u << 22)
#define UHCI_TD_ACTIVE (1u << 23)
#define UHCI_TD_IOC (1u << 24)
#define UHCI_TD_IOS (1u << 25)
#define UHCI_TD_LS (1u << 26)
#define UHCI_TD_CERR_SHIFT 27
#define UHCI_TD_SPD (1u << 29)

/* How the controller drives its PCI INTx line (level). */
typedef void (*uhci_irq_fn)(void *opaque, unsigned line, bool level);

struct uhci {
	struct pci_device pci;
	const struct guest_memory *mem;
	pthread_mutex_t lock;		/* registers and the schedule walk */
	pthread_cond_t wake;		/* RS set, or stopping */
	pthread_t thread;
	bool thread_started, stopping;
	uint16_t cmd, sts, intr, frnum;
	uint32_t flbase;
	uint8_t sofmod;
	uint16_t portsc[UHCI_PORTS];
	struct usb_device *ports[UHCI_PORTS];
	bool ioc_pending, sp_pending;	/* why USBINT is set, for the USBINTR mask */
	uint64_t now_ms;		/* frames run since start: the devices' clock */
	unsigned last_walk_links;	/* links followed in the last frame (tests) */
	uhci_irq_fn set_irq;
	void *irq_opaque;
	bool irq_level;
};

/* Sets up registers and PCI config; plug u->pci as function UHCI_FN, then uhci_start. */
int uhci_init(struct uhci *u, const struct guest_memory *mem, uhci_irq_fn set_irq,
	      void *irq_opaque);
/* Starts the 1 ms frame thread; returns a negative errno on failure. */
int uhci_start(struct uhci *u);
void uhci_destroy(struct uhci *u);

/* Connects dev to root port (0-based); -1 if it is taken or out of range. */
int uhci_attach(struct uhci *u, unsigned port, struct usb_device *dev);

/* BAR4 accesses (bus_access_fn). */
void uhci_io(void *opaque, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

/* Runs one frame (what the timer does each ms while RS is set); tests call it directly. */
void uhci_run_frame(struct uhci *u);

#endif
