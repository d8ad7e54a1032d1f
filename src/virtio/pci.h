/* The virtio 1.x modern PCI transport (virtio 1.2 §4.1). */
#ifndef KESTREL_VIRTIO_PCI_H
#define KESTREL_VIRTIO_PCI_H

#include <stdint.h>

#include "hw/pci.h"
#include "core/iothread.h"
#include "virtio/virtio.h"
#include "core/memory.h"

#define VIRTIO_PCI_MSIX_VECTORS (VIRTIO_MAX_QUEUES + 1)

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct virtio_pci;

/* A queue's notify address wired to an eventfd (KVM_IOEVENTFD), served by the I/O thread. */
struct virtio_kick {
	struct iothread_watch watch;
	struct virtio_pci *vp;
	unsigned queue;
	uint64_t addr;		/* 0 while not assigned */
	int ext_fd;		/* the device's own doorbell eventfd (vhost), -1: ours */
};

/* An eventfd that raises a queue's interrupt when someone else (vhost) signals it. */
struct virtio_call {
	struct iothread_watch watch;
	struct virtio_pci *vp;
	unsigned queue;
	bool watched;
};

struct virtio_pci {
	struct pci_device pci;
	struct virtio_device vdev;
	int vm_fd;			/* for KVM_SIGNAL_MSI and KVM_IRQ_LINE */
	uint32_t device_feature_select, driver_feature_select;
	uint16_t queue_select;
	uint16_t config_msix_vector;
	uint8_t isr;
	bool intx_level;
	struct msix_entry msix[VIRTIO_PCI_MSIX_VECTORS];
	uint64_t msix_pending;		/* PBA: vectors owed while masked */
	struct pci_bus *bus;
	struct iothread *io;		/* NULL: kicks arrive as MMIO exits instead */
	struct virtio_kick kicks[VIRTIO_MAX_QUEUES];
	struct virtio_call calls[VIRTIO_MAX_QUEUES];
	uint8_t pci_cfg_cap;		/* config offset of the PCI_CFG capability, 0: none */
};

/*
 * Sets up vp for a device model (ops + opaque) with num_queues queues (0: the
 * model's default) and plugs it into bus at slot (-1: the first free).
 * Returns -1 when the bus is full or there are too many queues.
 */
int virtio_pci_create(struct virtio_pci *vp, struct pci_bus *bus, int slot,
		      const struct virtio_device_ops *ops, void *opaque, unsigned num_queues,
		      const struct guest_memory *mem, int vm_fd, struct iothread *io);
void virtio_pci_destroy(struct virtio_pci *vp);

/* Where the machine plugs a virtio device: the transport and what it needs. */
struct virtio_plug {
	struct virtio_pci *vp;		/* the transport's state, filled by the plug */
	struct pci_bus *bus;
	int slot;			/* addr=; -1 for the first free */
	unsigned num_queues;		/* 0: the model's default */
	const struct guest_memory *mem;
	int vm_fd;
	struct iothread *io;		/* NULL: kicks arrive as MMIO exits */
};

/* virtio_pci_create for a device's plug function; logs why it failed. */
int virtio_pci_plug(const struct virtio_plug *at, const struct virtio_device_ops *ops,
		    void *opaque);

#endif
