/*
 * Image format probing: one table of every format qemu-img 7.2 recognises by
 * its first sector (and dmg by its file name), shared by kestrel and
 * kestrel-img.  Opening uses it to pick a driver or to refuse, by name, a
 * format Kestrel cannot open; writes to block 0 of a probed raw image use it
 * to refuse content that would probe as anything but raw next time.
 */
#ifndef KESTREL_BLOCK_PROBE_H
#define KESTREL_BLOCK_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* QEMU's BLOCK_PROBE_BUF_SIZE: probers see the first 512 bytes, zero-padded. */
#define BLOCK_PROBE_SIZE	512

/*
 * The format the first bytes of an image (and its file name, which may be
 * NULL) make the surest probe, as bdrv_probe_all picks it: "qcow2", "vmdk",
 * ..., or "raw" when no magic matches.  Only the first BLOCK_PROBE_SIZE
 * bytes count; a shorter buffer is read as if padded with zeroes.
 */
const char *block_probe_format(const uint8_t *buf, size_t len, const char *filename);

/*
 * Whether qemu-img 7.2 knows name as a driver, so that Kestrel can refuse a
 * format it does not implement ("-f bochs") by name instead of calling it
 * unknown; and whether QEMU could create an image of that format.
 */
bool block_format_known(const char *name);
bool block_format_creatable(const char *name);

#endif
