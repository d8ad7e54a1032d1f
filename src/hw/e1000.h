/*
 * e1000: the Intel 82540EM gigabit NIC (8086:100E), the default NIC of
 * QEMU's pc machine and the one every PXE ROM and OS driver knows.  Legacy
 * and extended descriptors, checksum offload and TSO, the microwire EEPROM
 * and EERD, the PHY behind MDIC, INTx.  Its link end (nc) outlives VM
 * resets; the PCI function is made anew with each VM (e1000_attach).
 */
#ifndef KESTREL_HW_E1000_H
#define KESTREL_HW_E1000_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw/pci.h"
#include "net/net.h"

struct guest_memory;

#define E1000_MMIO_SIZE 0x20000
#define E1000_IO_SIZE 0x40
#define E1000_EEPROM_WORDS 64
#define E1000_TX_MAX (65536 + 256)	/* one TSO super-frame and its header */

/* How the NIC asserts its INTx line (level-triggered). */
typedef void (*e1000_irq_fn)(void *opaque, unsigned line, bool level);	/* line: INTERRUPT_LINE */

struct e1000_tx_ctx {		/* the last context descriptor */
	uint8_t ipcss, ipcso, tucss, tucso, hdrlen;
	uint16_t ipcse, tucse, mss;
	uint32_t paylen;
	bool tcp, ipv4;		/* TUCMD.TCP, TUCMD.IP */
};

struct e1000 {
	struct net_client nc;		/* this NIC's end of the link to its back end */
	struct pci_device pci;
	pthread_mutex_t lock;		/* registers, EEPROM, PHY, receive */
	pthread_mutex_t tx_lock;	/* the transmit path and its frame buffer */
	bool attached;			/* a VM is built around it */
	const struct guest_memory *mem;
	e1000_irq_fn set_irq;
	void *irq_opaque;
	bool irq_level;
	uint8_t mac[6];

	uint32_t regs[E1000_MMIO_SIZE / 4];
	uint16_t eeprom[E1000_EEPROM_WORDS];
	uint16_t phy[32];
	uint32_t io_addr;		/* IOADDR of the I/O BAR */
	struct {			/* microwire EEPROM state, as a bit-banging driver sees it */
		uint32_t old, val_in;
		unsigned bit_in, bit_out;
		bool reading;
	} eecd;

	struct e1000_tx_ctx ctx;
	uint8_t tx_frame[E1000_TX_MAX];	/* the frame being gathered from descriptors */
	size_t tx_len;
	bool tx_overflow;
	uint8_t tx_popts;		/* POPTS of the frame's first data descriptor */
	bool tx_tse;
	uint64_t rx_frames, tx_frames;
};

/* Sets up the NIC's state and its link end; free with e1000_release. */
int e1000_init(struct e1000 *e, const char *name, const uint8_t mac[6]);
/* Plugs a fresh function (power-on register state) into bus at slot (-1: first free). */
int e1000_attach(struct e1000 *e, struct pci_bus *bus, int slot, const struct guest_memory *mem,
		 e1000_irq_fn set_irq, void *irq_opaque);
/* The VM is going away: no more frames into its RAM. */
void e1000_detach(struct e1000 *e);
void e1000_release(struct e1000 *e);

/* Saved state (core/vmstate.h), section "e1000": registers, EEPROM and its
 * microwire state, PHY, the transmit context and a half-gathered frame.  The
 * config space travels in its own pci-config section.  A loaded NIC sets its
 * interrupt line to what ICR and IMS say. */
struct vmstate_out;
struct vmstate_in;
int e1000_save(struct e1000 *e, struct vmstate_out *out, unsigned instance);
int e1000_load(struct e1000 *e, struct vmstate_in *in);

#endif
