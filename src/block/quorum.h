/*
 * quorum (QEMU's block/quorum.c): n-of-m voting over children that hold
 * the same disk.  The vote itself is here for the unit tests; the node is
 * in quorum.c (filter.h opens it).
 */
#ifndef KESTREL_BLOCK_QUORUM_H
#define KESTREL_BLOCK_QUORUM_H

#include <stddef.h>
#include <stdint.h>

/*
 * The vote over n children's reads of len bytes: rets[i] is child i's
 * result (0 or a negative errno), bufs[i] its data.  On success returns 0,
 * *winner is a child holding the winning data and bad[i] is set for each
 * child that read successfully but differs from it.  Otherwise returns the
 * errno QEMU's quorum returns: the most common error when fewer than
 * threshold reads succeeded, else -EIO when no version has threshold votes.
 * Ties go to the version QEMU picks: the one first seen last.
 */
int quorum_vote(const uint8_t *const *bufs, const int *rets, int n, size_t len, int threshold,
		int *winner, unsigned char *bad);

/* The error of n results with fewer than threshold successes, QEMU's quorum_vote_error. */
int quorum_vote_error(const int *rets, int n);

#endif
