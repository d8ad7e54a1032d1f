#include "vmm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/log.h"

const struct kvm_required_cap kvm_required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "user memory slots (KVM_CAP_USER_MEMORY)" },
	{ KVM_CAP_IRQCHIP, "an in-kernel interrupt controller (KVM_CAP_IRQCHIP)" },
	{ KVM_CAP_PIT2, "an in-kernel PIT (KVM_CAP_PIT2)" },
	{ KVM_CAP_EXT_CPUID, "CPUID configuration (KVM_CAP_EXT_CPUID)" },
	{ KVM_CAP_IMMEDIATE_EXIT, "immediate vCPU exit (KVM_CAP_IMMEDIATE_EXIT, Linux 4.11+)" },
	{ KVM_CAP_MP_STATE, "vCPU MP state control (KVM_CAP_MP_STATE)" },
};
const unsigned kvm_required_caps_count = sizeof(kvm_required_caps) / sizeof(kvm_required_caps[0]);

static struct kvm_cpuid2 *get_supported_cpuid(int fd)
{
	/* The kernel says E2BIG until the buffer is large enough. */
	for (unsigned nent = 64; nent <= 4096; nent *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = nent;
		if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

static int host_open(struct kvm_host *host, bool quiet)
{
	int version, ok = 1;

	memset(host, 0, sizeof(*host));
	host->fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (host->fd < 0 && quiet)
		return KVM_HOST_ABSENT;
	if (host->fd < 0) {
		if (errno == ENOENT)
			log_error("/dev/kvm does not exist: load the kvm module (kvm_intel, kvm_amd "
				  "or kvm_pvm) and enable virtualization in the firmware");
		else if (errno == EACCES || errno == EPERM)
			log_error("no permission to open /dev/kvm: run as root or join its group (kvm)");
		else
			log_error("cannot open /dev/kvm: %s", strerror(errno));
		return -1;
	}
	version = ioctl(host->fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		log_error("KVM API version is %d, Kestrel needs %d", version, KVM_API_VERSION);
		goto fail;
	}
	for (unsigned i = 0; i < kvm_required_caps_count; i++) {
		if (ioctl(host->fd, KVM_CHECK_EXTENSION, kvm_required_caps[i].cap) <= 0) {
			log_error("KVM lacks %s", kvm_required_caps[i].what);
			ok = 0;
		}
	}
	if (!ok)
		goto fail;
	host->run_size = ioctl(host->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (host->run_size < (int)sizeof(struct kvm_run)) {
		log_error("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		goto fail;
	}
	host->max_vcpus = ioctl(host->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (host->max_vcpus <= 0)
		host->max_vcpus = ioctl(host->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (host->max_vcpus <= 0)
		host->max_vcpus = 4;	/* api.rst: assume 4 when the capability is absent */
	host->cpuid = get_supported_cpuid(host->fd);
	if (!host->cpuid) {
		log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		goto fail;
	}
	return 0;
fail:
	close(host->fd);
	host->fd = -1;
	return -1;
}

int kvm_host_open(struct kvm_host *host)
{
	return host_open(host, false);
}

int kvm_host_try_open(struct kvm_host *host)
{
	return host_open(host, true);
}

void kvm_host_close(struct kvm_host *host)
{
	if (host->fd >= 0)
		close(host->fd);
	free(host->cpuid);
	host->fd = -1;
	host->cpuid = NULL;
}

bool kvm_host_is_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

bool kvm_host_has_hw_virt(void)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		found = strstr(line, " vmx") || strstr(line, " svm");
	}
	fclose(f);
	return found;
}
