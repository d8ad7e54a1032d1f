#include "vmm/hostcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/kvm.h"

enum verdict { PASS, WARN, FAIL, INFO };

static void report(FILE *out, const char *check, enum verdict v, const char *detail)
{
	static const char *const names[] = { "PASS", "WARN", "FAIL", "INFO" };

	fprintf(out, "KESTREL: Checking %-44s: %s", check, names[v]);
	if (detail && *detail)
		fprintf(out, " (%s)", detail);
	fputc('\n', out);
}

static bool read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	bool ok;

	if (!f)
		return false;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

static int check_kvm(FILE *out)
{
	char detail[160];
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int failures = 0;

	if (fd < 0) {
		snprintf(detail, sizeof(detail), "%s", strerror(errno));
		report(out, "if /dev/kvm exists and is accessible", FAIL, detail);
		return 1;
	}
	report(out, "if /dev/kvm exists and is accessible", PASS, NULL);
	int version = ioctl(fd, KVM_GET_API_VERSION, 0);
	snprintf(detail, sizeof(detail), "version %d", version);
	report(out, "the KVM API version", version == KVM_API_VERSION ? PASS : FAIL, detail);
	failures += version != KVM_API_VERSION;
	for (unsigned i = 0; i < kvm_required_caps_count; i++) {
		bool ok = ioctl(fd, KVM_CHECK_EXTENSION, kvm_required_caps[i].cap) > 0;
		char check[64];
		snprintf(check, sizeof(check), "KVM capability %d", kvm_required_caps[i].cap);
		report(out, check, ok ? PASS : FAIL, kvm_required_caps[i].what);
		failures += !ok;
	}
	close(fd);
	return failures;
}

/*
 * Which of the three hosts this is.  /dev/kvm decides first: a kernel may load
 * kvm_pvm and still not bind it (a PVM guest itself), leaving no /dev/kvm.
 */
enum host_kind hostcheck_kind(void)
{
	if (access("/dev/kvm", F_OK) != 0)
		return HOST_NO_KVM;
	if (kvm_host_has_hw_virt())
		return HOST_KVM_HW;
	return kvm_host_is_pvm() ? HOST_KVM_PVM : HOST_KVM_OTHER;
}

int hostcheck_run(FILE *out)
{
	char buf[256];
	bool hw = kvm_host_has_hw_virt();
	enum host_kind kind = hostcheck_kind();
	int failures = 0;

	report(out, "for hardware virtualization (vmx/svm)", hw ? PASS : WARN,
	       hw ? NULL : "not in /proc/cpuinfo");
	switch (kind) {
	case HOST_KVM_HW:
		report(out, "the KVM flavour", PASS, "hardware: guests run natively in every mode");
		break;
	case HOST_KVM_PVM:
		report(out, "the KVM flavour", INFO,
		       "PVM: no hardware virtualization; guest user mode (CPL3) runs natively, "
		       "guest kernel mode is emulated (~2M instructions/s), so Linux guests "
		       "reach only their early boot log");
		break;
	case HOST_KVM_OTHER:
		report(out, "the KVM flavour", WARN, "/dev/kvm without vmx/svm or kvm_pvm: unknown");
		break;
	case HOST_NO_KVM:
		report(out, "the KVM flavour", FAIL,
		       kvm_host_is_pvm() ? "no KVM: kvm_pvm is loaded but did not bind "
					   "(this kernel is itself a guest), so no /dev/kvm; "
					   "no guest can run here"
					 : "no KVM: no /dev/kvm; no guest can run here");
		break;
	}
	failures += check_kvm(out);

	if (read_line("/sys/kernel/mm/ksm/run", buf, sizeof(buf)))
		report(out, "for KSM (same-page merging)", strcmp(buf, "1") == 0 ? PASS : WARN,
		       strcmp(buf, "1") == 0 ? "running" :
		       "present but stopped: echo 1 > /sys/kernel/mm/ksm/run");
	else
		report(out, "for KSM (same-page merging)", WARN, "not built into this kernel");

	if (read_line("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf)))
		report(out, "for transparent huge pages", strstr(buf, "[never]") ? WARN : PASS, buf);
	else
		report(out, "for transparent huge pages", WARN, "not available");
	if (read_line("/proc/sys/vm/nr_hugepages", buf, sizeof(buf))) {
		char detail[320];
		snprintf(detail, sizeof(detail), "%s reserved for -mem-path", buf);
		report(out, "for hugetlbfs pages", strcmp(buf, "0") ? PASS : INFO, detail);
	}

	report(out, "for /dev/net/tun (TAP networking)",
	       access("/dev/net/tun", R_OK | W_OK) == 0 ? PASS : WARN,
	       access("/dev/net/tun", F_OK) == 0 ? NULL : "missing: modprobe tun");
	report(out, "for /dev/vhost-net (vhost=on)",
	       access("/dev/vhost-net", R_OK | W_OK) == 0 ? PASS : WARN,
	       access("/dev/vhost-net", F_OK) == 0 ? NULL : "missing: modprobe vhost_net");
	return failures ? 1 : 0;
}
