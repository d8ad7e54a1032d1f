#include "vmm/boot/mptable.h"

#include <string.h>

#include "vmm/boot/acpi.h"
#include "vmm/boot/layout.h"

/* Layouts: MP Specification 1.4, chapter 4. */

struct mpf_intel {	/* §4.1 floating pointer structure */
	char signature[4];
	uint32_t physptr;
	uint8_t length;		/* in 16-byte units */
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {	/* §4.2 configuration table header */
	char signature[4];
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t count;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {	/* §4.3.1 */
	uint8_t type, apicid, apicver, cpuflag;
	uint32_t cpufeature, featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {	/* §4.3.2 */
	uint8_t type, busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {	/* §4.3.3 */
	uint8_t type, apicid, apicver, flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {	/* §4.3.4 I/O and §4.3.5 local interrupt assignment */
	uint8_t type, irqtype;
	uint16_t irqflag;
	uint8_t srcbus, srcbusirq, dstapic, dstirq;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf_intel) == 16, "MP floating pointer");
_Static_assert(sizeof(struct mpc_table) == 44, "MP config header");
_Static_assert(sizeof(struct mpc_cpu) == 20, "MP processor entry");

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };

#define CPU_ENABLED 1
#define CPU_BOOTPROCESSOR 2
#define APIC_VERSION 0x14
#define IOAPIC_VERSION 0x11
#define ISA_IRQS 16

size_t mptable_build(uint8_t *buf, size_t room, uint64_t base, unsigned cpus)
{
	const uint8_t ioapic_id = (uint8_t)cpus;	/* after the processors' APIC IDs */
	size_t entries = cpus + 1 + 1 + (ISA_IRQS - 1) + 2;
	size_t len = sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
		     cpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
		     sizeof(struct mpc_ioapic) + (ISA_IRQS - 1 + 2) * sizeof(struct mpc_intsrc);
	struct mpf_intel *mpf = (struct mpf_intel *)buf;
	struct mpc_table *mpc = (struct mpc_table *)(mpf + 1);
	uint8_t *p = (uint8_t *)(mpc + 1);

	if (len > room)
		return 0;
	memset(buf, 0, len);

	for (unsigned i = 0; i < cpus; i++) {
		struct mpc_cpu c = {
			.type = MP_PROCESSOR, .apicid = (uint8_t)i, .apicver = APIC_VERSION,
			.cpuflag = CPU_ENABLED | (i == 0 ? CPU_BOOTPROCESSOR : 0),
			.cpufeature = 0x600,	/* family 6: what SeaBIOS and QEMU report */
			.featureflag = 0x201,	/* FPU, APIC */
		};
		memcpy(p, &c, sizeof(c));
		p += sizeof(c);
	}
	struct mpc_bus bus = { .type = MP_BUS, .busid = 0, .bustype = "ISA   " };
	memcpy(p, &bus, sizeof(bus));
	p += sizeof(bus);
	struct mpc_ioapic io = {
		.type = MP_IOAPIC, .apicid = ioapic_id, .apicver = IOAPIC_VERSION,
		.flags = 1, .apicaddr = IOAPIC_ADDR,
	};
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);
	/* ISA IRQ n on IOAPIC pin n, except the timer (IRQ 0) on pin 2. */
	for (uint8_t irq = 0; irq < ISA_IRQS; irq++) {
		if (irq == 2)
			continue;
		struct mpc_intsrc s = {
			.type = MP_INTSRC, .irqtype = MP_INT, .srcbus = 0, .srcbusirq = irq,
			.dstapic = ioapic_id, .dstirq = irq == 0 ? 2 : irq,
		};
		memcpy(p, &s, sizeof(s));
		p += sizeof(s);
	}
	/* LINT0 takes the 8259's ExtINT, LINT1 is NMI, on every processor (0xff). */
	struct mpc_intsrc lint[2] = {
		{ .type = MP_LINTSRC, .irqtype = MP_EXTINT, .dstapic = 0xff, .dstirq = 0 },
		{ .type = MP_LINTSRC, .irqtype = MP_NMI, .dstapic = 0xff, .dstirq = 1 },
	};
	memcpy(p, lint, sizeof(lint));

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)(len - sizeof(*mpf));
	mpc->spec = 4;
	memcpy(mpc->oem, "KESTREL ", 8);
	memcpy(mpc->product, "KESTREL-PC  ", 12);
	mpc->count = (uint16_t)entries;
	mpc->lapic = LAPIC_ADDR;
	mpc->checksum = (uint8_t)-acpi_sum(mpc, mpc->length);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(base + sizeof(*mpf));
	mpf->length = 1;
	mpf->specification = 4;
	mpf->checksum = (uint8_t)-acpi_sum(mpf, sizeof(*mpf));
	return len;
}

int mptable_install(const struct guest_memory *mem, unsigned cpus)
{
	uint8_t *buf = memory_ptr(mem, MPTABLE_ADDR, MPTABLE_SIZE);

	if (!buf || mptable_build(buf, MPTABLE_SIZE, MPTABLE_ADDR, cpus) == 0)
		return -1;
	return 0;
}
