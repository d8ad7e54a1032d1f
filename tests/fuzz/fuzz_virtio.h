/*
 * Shared by the virtio fuzz targets (fuzz_virtqueue, fuzz_virtio_devices):
 * guest RAM of one or two regions with a hole between, filled from the
 * input, and the driver's register traffic to a virtio-pci function as
 * 8-byte records.
 */
#ifndef KESTREL_TESTS_FUZZ_VIRTIO_H
#define KESTREL_TESTS_FUZZ_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "virtio/pci.h"
#include "core/memory.h"

#define FUZZ_VIRTIO_RECORD 8

static inline uint16_t fuzz_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t fuzz_get32(const uint8_t *p)
{
	return (uint32_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24);
}

/* Whether len bytes at host address p lie inside one region of guest RAM. */
static inline bool fuzz_in_ram(const struct guest_memory *mem, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (unsigned r = 0; r < mem->nr_regions; r++) {
		const struct memory_region *reg = &mem->regions[r];
		if (b >= reg->host && (size_t)(b - reg->host) <= reg->size &&
		    len <= reg->size - (size_t)(b - reg->host))
			return true;
	}
	return false;
}

/*
 * Guest RAM: low (low_size bytes at 0) and, with two, high (high_size bytes
 * at high_gpa); both zeroed, then filled from body in that order.
 */
static inline void fuzz_virtio_memory(struct guest_memory *mem, uint8_t *low, size_t low_size,
				      uint8_t *high, uint64_t high_gpa, size_t high_size,
				      bool two, const uint8_t *body, size_t n)
{
	memset(mem, 0, sizeof(*mem));
	memset(low, 0, low_size);
	memcpy(low, body, n < low_size ? n : low_size);
	mem->host = low;
	mem->regions[0] = (struct memory_region){ .gpa = 0, .size = low_size, .host = low };
	mem->nr_regions = 1;
	mem->ram_size = low_size;
	if (!two)
		return;
	memset(high, 0, high_size);
	if (n > low_size)
		memcpy(high, body + low_size, n - low_size < high_size ? n - low_size : high_size);
	mem->regions[1] = (struct memory_region){ .gpa = high_gpa, .size = high_size, .host = high };
	mem->nr_regions = 2;
	mem->ram_size += high_size;
}

/* Config space access through 0xcf8/0xcfc. */
static inline void fuzz_virtio_config_io(struct pci_bus *bus, unsigned slot, unsigned reg,
					 bool write, uint32_t v, unsigned size)
{
	uint32_t a = 0x80000000u | slot << 11 | (reg & 0xfc);
	uint8_t b[4];

	memcpy(b, &a, 4);
	pci_config_address_io(bus, 0, true, b, 4);
	memcpy(b, &v, 4);
	pci_config_data_io(bus, reg & 3, write, b, size);
}

/*
 * One record of register traffic to the function in slot: [0] op, [1] bits
 * 0-1 log2 size, bit 2 write, bits 3-7 the queue a kick names, [2..3]
 * offset, [4..7] value (doubled for 8-byte accesses).  The BAR addresses are
 * the ones assigned at creation: a driver moving them sends later accesses
 * into the void, as it would on a real bus.
 */
static inline void fuzz_virtio_io(struct pci_bus *bus, struct virtio_pci *vp, unsigned slot,
				  const uint8_t *r)
{
	unsigned size = 1u << (r[1] & 3);	/* 1, 2, 4, 8 */
	uint16_t off = fuzz_get16(r + 2);
	uint32_t v32 = fuzz_get32(r + 4);
	uint64_t v = v32 | (uint64_t)v32 << 32;
	uint64_t bar1 = vp->pci.bars[1].addr, bar4 = vp->pci.bars[4].addr;
	unsigned q = (r[1] >> 3) % (vp->vdev.num_queues ? vp->vdev.num_queues : 1);
	uint8_t buf[8];
	bool write = r[1] & 4;

	memcpy(buf, &v, 8);
	switch (r[0] & 7) {
	case 0:	/* common configuration, where most of the protocol is */
		pci_mmio_io(bus, bar4 + (off & 0x3f) - PCI_MMIO_WINDOW_BASE, write, buf, size);
		break;
	case 1:	/* anywhere in the virtio BAR: ISR, device config, notify */
		pci_mmio_io(bus, bar4 + (off & 0x3fff) - PCI_MMIO_WINDOW_BASE, write, buf, size);
		break;
	case 2:	/* a kick of queue q */
		pci_mmio_io(bus, bar4 + 0x3000 + 4 * q - PCI_MMIO_WINDOW_BASE, true, buf, 2);
		break;
	case 3:	/* the MSI-X table and PBA */
		pci_mmio_io(bus, bar1 + (off & 0xfff) - PCI_MMIO_WINDOW_BASE, write, buf, size);
		break;
	case 4:
		fuzz_virtio_config_io(bus, slot, off & 0xff, write, v32, size > 4 ? 4 : size);
		break;
	case 5:	/* the MMIO window at large (BARs moved elsewhere, nothing) */
		pci_mmio_io(bus, (uint64_t)v32 << 4, write, buf, size);
		break;
	default:	/* a 64-bit queue address write, to help the fuzzer along */
		pci_mmio_io(bus, bar4 + 0x20 + 8 * (r[1] % 3) - PCI_MMIO_WINDOW_BASE, true, buf, 4);
		break;
	}
}

#endif
