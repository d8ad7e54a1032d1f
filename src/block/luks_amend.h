/*
 * Keyslot management of a LUKS1 header wherever it lives: a luks image (at
 * offset 0) or a qcow2 image's crypto header extension.  The options are
 * QEMU's QCryptoBlockAmendOptionsLUKS: state, keyslot, old-secret,
 * new-secret, iter-time.
 */
#ifndef KESTREL_BLOCK_LUKS_AMEND_H
#define KESTREL_BLOCK_LUKS_AMEND_H

#include "block/block_int.h"
#include "block/crypto/luks.h"

struct luks_keyslots {
	struct luks_header *h;		/* updated in place as the header is written */
	const uint8_t *key;		/* the volume's master key (the volume is unlocked) */
	luks_read_fn read;		/* header bytes, offsets from the header's start */
	luks_write_fn write;
	int (*flush)(void *opaque);
	void *opaque;
};

/* qemu-img amend's keyslot change, with QEMU 7.2's messages; -1 on error. */
int luks_amend_keyslots(struct luks_keyslots *v, const struct block_create_opts *o, char *err,
			size_t errlen);

#endif
