/*
 * MAC addresses: parsing, the derived default, and the host-wide claim that
 * keeps two running VMs from sharing one (a classic source of flapping
 * bridges and lost ARP entries).
 */
#include "net/net.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool net_mac_parse(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2 ? (s[i] != ':' && s[i] != '-') : !isxdigit((unsigned char)s[i]))
			return false;
	}
	if (sscanf(s, "%2x%*c%2x%*c%2x%*c%2x%*c%2x%*c%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5], &tail) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return true;
}

void net_mac_format(const uint8_t mac[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

/* FNV-1a, 64 bits: stable across builds and hosts, which is all we need. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/*
 * 52:54:00 is the prefix QEMU and libvirt use (locally administered, unicast).
 * The last three bytes hash the VM's UUID, else its name, plus the NIC index;
 * a VM with neither gets QEMU's 52:54:00:12:34:56 (+ index), as QEMU does.
 */
void net_mac_derive(const char *name, const uint8_t *uuid, unsigned index, uint8_t mac[6])
{
	uint64_t h = 0xcbf29ce484222325ULL;

	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	if (!uuid && !name) {
		mac[3] = 0x12;
		mac[4] = 0x34;
		mac[5] = (uint8_t)(0x56 + index);
		return;
	}
	if (uuid)
		h = fnv1a(h, uuid, 16);
	else
		h = fnv1a(h, name, strlen(name));
	h = fnv1a(h, &index, sizeof(index));
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

static int mkdir_p(const char *dir)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/*
 * One file per MAC, write-locked with an open file description lock: the
 * kernel drops it when the process dies, so a crashed VM never leaves a stale
 * claim, and the file's text says who holds it.  Files are never unlinked:
 * unlinking a lock file races with a process that has just opened it.
 */
int net_mac_claim(const char *dir, const uint8_t mac[6], const char *vm_name, int *fd,
		  char *err, size_t errlen)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char path[320], text[128], owner[128] = "";
	char macs[18];
	int lfd, len;
	ssize_t got;

	*fd = -1;
	net_mac_format(mac, macs);
	if (mkdir_p(dir) < 0) {
		snprintf(err, errlen, "cannot create %s to record MAC addresses in use: %s", dir,
			 strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, macs);
	lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lfd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fcntl(lfd, F_OFD_SETLK, &fl) < 0) {
		if (errno != EAGAIN && errno != EACCES) {
			snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
			close(lfd);
			return -1;
		}
		got = pread(lfd, owner, sizeof(owner) - 1, 0);
		owner[got > 0 ? got : 0] = '\0';
		owner[strcspn(owner, "\n")] = '\0';
		snprintf(err, errlen, "MAC address %s is already in use by another running VM (%s); "
			 "give another macaddr=/mac= or dup=allow", macs,
			 owner[0] ? owner : "unknown kestrel process");
		close(lfd);
		return -1;
	}
	len = snprintf(text, sizeof(text), "pid %d, name %s\n", (int)getpid(),
		       vm_name ? vm_name : "(none)");
	if (ftruncate(lfd, 0) < 0 || pwrite(lfd, text, (size_t)len, 0) != len) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		close(lfd);
		return -1;
	}
	*fd = lfd;
	return 0;
}
