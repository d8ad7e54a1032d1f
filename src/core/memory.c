#include "core/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/magic.h>
#include <linux/memfd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23	/* Linux 5.14 */
#endif
#define MPOL_MF_STRICT (1 << 0)
#define MPOL_MF_MOVE (1 << 1)
#define THP_SIZE (2 * MIB)	/* x86-64 PMD: the alignment a huge page needs */
#define PAGE_4K 4096ULL

void memory_layout(struct guest_memory *mem, uint64_t ram_size)
{
	uint64_t low = ram_size >= MEMORY_LOWMEM_SPLIT ? MEMORY_LOWMEM_LIMIT : ram_size;

	memset(mem, 0, sizeof(*mem));
	mem->ram_size = ram_size;
	mem->regions[0] = (struct memory_region){ .gpa = 0, .size = low };
	mem->nr_regions = 1;
	if (ram_size > low) {
		mem->regions[1] = (struct memory_region){
			.gpa = MEMORY_HIGHMEM_BASE,
			.size = ram_size - low,
		};
		mem->nr_regions = 2;
	}
}

/* The host's default huge page size ("Hugepagesize:" in /proc/meminfo). */
static uint64_t default_hugepage_size(void)
{
	char line[128];
	unsigned long long kib = 2048;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return THP_SIZE;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return kib * 1024;
}

static uint64_t backing_page_size(const struct memory_backing *b)
{
	struct statfs sfs;

	if (b->kind == MEMORY_MEMFD && b->hugetlb)
		return b->hugetlbsize ? b->hugetlbsize : default_hugepage_size();
	if (b->kind == MEMORY_FILE && statfs(b->path, &sfs) == 0 &&
	    (unsigned long)sfs.f_type == HUGETLBFS_MAGIC)
		return (uint64_t)sfs.f_bsize;
	return PAGE_4K;
}

/* A file in path, or a temporary one when path is a directory (QEMU's -mem-path). */
static int open_backing_file(const char *path)
{
	struct stat st;
	char tmpl[PATH_MAX];
	int fd;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (snprintf(tmpl, sizeof(tmpl), "%s/kestrel_back_mem.XXXXXX", path) >=
		    (int)sizeof(tmpl)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = mkostemp(tmpl, O_CLOEXEC);
		if (fd >= 0)
			unlink(tmpl);	/* gone when we are */
		return fd;
	}
	return open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
}

static int open_memfd(const struct memory_backing *b, uint64_t page_size)
{
	unsigned flags = MFD_CLOEXEC;

	if (b->hugetlb)
		flags |= MFD_HUGETLB | ((unsigned)__builtin_ctzll(page_size) << MFD_HUGE_SHIFT);
	return (int)syscall(SYS_memfd_create, "kestrel-ram", flags);
}

static int bind_nodes(void *addr, uint64_t len, const struct memory_backing *b)
{
	unsigned long mask = (unsigned long)b->host_nodes;
	unsigned long maxnode = b->host_nodes ? 64 - (unsigned long)__builtin_clzll(b->host_nodes) : 0;

	if (b->policy == MEMORY_POLICY_DEFAULT && !b->host_nodes)
		return 0;
	/* maxnode counts one past the highest bit the kernel reads. */
	if (syscall(SYS_mbind, addr, len, (int)b->policy, b->host_nodes ? &mask : NULL,
		    maxnode + 1, MPOL_MF_STRICT | MPOL_MF_MOVE) < 0)
		return -1;
	return 0;
}

/* Faults every page in now (-mem-prealloc, prealloc=on), so a short host fails at start-up. */
static int prealloc(uint8_t *host, uint64_t size, uint64_t page_size)
{
	if (madvise(host, size, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno != EINVAL)
		return -1;
	for (uint64_t off = 0; off < size; off += page_size)
		*(volatile uint8_t *)(host + off) = *(volatile uint8_t *)(host + off);
	return 0;
}

static const char *backing_name(const struct memory_backing *b)
{
	switch (b->kind) {
	case MEMORY_FILE: return b->path;
	case MEMORY_MEMFD: return "memory-backend-memfd";
	default: return "memory-backend-ram";
	}
}

int memory_backing_check(const struct memory_backing *b)
{
	char dir[PATH_MAX], node[64];
	struct stat st;

	if (b->kind == MEMORY_FILE && stat(b->path, &st) != 0) {
		/* Not there yet: it is created, so its directory must exist. */
		const char *slash = strrchr(b->path, '/');
		size_t n = slash ? (size_t)(slash - b->path) : 0;
		snprintf(dir, sizeof(dir), "%.*s", (int)(n ? n : 1), slash ? b->path : ".");
		int rc = stat(dir, &st);
		if (rc != 0 || !S_ISDIR(st.st_mode)) {
			log_error("%s: cannot open the backing store: %s", b->path,
				  strerror(rc != 0 ? errno : ENOTDIR));
			return -1;
		}
	}
	for (unsigned n = 0; n < 64; n++) {
		if (!(b->host_nodes >> n & 1))
			continue;
		snprintf(node, sizeof(node), "/sys/devices/system/node/node%u", n);
		if (access(node, F_OK) != 0) {
			log_error("%s: host-nodes: host NUMA node %u does not exist", backing_name(b), n);
			return -1;
		}
	}
	return 0;
}

/* Maps one backend at host (inside the reserved area) and records it. */
static int map_block(struct guest_memory *mem, const struct memory_backing *b, uint8_t *host)
{
	struct memory_block *blk = &mem->blocks[mem->nr_blocks];
	uint64_t page = backing_page_size(b);
	bool hugetlb = page > PAGE_4K;
	int flags = MAP_FIXED | (b->share ? MAP_SHARED : MAP_PRIVATE);
	struct stat st;
	void *p;

	*blk = (struct memory_block){ .host = host, .size = b->size, .page_size = page, .fd = -1 };
	if (b->size % page) {
		log_error("%s: size %llu is not a multiple of the page size %llu", backing_name(b),
			  (unsigned long long)b->size, (unsigned long long)page);
		return -1;
	}
	if (b->kind == MEMORY_FILE)
		blk->fd = open_backing_file(b->path);
	else if (b->kind == MEMORY_MEMFD)
		blk->fd = open_memfd(b, page);
	if (b->kind != MEMORY_ANON) {
		if (blk->fd < 0 || fstat(blk->fd, &st) < 0 ||
		    ((uint64_t)st.st_size < b->size && ftruncate(blk->fd, (off_t)b->size) < 0)) {
			log_error("%s: cannot open the backing store: %s", backing_name(b),
				  strerror(errno));
			if (blk->fd >= 0)
				close(blk->fd);
			return -1;
		}
	} else {
		flags |= MAP_ANONYMOUS;
	}
	/* hugetlb pages are reserved at mmap time, so a short pool fails here, not in the guest. */
	if (!hugetlb)
		flags |= MAP_NORESERVE;
	p = mmap(host, b->size, PROT_READ | PROT_WRITE, flags, blk->fd, 0);
	if (p == MAP_FAILED) {
		log_error("%s: cannot map %llu MiB of guest RAM: %s", backing_name(b),
			  (unsigned long long)(b->size >> 20), strerror(errno));
		if (blk->fd >= 0)
			close(blk->fd);
		return -1;
	}
	mem->nr_blocks++;
	blk->punch = b->share || hugetlb;
	/* Transparent huge pages unless hugetlb already gives them; KSM where asked (QEMU's mem-merge). */
	if (!hugetlb)
		madvise(host, b->size, MADV_HUGEPAGE);
	if (b->merge && madvise(host, b->size, MADV_MERGEABLE) < 0)
		log_debug("MADV_MERGEABLE: %s", strerror(errno));
	if (!b->dump)
		madvise(host, b->size, MADV_DONTDUMP);
	if (bind_nodes(host, b->size, b) < 0) {
		log_error("%s: cannot bind memory to host-nodes: %s", backing_name(b),
			  strerror(errno));
		return -1;
	}
	if (b->prealloc && prealloc(host, b->size, page) < 0) {
		log_error("%s: cannot preallocate %llu MiB: %s", backing_name(b),
			  (unsigned long long)(b->size >> 20), strerror(errno));
		return -1;
	}
	return 0;
}

static int set_slot(int vm_fd, unsigned id, uint64_t gpa, uint64_t size, uint8_t *host)
{
	struct kvm_userspace_memory_region slot = {
		.slot = id,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};

	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
		log_error("KVM_SET_USER_MEMORY_REGION (slot %u): %s", id, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Low RAM is shown to KVM without 0xa0000-0xbffff: that window belongs to
 * the VGA (QEMU's pc machine maps "vga-lowmem" there, over RAM), so guest
 * accesses exit to its handler, or read all ones without a VGA.  The host
 * keeps the RAM behind it, so the region itself stays one piece for the
 * e820 map and the loaders, which never place anything there.
 */
static int set_slots(int vm_fd, unsigned i, const struct memory_region *r)
{
	if (r->gpa != 0 || r->size <= MEMORY_VGA_HOLE_END)
		return set_slot(vm_fd, i, r->gpa, r->size, r->host);
	if (set_slot(vm_fd, i, 0, MEMORY_VGA_HOLE_START, r->host) < 0)
		return -1;
	return set_slot(vm_fd, MEMORY_SLOT_ABOVE_VGA, MEMORY_VGA_HOLE_END,
			r->size - MEMORY_VGA_HOLE_END, r->host + MEMORY_VGA_HOLE_END);
}

int memory_init(struct guest_memory *mem, int vm_fd, uint64_t ram_size,
		const struct memory_backing *backends, unsigned nr, bool mem_lock)
{
	const struct memory_backing anon = {
		.kind = MEMORY_ANON, .size = ram_size, .merge = true, .dump = true,
	};
	uint64_t offset = 0, align = THP_SIZE, total = 0;
	uint8_t *area;

	memory_layout(mem, ram_size);
	if (nr == 0) {
		backends = &anon;
		nr = 1;
	}
	if (nr > MEMORY_MAX_BLOCKS) {
		log_error("too many memory backends (at most %d)", MEMORY_MAX_BLOCKS);
		return -1;
	}
	for (unsigned i = 0; i < nr; i++) {
		uint64_t page = backing_page_size(&backends[i]);
		if (page > align)
			align = page;
		total += backends[i].size;
	}
	if (total != ram_size) {
		log_error("memory backends hold %llu bytes, RAM is %llu", (unsigned long long)total,
			  (unsigned long long)ram_size);
		return -1;
	}
	/*
	 * Reserve the whole range aligned to a huge page, then map each backend
	 * over its part: guest and host addresses agree modulo 2 MiB, so THP
	 * (and KVM's large mappings) can use huge pages from guest address 0.
	 */
	mem->map_size = (size_t)((ram_size + align - 1) & ~(align - 1));
	area = mmap(NULL, mem->map_size + align, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (area == MAP_FAILED) {
		log_error("cannot reserve %llu MiB of guest RAM: %s",
			  (unsigned long long)(ram_size >> 20), strerror(errno));
		return -1;
	}
	mem->host = (uint8_t *)(((uintptr_t)area + align - 1) & ~(uintptr_t)(align - 1));
	if (mem->host > area)
		munmap(area, (size_t)(mem->host - area));
	munmap(mem->host + mem->map_size, (size_t)(area + align - mem->host));
	for (unsigned i = 0; i < nr; i++) {
		if (map_block(mem, &backends[i], mem->host + offset) < 0) {
			memory_destroy(mem);
			return -1;
		}
		offset += backends[i].size;
	}
	if (mem_lock && mlock(mem->host, ram_size) < 0) {
		log_error("-overcommit mem-lock=on: locking memory failed: %s", strerror(errno));
		memory_destroy(mem);
		return -1;
	}

	offset = 0;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct memory_region *r = &mem->regions[i];
		r->host = mem->host + offset;
		offset += r->size;
		if (set_slots(vm_fd, i, r) < 0) {
			memory_destroy(mem);
			return -1;
		}
	}
	return 0;
}

void memory_destroy(struct guest_memory *mem)
{
	if (mem->host)
		munmap(mem->host, mem->map_size);
	for (unsigned i = 0; i < mem->nr_blocks; i++)
		if (mem->blocks[i].fd >= 0)
			close(mem->blocks[i].fd);
	mem->nr_blocks = 0;
	mem->host = NULL;
}

void *memory_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct memory_region *r = &mem->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int memory_write(const struct guest_memory *mem, uint64_t gpa, const void *src, size_t len)
{
	void *dst = memory_ptr(mem, gpa, len);

	if (!dst)
		return -1;
	memcpy(dst, src, len);
	return 0;
}

int memory_discard_host(const struct guest_memory *mem, void *host, size_t len)
{
	uintptr_t start = (uintptr_t)host, end = start + len;
	const struct memory_block *blk = NULL;
	uint64_t page = PAGE_4K;

	for (unsigned i = 0; i < mem->nr_blocks; i++) {
		const struct memory_block *b = &mem->blocks[i];
		if (start >= (uintptr_t)b->host && end <= (uintptr_t)b->host + b->size) {
			blk = b;
			page = b->page_size;
		}
	}
	if (mem->nr_blocks && !blk)
		return -1;	/* crosses backends or is not RAM */
	/* Only whole host pages can go: a 4 KiB PFN inside a hugetlb page stays. */
	start = (start + page - 1) & ~(uintptr_t)(page - 1);
	end &= ~(uintptr_t)(page - 1);
	if (start >= end)
		return 0;
	return madvise((void *)start, end - start,
		       blk && blk->punch ? MADV_REMOVE : MADV_DONTNEED);
}

int memory_discard(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	void *host = memory_ptr(mem, gpa, len);

	if (!host)
		return -1;
	return memory_discard_host(mem, host, len);
}

uint64_t memory_page_size(const struct guest_memory *mem, uint64_t gpa)
{
	uint8_t *host = memory_ptr(mem, gpa, 1);

	if (!host)
		return 0;
	for (unsigned i = 0; i < mem->nr_blocks; i++)
		if (host >= mem->blocks[i].host && host < mem->blocks[i].host + mem->blocks[i].size)
			return mem->blocks[i].page_size;
	return PAGE_4K;
}
