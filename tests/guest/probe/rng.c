/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-rng (virtio 1.2 §5.4): one queue of device-writable buffers that
 * come back holding up to their length of entropy.
 */
#include "virtio.h"

#define RNG_MAX		4096

static uint8_t rng_buf[RNG_MAX] __attribute__((aligned(64)));

/*
 * Scenario "rng,bytes=N" (default 64, at most 4096).  §5.4.6.1 lets the
 * device return fewer bytes than asked, so ask again for the rest, as
 * Linux does, for up to 10 s.  FAIL when N bytes never arrive or all of
 * them are zero.
 */
bool scenario_rng(const struct platform *p, const struct args *a)
{
	uint64_t n = 64, t0, limit = virtio_ticks(10);
	uint32_t got = 0, len, requests = 0;
	struct virtio_dev vd;
	struct virtq vq;
	bool zero = true;

	if (!arg_u64(a, "bytes", &n) || !n || n > RNG_MAX)
		return fail("rng: bad bytes=%s (1..%d)", arg_get(a, "bytes"), RNG_MAX);
	if (!virtio_find(p, VIRTIO_ID_RNG, 0, &vd))
		return fail("rng: no usable virtio-rng device");
	if (!virtio_negotiate(&vd, 0) || !virtio_vq_init(&vd, &vq, 0, 8))
		return false;
	virtio_driver_ok(&vd);

	memset(rng_buf, 0, sizeof(rng_buf));
	t0 = rdtsc();
	while (got < n && rdtsc() - t0 < limit) {
		struct vq_buf b = { rng_buf + got, (uint32_t)n - got };

		if (!vq_xfer(&vq, &b, 0, 1, &len))
			return false;
		requests++;
		if (len > b.len)
			return fail("rng: device wrote %u bytes into a %u-byte buffer",
				    len, b.len);
		got += len;
	}
	pr("probe: rng: ");
	for (uint32_t i = 0; i < got; i++) {
		pr("%02x", rng_buf[i]);
		zero &= !rng_buf[i];
	}
	serial_putc('\n');
	say("rng: %u bytes in %u requests", got, requests);
	virtio_reset(&vd);
	if (got < n)
		return fail("rng: device returned %u of %lu bytes", got, n);
	if (zero)
		return fail("rng: all %u bytes are zero", got);
	return true;
}
