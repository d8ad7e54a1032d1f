/* ssh.c: disks that are files on SSH servers (libssh, SFTP; absent: "Unknown protocol"). */
#ifndef KESTREL_BLOCK_SSH_H
#define KESTREL_BLOCK_SSH_H

#include "block/block.h"

#include <stdbool.h>
#include <stddef.h>

enum block_ssh_check { BLOCK_SSH_CHECK_KNOWN_HOSTS, BLOCK_SSH_CHECK_NONE, BLOCK_SSH_CHECK_HASH };

/* QEMU's BlockdevOptionsSsh; the strings are the caller's. */
struct block_ssh_opts {
	const char *host, *port, *path, *user;
	enum block_ssh_check check;
	char hash_type[8];		/* md5, sha1 or sha256 */
	const char *hash;		/* hex, colons allowed */
};

bool block_ssh_protocol(const char *proto);
/* ssh://[user@]host[:port]/path[?host_key_check=...] into o; *storage to free after use. */
int block_ssh_parse_uri(const char *uri, struct block_ssh_opts *o, char **storage, char *err,
			size_t errlen);
/* host_key_check=no|yes|md5:X|sha1:X|sha256:X into o. */
int block_ssh_check_setting(const char *v, struct block_ssh_opts *o, char *err, size_t errlen);
/* The user name QEMU uses when none is given: the process's. */
const char *block_ssh_default_user(void);
/* Opens the file, with format (NULL: probe) over it; display names the node. */
int block_ssh_open(const char *display, const struct block_ssh_opts *o, const char *format,
		   unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		   size_t errlen);
bool block_ssh_available(void);

#endif
