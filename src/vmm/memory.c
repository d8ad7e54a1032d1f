#include "vmm/memory.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "util/log.h"

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

int memory_init(struct guest_memory *mem, int vm_fd, uint64_t ram_size)
{
	uint64_t offset = 0;

	memory_layout(mem, ram_size);
	/* Reserved, not touched: pages appear only when the guest uses them (overcommit). */
	mem->host = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem->host == MAP_FAILED) {
		log_error("cannot allocate %llu MiB of guest RAM: %s",
			  (unsigned long long)(ram_size >> 20), strerror(errno));
		mem->host = NULL;
		return -1;
	}
	/* Huge pages when the host has them; merging identical pages (KSM), as QEMU's default. */
	madvise(mem->host, ram_size, MADV_HUGEPAGE);
	madvise(mem->host, ram_size, MADV_MERGEABLE);

	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct memory_region *r = &mem->regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)(mem->host + offset),
		};
		r->host = mem->host + offset;
		offset += r->size;
		if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			log_error("KVM_SET_USER_MEMORY_REGION (slot %u): %s", i, strerror(errno));
			memory_destroy(mem);
			return -1;
		}
	}
	return 0;
}

void memory_destroy(struct guest_memory *mem)
{
	if (mem->host)
		munmap(mem->host, mem->ram_size);
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
