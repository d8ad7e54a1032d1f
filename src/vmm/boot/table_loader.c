#include "vmm/boot/table_loader.h"

#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"

#define LOADER_FILESZ 56
#define LOADER_ALLOCATE 1
#define LOADER_ADD_POINTER 2
#define LOADER_ADD_CHECKSUM 3
#define ZONE_HIGH 1
#define ZONE_FSEG 2
#define TABLES_ROOM 0x10000
#define MAX_COMMANDS 32

#define RSDP_FILE "etc/acpi/rsdp"
#define TABLES_FILE "etc/acpi/tables"

/* One 128-byte command, SeaBIOS src/fw/romfile_loader.h. */
struct loader_entry {
	uint32_t command;
	union {
		struct {
			char file[LOADER_FILESZ];
			uint32_t align;
			uint8_t zone;
		} __attribute__((packed)) alloc;
		struct {
			char dest[LOADER_FILESZ];
			char src[LOADER_FILESZ];
			uint32_t offset;
			uint8_t size;
		} __attribute__((packed)) pointer;
		struct {
			char file[LOADER_FILESZ];
			uint32_t offset;
			uint32_t start;
			uint32_t length;
		} __attribute__((packed)) cksum;
		uint8_t pad[124];
	};
} __attribute__((packed));

_Static_assert(sizeof(struct loader_entry) == 128, "BIOS linker entries are 128 bytes");

struct script {
	struct loader_entry e[MAX_COMMANDS];
	unsigned n;
};

static struct loader_entry *next(struct script *s)
{
	if (s->n == MAX_COMMANDS)
		return NULL;
	memset(&s->e[s->n], 0, sizeof(s->e[0]));
	return &s->e[s->n++];
}

static int allocate(struct script *s, const char *file, uint32_t align, uint8_t zone)
{
	struct loader_entry *e = next(s);

	if (!e)
		return -1;
	e->command = LOADER_ALLOCATE;
	strncpy(e->alloc.file, file, LOADER_FILESZ - 1);
	e->alloc.align = align;
	e->alloc.zone = zone;
	return 0;
}

/* The size-byte field at offset in dest holds an offset into the tables blob. */
static int pointer(struct script *s, const char *dest, uint32_t offset, uint8_t size)
{
	struct loader_entry *e = next(s);

	if (!e)
		return -1;
	e->command = LOADER_ADD_POINTER;
	strncpy(e->pointer.dest, dest, LOADER_FILESZ - 1);
	strncpy(e->pointer.src, TABLES_FILE, LOADER_FILESZ - 1);
	e->pointer.offset = offset;
	e->pointer.size = size;
	return 0;
}

static int checksum(struct script *s, const char *file, uint32_t at, uint32_t start, uint32_t len)
{
	struct loader_entry *e = next(s);

	if (!e)
		return -1;
	e->command = LOADER_ADD_CHECKSUM;
	strncpy(e->cksum.file, file, LOADER_FILESZ - 1);
	e->cksum.offset = at;
	e->cksum.start = start;
	e->cksum.length = len;
	return 0;
}

/* A table header at off: within the blob and not running past it. */
static int table_ok(const uint8_t *buf, size_t len, uint32_t off)
{
	return off >= 36 && off <= len - 36 && ld_le32(buf + off + 4) <= len - off;
}

/*
 * The tables are built at base 0, so every pointer in them is an offset into
 * the blob; the script says which, and the firmware adds the blob's address.
 */
static int relocate_tables(struct script *s, const uint8_t *rsdp, const uint8_t *buf, size_t len)
{
	uint32_t rsdt = ld_le32(rsdp + 16), xsdt = ld_le32(rsdp + 24);

	if (!table_ok(buf, len, rsdt) || !table_ok(buf, len, xsdt))
		return -1;
	for (uint32_t i = 0; i < (ld_le32(buf + rsdt + 4) - 36) / 4; i++) {
		uint32_t entry = rsdt + 36 + 4 * i, table = ld_le32(buf + entry);
		if (!table_ok(buf, len, table) || pointer(s, TABLES_FILE, entry, 4) < 0)
			return -1;
		if (memcmp(buf + table, "FACP", 4) == 0) {
			/* ACPI 6.4 §5.2.9: FIRMWARE_CTRL, DSDT and X_DSDT point into the blob. */
			if (pointer(s, TABLES_FILE, table + 36, 4) < 0 ||
			    pointer(s, TABLES_FILE, table + 40, 4) < 0 ||
			    pointer(s, TABLES_FILE, table + 140, 8) < 0 ||
			    checksum(s, TABLES_FILE, table + 9, table, ld_le32(buf + table + 4)) < 0)
				return -1;
		}
	}
	for (uint32_t i = 0; i < (ld_le32(buf + xsdt + 4) - 36) / 8; i++)
		if (pointer(s, TABLES_FILE, xsdt + 36 + 8 * i, 8) < 0)
			return -1;
	if (checksum(s, TABLES_FILE, rsdt + 9, rsdt, ld_le32(buf + rsdt + 4)) < 0 ||
	    checksum(s, TABLES_FILE, xsdt + 9, xsdt, ld_le32(buf + xsdt + 4)) < 0)
		return -1;
	/* The RSDP (ACPI 6.4 §5.2.5.3): RSDT and XSDT addresses, then both checksums. */
	if (pointer(s, RSDP_FILE, 16, 4) < 0 || pointer(s, RSDP_FILE, 24, 8) < 0 ||
	    checksum(s, RSDP_FILE, 8, 0, 20) < 0 || checksum(s, RSDP_FILE, 32, 0, 36) < 0)
		return -1;
	return 0;
}

int table_loader_install(struct fw_cfg *fw, const struct acpi_config *cfg)
{
	struct script *s = calloc(1, sizeof(*s));
	uint8_t *buf = calloc(1, TABLES_ROOM);
	uint8_t rsdp[36];
	size_t len;
	int rc = -1;

	if (!s || !buf)
		goto out;
	len = acpi_build(buf, TABLES_ROOM, 0, cfg);
	if (len < sizeof(rsdp))
		goto out;
	memcpy(rsdp, buf, sizeof(rsdp));
	memset(buf, 0, sizeof(rsdp));	/* the blob's own RSDP slot stays unused */
	/* The RSDP goes where guests scan for it (0xe0000-0xfffff), the rest anywhere. */
	if (allocate(s, RSDP_FILE, 16, ZONE_FSEG) < 0 || allocate(s, TABLES_FILE, 64, ZONE_HIGH) < 0 ||
	    relocate_tables(s, rsdp, buf, len) < 0)
		goto out;
	if (fw_cfg_add_file(fw, TABLES_FILE, buf, len) < 0 ||
	    fw_cfg_add_file(fw, RSDP_FILE, rsdp, sizeof(rsdp)) < 0 ||
	    fw_cfg_add_file(fw, "etc/table-loader", s->e, s->n * sizeof(s->e[0])) < 0)
		goto out;
	rc = 0;
out:
	free(s);
	free(buf);
	return rc;
}
