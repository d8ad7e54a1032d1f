/*
 * blast IFNAME SECONDS SIZE: sends Ethernet frames of SIZE bytes (type
 * 0x88b5, broadcast) out of IFNAME through an AF_PACKET socket for SECONDS,
 * in batches of 64 with sendmmsg, as fast as the kernel takes them.  On a TAP
 * each frame goes to the VMM that holds the TAP; frames the TAP queue cannot
 * hold are dropped by the kernel, so the queue stays full and the guest's
 * count is what the VMM can deliver.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

int main(int argc, char **argv)
{
	static unsigned char frames[BATCH][1514];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	struct timespec t0, t1;
	long size, sent = 0;
	double seconds, s = 0;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: %s IFNAME SECONDS SIZE\n", argv[0]);
		return 2;
	}
	seconds = atof(argv[2]);
	size = atol(argv[3]);
	if (size < 60 || size > 1514 || seconds <= 0) {
		fprintf(stderr, "blast: SIZE must be 60..1514, SECONDS positive\n");
		return 2;
	}
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	sll.sll_ifindex = (int)if_nametoindex(argv[1]);
	if (fd < 0 || !sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		fprintf(stderr, "blast: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		memset(frames[i], 0xff, 6);
		memcpy(frames[i] + 6, "\x02\x00\x00\x00\x00\x01", 6);
		frames[i][12] = 0x88;
		frames[i][13] = 0xb5;
		for (long k = 14; k < size; k++)
			frames[i][k] = (unsigned char)k;
		iov[i] = (struct iovec){ frames[i], (size_t)size };
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (s < seconds) {
		int r = sendmmsg(fd, msgs, BATCH, 0);
		if (r < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)
				continue;
			fprintf(stderr, "blast: sendmmsg: %s\n", strerror(errno));
			return 1;
		}
		sent += r;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	}
	printf("blast: sent %ld frames of %ld bytes in %.3f s (%.0f pps)\n", sent, size, s,
	       sent / s);
	return 0;
}
