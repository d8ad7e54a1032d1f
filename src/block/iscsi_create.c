/*
 * create on an iSCSI LUN.  The initiator cannot make a LUN, so QEMU 7.2
 * "creates" on one that exists (its iscsi driver has no create of its own;
 * block.c's bdrv_co_create_opts_simple): it opens the LUN, refuses a size
 * the LUN does not have ("Cannot grow iSCSI devices") and zeroes the first
 * sector, so an old format header there no longer probes.  A format over it
 * (qcow2, vdi, ...) then writes its image from offset 0.  Kestrel's formats
 * create through create_stage.c, which writes the image's holes as zeroes
 * on a LUN (its old bytes are not the image's) and refuses, before writing
 * anything, an image larger than the LUN (QEMU writes until it fails).
 */
#include "block/block_int.h"
#include "block/iscsi.h"

#include <stdlib.h>
#include <string.h>

#ifdef KESTREL_ISCSI

/* QEMU's bdrv_co_create_opts_simple: no preallocation under raw. */
static int iscsi_create_check(const char *name, const struct block_driver *drv,
			      const struct block_create_opts *o, char *err, size_t errlen)
{
	static const char *const modes[] = { "off", "metadata", "falloc", "full" };

	if (drv == &block_raw_driver && o->prealloc != BLOCK_PREALLOC_OFF)
		return block_err(err, errlen, "Unsupported preallocation mode '%s'",
				 modes[o->prealloc]);
	return block_create_refuse_prealloc(name, drv, o, err, errlen);
}

/* The LUN named by the URL, logged in; QEMU's words when it cannot be opened. */
static int iscsi_create_object(const char *name, uint64_t size,
			       const struct block_proto **proto, void **conn, char *err,
			       size_t errlen)
{
	struct block_iscsi_opts o;
	char *storage = NULL, why[512];
	int ret;

	(void)size;
	ret = block_iscsi_parse_uri(name, &o, &storage, why, sizeof(why));
	if (ret == 0)
		ret = block_iscsi_connect(&o, proto, conn, why, sizeof(why));
	free(storage);
	if (ret < 0)
		return block_err(err, errlen, "Protocol driver 'iscsi' does not support image "
				 "creation, and opening the image failed: %s", why);
	return 0;
}

/* raw: the LUN must have size bytes; its first sector is zeroed (create_file_fallback_*). */
static int iscsi_create_raw(const char *name, const struct block_create_opts *o, char *err,
			    size_t errlen)
{
	const struct block_proto *proto;
	void *conn;
	int64_t have;
	int ret;

	if (iscsi_create_object(name, o->size, &proto, &conn, err, errlen) < 0)
		return -1;
	have = proto->size(conn);
	if (have < 0 || (uint64_t)have < o->size) {
		ret = block_err(err, errlen, "Cannot grow iSCSI devices");
	} else {
		ret = proto->zero(conn, 0, have < 512 ? (uint64_t)have : 512, true);
		if (ret == 0)
			ret = proto->flush(conn);
		if (ret < 0)
			ret = block_err(err, errlen, "Failed to clear the new image's first "
					"sector: %s", strerror(-ret));
	}
	proto->close(conn);
	return ret;
}

/* A format that wrote a second file (vmdk's extents): QEMU would open it as a LUN. */
static int iscsi_several_files(const char *name, const struct block_driver *drv, char *err,
			       size_t errlen)
{
	(void)name;
	(void)drv;
	return block_err(err, errlen, "Kestrel creates only single-file images on a LUN: the "
			 "format asked for a second file");
}

const struct block_remote_creator block_iscsi_creator = {
	.check = iscsi_create_check,
	.create_raw = iscsi_create_raw,
	.create = iscsi_create_object,
	.several_files = iscsi_several_files,
	.fixed_size = true,
};

#else

/* block_remote_creator hands it out only where iscsi is built in. */
const struct block_remote_creator block_iscsi_creator;

#endif
