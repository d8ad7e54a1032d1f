/*
 * The probing table.  Each prober is the .bdrv_probe of the QEMU 7.2 driver
 * of that name (block/<name>.c, luks: block/crypto.c and crypto/block-luks.c),
 * with the same score, so Kestrel and qemu-img name the same format for the
 * same file.  Every score is above raw's 1: any match wins over raw.
 */
#include "block/probe.h"

#include <stdbool.h>
#include <string.h>

static uint32_t le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* qcow2 spec "Header": magic QFI\xfb, then the version; version 1 is the old qcow. */
static int probe_qcow2(const uint8_t *buf, const char *filename)
{
	return !memcmp(buf, "QFI\xfb", 4) && be32_at(buf + 4) >= 2 ? 100 : 0;
}

static int probe_qcow(const uint8_t *buf, const char *filename)
{
	return !memcmp(buf, "QFI\xfb", 4) && be32_at(buf + 4) == 1 ? 100 : 0;
}

/* QED spec: the little-endian magic 'Q' 'E' 'D' 0. */
static int probe_qed(const uint8_t *buf, const char *filename)
{
	return !memcmp(buf, "QED", 4) ? 100 : 0;
}

/* A descriptor line "version=N" ending in LF or CR LF, N in 1..3. */
static bool vmdk_version_line(const uint8_t *p, size_t left)
{
	if (left < 10 || memcmp(p, "version=", 8) || p[8] < '1' || p[8] > '3')
		return false;
	if (p[9] == '\n')
		return true;
	return left >= 11 && p[9] == '\r' && p[10] == '\n';
}

/*
 * VMware's sparse extents start with "KDMV" (VMDK4) or "COWD" (VMDK3); a text
 * descriptor is recognised by its "version=" line after any comment lines and
 * lines of spaces — vmdk_probe reads nothing else, so a descriptor naming a
 * host file ("RW 8 FLAT "/etc/hostname" 0") probes as vmdk with that line.
 */
static int probe_vmdk(const uint8_t *buf, const char *filename)
{
	size_t i = 0, len = BLOCK_PROBE_SIZE;

	if (!memcmp(buf, "KDMV", 4) || !memcmp(buf, "COWD", 4))
		return 100;
	while (i < len) {
		if (buf[i] == '#') {
			while (i < len && buf[i] != '\n')
				i++;
			i++;
			continue;
		}
		if (buf[i] == ' ') {
			while (i < len && buf[i] == ' ')
				i++;
			if (i < len && buf[i] == '\r')
				i++;
			if (i == len || buf[i] != '\n')
				return 0;
			i++;
			continue;
		}
		return vmdk_version_line(buf + i, len - i) ? 100 : 0;
	}
	return 0;
}

/* VirtualBox: the signature 0xbeda107f after the 64-byte text field. */
static int probe_vdi(const uint8_t *buf, const char *filename)
{
	return le32_at(buf + 64) == 0xbeda107f ? 100 : 0;
}

/* VHDX spec §2.2.1: the file type identifier "vhdxfile". */
static int probe_vhdx(const uint8_t *buf, const char *filename)
{
	return !memcmp(buf, "vhdxfile", 8) ? 100 : 0;
}

/* VHD spec: the footer's cookie "conectix", copied at offset 0 in dynamic disks. */
static int probe_vpc(const uint8_t *buf, const char *filename)
{
	return !memcmp(buf, "conectix", 8) ? 100 : 0;
}

/* Parallels: one of two 16-byte magics, then little-endian version 2. */
static int probe_parallels(const uint8_t *buf, const char *filename)
{
	if (memcmp(buf, "WithoutFreeSpace", 16) && memcmp(buf, "WithouFreSpacExt", 16))
		return 0;
	return le32_at(buf + 16) == 2 ? 100 : 0;
}

/* LUKS1 on-disk format §2.4: "LUKS\xba\xbe", big-endian version 1 (QEMU 7.2 probes no LUKS2). */
static int probe_luks(const uint8_t *buf, const char *filename)
{
	return !memcmp(buf, "LUKS\xba\xbe\x00\x01", 8) ? 100 : 0;
}

/* Bochs growing redolog: three NUL-terminated strings and version 1 or 2. */
static int probe_bochs(const uint8_t *buf, const char *filename)
{
	uint32_t version = le32_at(buf + 64);

	if (memcmp(buf, "Bochs Virtual HD Image", 23) || memcmp(buf + 32, "Redolog", 8) ||
	    memcmp(buf + 48, "Growing", 8))
		return 0;
	return version == 0x00020000 || version == 0x00010000 ? 100 : 0;
}

/* cloop V2.0: a shell script header that mounts itself. */
static int probe_cloop(const uint8_t *buf, const char *filename)
{
	static const char magic[] = "#!/bin/sh\n#V2.0 Format\n"
				    "modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

	return !memcmp(buf, magic, sizeof(magic) - 1) ? 2 : 0;
}

/* dmg keeps its header at the end of the file: QEMU goes by the ".dmg" suffix. */
static int probe_dmg(const uint8_t *buf, const char *filename)
{
	size_t n = filename ? strlen(filename) : 0;

	return n > 4 && !strcmp(filename + n - 4, ".dmg") ? 2 : 0;
}

static const struct {
	const char *name;
	int (*probe)(const uint8_t *buf, const char *filename);
} probers[] = {
	{ "qcow2", probe_qcow2 },
	{ "qcow", probe_qcow },
	{ "qed", probe_qed },
	{ "vmdk", probe_vmdk },
	{ "vdi", probe_vdi },
	{ "vhdx", probe_vhdx },
	{ "vpc", probe_vpc },
	{ "parallels", probe_parallels },
	{ "luks", probe_luks },
	{ "bochs", probe_bochs },
	{ "cloop", probe_cloop },
	{ "dmg", probe_dmg },
};

const char *block_probe_format(const uint8_t *buf, size_t len, const char *filename)
{
	uint8_t sector[BLOCK_PROBE_SIZE] = { 0 };
	const char *best = "raw";
	int best_score = 1;		/* raw_probe's: the fallback */

	memcpy(sector, buf, len < sizeof(sector) ? len : sizeof(sector));
	for (size_t i = 0; i < sizeof(probers) / sizeof(probers[0]); i++) {
		int score = probers[i].probe(sector, filename);
		if (score > best_score) {
			best_score = score;
			best = probers[i].name;
		}
	}
	return best;
}

/* qemu-img 7.2's "Supported formats" (its --help): names it knows, formats and protocols. */
static const char *const qemu_formats[] = {
	"blkdebug", "blklogwrites", "blkverify", "bochs", "cloop", "compress", "copy-before-write",
	"copy-on-read", "dmg", "file", "ftp", "ftps", "gluster", "host_cdrom", "host_device",
	"http", "https", "iscsi", "iser", "luks", "nbd", "nfs", "null-aio", "null-co", "nvme",
	"parallels", "preallocate", "qcow", "qcow2", "qed", "quorum", "raw", "rbd", "replication",
	"snapshot-access", "ssh", "throttle", "vdi", "vhdx", "vmdk", "vpc", "vvfat",
};

/* The image formats among them that QEMU can create (their drivers have create_opts). */
static const char *const qemu_creatable[] = {
	"luks", "parallels", "qcow", "qcow2", "qed", "raw", "vdi", "vhdx", "vmdk", "vpc",
};

static bool in_list(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], name))
			return true;
	return false;
}

bool block_format_known(const char *name)
{
	return in_list(qemu_formats, sizeof(qemu_formats) / sizeof(qemu_formats[0]), name);
}

bool block_format_creatable(const char *name)
{
	return in_list(qemu_creatable, sizeof(qemu_creatable) / sizeof(qemu_creatable[0]), name);
}
