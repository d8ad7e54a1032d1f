/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-balloon (virtio 1.2 §5.5) and the memory scenarios that drive it.
 *
 * The probe treats the largest RAM entry below 4 GiB (above its image) as
 * its memory: it touches every page, then lends pages from the top of it to
 * the balloon and reports free 2 MiB chunks from the bottom.  Queues are
 * numbered as QEMU and Linux number them: 0 inflate, 1 deflate, 2 stats,
 * 3 free page reporting (no FREE_PAGE_HINT queue is negotiated).
 */
#include "virtio.h"

#define BALLOON_F_STATS_VQ	1
#define BALLOON_F_DEFLATE_ON_OOM 2
#define BALLOON_F_REPORTING	5

#define CFG_NUM_PAGES		0
#define CFG_ACTUAL		4

#define PAGE			((uint64_t)4096)
#define CHUNK			((uint64_t)2 << 20)	/* reported free blocks: a pageblock, as Linux */
#define PFNS_PER_REQ		256		/* Linux's VIRTIO_BALLOON_ARRAY_PFNS_MAX */
#define CHUNKS_PER_REQ		32		/* Linux's PAGE_REPORTING_CAPACITY */
#define ACTUAL_EVERY		4096		/* pages between "actual" updates (16 MiB) */
#define PATTERN			((uint64_t)0x6b657374726c0000)	/* "kestrl" */

enum { Q_INFLATE, Q_DEFLATE, Q_STATS, Q_REPORT };

struct balloon_stat {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

/* The memory the scenario owns: [base, top) with [base, freed) reported and [top - lent, top) lent. */
struct pool {
	uint64_t base, top;
	uint64_t freed;		/* bytes from base reported free */
	uint64_t lent;		/* pages in the balloon */
};

struct balloon {
	struct virtio_dev vd;
	struct virtq vq[4];
	bool present, stats, reporting;
	uint32_t target, announced;	/* num_pages seen; actual written */
	uint64_t said;			/* lent when we last said "actual" */
	uint32_t stats_sent;
};

static uint32_t pfns[PFNS_PER_REQ] __attribute__((aligned(64)));
static struct balloon_stat stats_buf[10] __attribute__((aligned(64)));

static void touch(uint64_t from, uint64_t to)
{
	for (uint64_t a = from; a < to; a += PAGE)
		*(volatile uint64_t *)phys(a) = PATTERN ^ a;
}

static bool verify(uint64_t from, uint64_t to)
{
	for (uint64_t a = from; a < to; a += PAGE) {
		uint64_t got = *(volatile uint64_t *)phys(a);

		if (got != (PATTERN ^ a))
			return fail("balloon: 0x%lx reads 0x%lx, wrote 0x%lx", a, got, PATTERN ^ a);
	}
	return true;
}

/* The largest RAM entry below 4 GiB above the image, 2 MiB aligned at both ends. */
static bool pool_find(const struct platform *p, struct pool *pl)
{
	extern char _end[];
	uint64_t best = 0;

	for (uint32_t i = 0; i < p->memmap_entries; i++) {
		const struct hvm_memmap_entry *e = &p->memmap[i];
		uint64_t lo = e->addr, hi = e->addr + e->size;

		if (e->type != E820_RAM)
			continue;
		if (lo < (uint64_t)(uintptr_t)_end)
			lo = (uint64_t)(uintptr_t)_end;
		if (hi > ((uint64_t)1 << 32))
			hi = (uint64_t)1 << 32;
		lo = (lo + CHUNK - 1) & ~(CHUNK - 1);
		hi &= ~(CHUNK - 1);
		if (lo < hi && hi - lo > best) {
			best = hi - lo;
			pl->base = lo;
			pl->top = hi;
		}
	}
	pl->freed = pl->lent = 0;
	return best != 0;
}

static void actual_write(struct balloon *b, uint32_t pages)
{
	*(volatile uint32_t *)(b->vd.device + CFG_ACTUAL) = pages;
}

static bool stats_post(struct balloon *b, const struct pool *pl, const struct platform *p)
{
	static const uint16_t tags[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	uint64_t vals[10] = { 0 };
	struct vq_buf buf = { stats_buf, sizeof(stats_buf) };

	vals[4] = pl->freed;					/* free memory */
	vals[5] = p->ram_bytes;					/* total memory */
	vals[6] = pl->top - pl->base - pl->lent * PAGE;		/* available */
	for (int i = 0; i < 10; i++)
		stats_buf[i] = (struct balloon_stat){ tags[i], vals[i] };
	if (vq_add(&b->vq[Q_STATS], &buf, 1, 0) < 0)
		return fail("balloon: stats queue full");
	vq_kick(&b->vq[Q_STATS]);
	b->stats_sent++;
	return true;
}

static bool balloon_init(const struct platform *p, struct balloon *b, bool want_report)
{
	uint64_t want = 1ull << BALLOON_F_STATS_VQ | 1ull << BALLOON_F_DEFLATE_ON_OOM;

	if (want_report)
		want |= 1ull << BALLOON_F_REPORTING;
	if (!virtio_negotiate(&b->vd, want))
		return false;
	b->stats = virtio_has(&b->vd, BALLOON_F_STATS_VQ);
	b->reporting = virtio_has(&b->vd, BALLOON_F_REPORTING);
	if (!virtio_vq_init(&b->vd, &b->vq[Q_INFLATE], Q_INFLATE, 64) ||
	    !virtio_vq_init(&b->vd, &b->vq[Q_DEFLATE], Q_DEFLATE, 64) ||
	    (b->stats && !virtio_vq_init(&b->vd, &b->vq[Q_STATS], Q_STATS, 8)) ||
	    (b->reporting && !virtio_vq_init(&b->vd, &b->vq[Q_REPORT], Q_REPORT, 64)))
		return false;
	virtio_driver_ok(&b->vd);
	say("balloon: features 0x%lx%s%s%s", b->vd.features,
	    b->stats ? " stats" : "",
	    virtio_has(&b->vd, BALLOON_F_DEFLATE_ON_OOM) ? " deflate-on-oom" : "",
	    b->reporting ? " free-page-reporting" : "");
	return true;
}

/* Lends up to PFNS_PER_REQ pages from below the lent ones (§5.5.6.1). */
static bool inflate(struct balloon *b, struct pool *pl, uint32_t want)
{
	uint64_t room = (pl->top - pl->base - pl->freed) / PAGE - pl->lent;
	uint32_t n = want < PFNS_PER_REQ ? want : PFNS_PER_REQ, len;
	struct vq_buf buf = { pfns, 0 };

	if (n > room)
		n = (uint32_t)room;
	if (!n)
		return true;
	for (uint32_t i = 0; i < n; i++)
		pfns[i] = (uint32_t)((pl->top - (pl->lent + i + 1) * PAGE) / PAGE);
	buf.len = n * 4;
	if (!vq_xfer(&b->vq[Q_INFLATE], &buf, 1, 0, &len))
		return false;
	pl->lent += n;
	return true;
}

/* Takes pages back (§5.5.6.2) and writes them again, so the host must supply them. */
static bool deflate(struct balloon *b, struct pool *pl, uint32_t want)
{
	uint32_t n = want < PFNS_PER_REQ ? want : PFNS_PER_REQ, len;
	struct vq_buf buf = { pfns, n * 4 };
	uint64_t lo = pl->top - pl->lent * PAGE;

	for (uint32_t i = 0; i < n; i++)
		pfns[i] = (uint32_t)(lo / PAGE + i);
	if (!vq_xfer(&b->vq[Q_DEFLATE], &buf, 1, 0, &len))
		return false;
	pl->lent -= n;
	touch(lo, lo + (uint64_t)n * PAGE);
	return true;
}

/* Reports mib MiB above what is already free, in 2 MiB chunks (§5.5.6.7). */
static bool report_free(struct balloon *b, struct pool *pl, uint64_t mib)
{
	struct vq_buf bufs[CHUNKS_PER_REQ];
	uint64_t end = pl->freed + mib * ((uint64_t)1 << 20), limit = pl->top - pl->lent * PAGE - pl->base;
	uint32_t len, requests = 0;
	uint64_t from = pl->freed;

	if (!b->reporting)
		return fail("balloon: free page reporting was not negotiated");
	end &= ~(CHUNK - 1);
	if (end > (limit & ~(CHUNK - 1)))
		end = limit & ~(CHUNK - 1);
	while (pl->freed < end) {
		int n = 0;

		while (n < CHUNKS_PER_REQ && pl->freed < end) {
			bufs[n].addr = phys(pl->base + pl->freed);
			bufs[n].len = (uint32_t)CHUNK;
			n++;
			pl->freed += CHUNK;
		}
		if (!vq_xfer(&b->vq[Q_REPORT], bufs, 0, n, &len))
			return false;
		requests++;
	}
	say("balloon: reported %lu MiB free in %u requests", (pl->freed - from) >> 20, requests);
	return true;
}

/* One step toward the device's target; true while there is work. */
static bool follow_target(struct balloon *b, struct pool *pl, bool *ok)
{
	uint32_t target = virtio_cfg32(&b->vd, CFG_NUM_PAGES);
	uint64_t max = (pl->top - pl->base - pl->freed) / PAGE;

	if (target != b->target) {
		b->target = target;
		say("balloon: target %u pages", target);
	}
	if (target > max)
		target = (uint32_t)max;	/* all we can give */
	if (pl->lent < target) {
		*ok = inflate(b, pl, target - (uint32_t)pl->lent);
	} else if (pl->lent > target) {
		*ok = deflate(b, pl, (uint32_t)pl->lent - target);
	} else {
		if (b->announced != pl->lent) {
			actual_write(b, (uint32_t)pl->lent);
			b->announced = (uint32_t)pl->lent;
		}
		if (b->said != pl->lent) {
			b->said = pl->lent;
			say("balloon: actual %lu pages (%lu MiB)", pl->lent, pl->lent * PAGE >> 20);
		}
		return false;
	}
	/* "actual" moves as pages go, as Linux updates it per batch, but less often. */
	if (pl->lent / ACTUAL_EVERY != b->announced / ACTUAL_EVERY) {
		actual_write(b, (uint32_t)pl->lent);
		b->announced = (uint32_t)pl->lent;
	}
	return *ok;
}

static bool command(struct balloon *b, struct pool *pl, const char *line, bool *quit)
{
	uint64_t n = 0;
	const char *s;

	if (str_eq(line, "quit")) {
		*quit = true;
		return true;
	}
	if (str_eq(line, "touch")) {
		/* Free pages come back into use: the host must supply them again. */
		pl->freed = 0;
		touch(pl->base, pl->top - pl->lent * PAGE);
		say("balloon: touched %lu MiB", (pl->top - pl->base - pl->lent * PAGE) >> 20);
		return true;
	}
	if (str_eq(line, "verify")) {
		if (!verify(pl->base + pl->freed, pl->top - pl->lent * PAGE))
			return false;
		say("balloon: verified");
		return true;
	}
	if (line[0] == 'f' && line[1] == 'r' && line[2] == 'e' && line[3] == 'e' && line[4] == ' ') {
		for (s = line + 5; *s >= '0' && *s <= '9'; s++)
			n = n * 10 + (uint64_t)(*s - '0');
		if (!b->present)
			return fail("balloon: no balloon device to report to");
		return report_free(b, pl, n);
	}
	say("balloon: unknown command %s", line);
	return true;
}

/*
 * "balloon[,report=1]" (needs a virtio-balloon) and "mem-hold" (no device):
 * touch the pool, then follow the device's target and serial commands
 * (free N, touch, verify, quit) until quit or the ACPI power button.
 */
static bool run(const struct platform *p, const struct args *a, bool want_device)
{
	static struct balloon b;
	struct pool pl;
	char line[64];
	size_t n = 0;
	uint64_t report = 0;
	bool ok = true, quit = false;
	uint8_t c;

	if (!arg_u64(a, "report", &report))
		return fail("balloon: bad report=");
	if (!pool_find(p, &pl))
		return fail("balloon: no RAM entry of 2 MiB above the image");
	memset(&b, 0, sizeof(b));
	if (want_device) {
		if (!virtio_find(p, VIRTIO_ID_BALLOON, 0, &b.vd))
			return fail("balloon: no usable virtio-balloon device");
		if (!balloon_init(p, &b, report != 0))
			return false;
		b.present = true;
		if (b.stats && !stats_post(&b, &pl, p))
			return false;
	}
	touch(pl.base, pl.top);
	say("balloon: touched %lu MiB at 0x%lx", (pl.top - pl.base) >> 20, pl.base);
	platform_power_button_arm(p);
	say("balloon: ready");
	while (ok && !quit) {
		bool busy = false;

		if (platform_power_button_pressed(p))
			break;
		if (b.present) {
			uint32_t id, len;

			busy = follow_target(&b, &pl, &ok);
			if (b.stats && vq_poll(&b.vq[Q_STATS], &id, &len)) {
				ok = stats_post(&b, &pl, p);
				say("balloon: stats sent %u total %lu", b.stats_sent, p->ram_bytes);
			}
		}
		while (ok && serial_poll(&c)) {
			if (c != '\r' && c != '\n') {
				if (n < sizeof(line) - 1)
					line[n++] = (char)c;
				continue;
			}
			if (!n)
				continue;
			line[n] = 0;
			n = 0;
			ok = command(&b, &pl, line, &quit);
		}
		if (!busy)
			delay_tsc(tsc_hz() / 1000);	/* ~1 ms between looks at the target */
	}
	if (ok)
		say("balloon: done, %lu pages lent", pl.lent);
	return ok;
}

bool scenario_balloon(const struct platform *p, const struct args *a)
{
	return run(p, a, true);
}

bool scenario_mem_hold(const struct platform *p, const struct args *a)
{
	return run(p, a, false);
}
