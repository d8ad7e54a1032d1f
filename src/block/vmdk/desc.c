/*
 * VMDK text descriptors (VMware Virtual Disk Format 1.1, "The Descriptor
 * File"): the CIDs, the parent hint and the extent lines, read as QEMU's
 * block/vmdk.c reads them, one line at a time.  Extent files are resolved
 * against the image's directory as QEMU does, and then refused unless they
 * are regular files inside that directory, each used once: a descriptor is
 * untrusted input, and one naming /etc/shadow or /dev/sda would hand a host
 * file to the guest.
 */
#include "block/vmdk/vmdk.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* QEMU's vmdk_parse_description: the quoted value after key=". */
int vmdk_desc_value(const char *desc, const char *key, char *buf, size_t len)
{
	const char *p = strstr(desc, key), *end = desc + strlen(desc), *q;

	if (!p)
		return -1;
	p += strlen(key) + 2;
	if (p >= end)
		return -1;
	for (q = p; q < end && *q != '"'; q++)
		;
	if (q == end || (size_t)(q - p) + 1 > len)
		return -1;
	memcpy(buf, p, (size_t)(q - p));
	buf[q - p] = '\0';
	return 0;
}

/* "CID=" / "parentCID=" as QEMU's vmdk_read_cid finds them (strstr, then hex). */
static int read_cid(const char *desc, const char *key, uint32_t *cid)
{
	const char *p = strstr(desc, key);
	unsigned int v;

	if (!p || sscanf(p + strlen(key) + 1, "%x", &v) != 1)
		return -1;
	*cid = v;
	return 0;
}

int vmdk_read_cids(struct block_dev *bd, struct vmdk_state *s, char *err, size_t errlen)
{
	char *desc = calloc(1, VMDK_DESC_SIZE + 1), *p;
	int ret;

	if (!desc)
		return block_err(err, errlen, "out of memory");
	ret = bfile_pread(bd, s->desc_off, desc, VMDK_DESC_SIZE);
	if (ret < 0) {
		free(desc);
		return block_err(err, errlen, "Could not read the descriptor: %s", strerror(-ret));
	}
	desc[VMDK_DESC_SIZE] = '\0';
	if (read_cid(desc, "CID", &s->cid) < 0 || read_cid(desc, "parentCID", &s->parent_cid) < 0) {
		free(desc);
		/* QEMU's words (vmdk_open fails with -EINVAL and no message of its own). */
		return block_err(err, errlen, "Could not open '%s': %s", bd->filename,
				 strerror(EINVAL));
	}
	p = strstr(desc, "parentFileNameHint");
	if (p) {
		char *q;
		p += sizeof("parentFileNameHint");	/* and the '=' and '"' */
		q = strchr(p + 1, '"');
		if (!q || (size_t)(q - p - 1) >= sizeof(s->parent_hint)) {
			free(desc);
			return block_err(err, errlen, "Could not open '%s': %s", bd->filename,
					 strerror(EINVAL));
		}
		memcpy(s->parent_hint, p + 1, (size_t)(q - p - 1));
		s->parent_hint[q - p - 1] = '\0';
	}
	free(desc);
	return 0;
}

/*
 * Rewrites CID= in place as QEMU's vmdk_write_cid does (the text after it
 * from parentCID on kept), so an image that changed no longer matches the
 * parentCID its children recorded.
 */
int vmdk_write_cid(struct block_dev *bd, struct vmdk_state *s, uint32_t cid)
{
	size_t room = s->desc_len ? s->desc_len : VMDK_DESC_SIZE;
	char *desc = calloc(1, room + 1), *out = calloc(1, room + 1), *pc, *c;
	int ret = -ENOMEM;

	if (!desc || !out)
		goto done;
	ret = bfile_pread(bd, s->desc_off, desc, room);
	if (ret < 0)
		goto done;
	ret = -EINVAL;
	pc = strstr(desc, "parentCID");
	c = strstr(desc, "CID");
	if (!pc || !c)
		goto done;
	c += 4;
	if (c > pc)
		goto done;
	snprintf(out, room + 1, "%.*s%" PRIx32 "\n%s", (int)(c - desc), desc, cid, pc);
	if (s->desc_len) {
		ret = bfile_pwrite(bd, s->desc_off, out, room);
	} else {
		size_t n = strlen(out);
		ret = bfile_pwrite(bd, 0, out, n);
		block_crash_point();
		if (ret == 0 && ftruncate(bd->fd, (off_t)n) < 0)
			ret = -errno;
	}
	if (ret == 0)
		s->cid = cid;
done:
	free(desc);
	free(out);
	return ret;
}

/* The directory the image lies in, resolved (symlinks and ".." gone). */
static char *image_dir(const char *image)
{
	char *copy = strdup(image), *slash, *real;

	if (!copy)
		return NULL;
	slash = strrchr(copy, '/');
	if (slash)
		slash[1] = '\0';
	real = realpath(slash ? copy : ".", NULL);
	free(copy);
	return real;
}

/*
 * The extent file fname names, checked: inside the image's directory, a
 * regular file, and neither the image nor an extent already opened.
 */
static int extent_check(struct block_dev *bd, struct vmdk_state *s, const char *name,
			const char *path, struct stat *st, char *err, size_t errlen)
{
	char *dir = image_dir(bd->filename), *real = realpath(path, NULL);
	size_t dl;
	int ret = -1;

	if (!dir) {
		block_err(err, errlen, "Cannot use relative paths with VMDK descriptor file '%s': %s",
			  bd->filename, strerror(errno));
		goto out;
	}
	if (!real) {
		block_err(err, errlen, "Could not open '%s': %s", path, strerror(errno));
		goto out;
	}
	dl = strlen(dir);
	if (strncmp(real, dir, dl) || (real[dl] != '/' && strcmp(dir, "/"))) {
		block_err(err, errlen, "VMDK extent '%s' lies outside the image's directory '%s': "
			  "refused", name, dir);
		goto out;
	}
	if (stat(real, st) < 0) {
		block_err(err, errlen, "Could not open '%s': %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st->st_mode)) {
		block_err(err, errlen, "VMDK extent '%s' is not a regular file: refused", name);
		goto out;
	}
	if (st->st_dev == bd->st_dev && st->st_ino == bd->st_ino) {
		block_err(err, errlen, "VMDK extent '%s' is the descriptor itself: refused", name);
		goto out;
	}
	for (int i = 0; i < s->n_nest; i++) {
		if (s->nest[i]->st_dev == st->st_dev && s->nest[i]->st_ino == st->st_ino) {
			block_err(err, errlen, "VMDK extent '%s' contains the descriptor naming it "
				  "(extent loop): refused", name);
			goto out;
		}
	}
	for (int i = 0; i < s->n; i++) {
		if (s->ext[i].file->st_dev == st->st_dev && s->ext[i].file->st_ino == st->st_ino) {
			block_err(err, errlen, "VMDK extent '%s' is used twice (extent loop): refused",
				  name);
			goto out;
		}
	}
	ret = 0;
out:
	free(dir);
	free(real);
	return ret;
}

/* Opens a checked extent file as a raw node, verifying it is still the file checked. */
static int extent_open(struct block_dev *bd, struct vmdk_state *s, const char *fname,
		       struct block_dev **out, char *err, size_t errlen)
{
	unsigned flags = (bd->flags & (BLOCK_RDONLY | BLOCK_NOCACHE | BLOCK_DSYNC |
				       BLOCK_NO_LOCK)) | BLOCK_UNSAFE_PROBE;
	char *path = block_backing_path(bd->filename, fname);
	char msg[1024];
	struct stat st;
	int ret;

	if (!path)
		return block_err(err, errlen, "out of memory");
	if (block_name_is_special(fname) || extent_check(bd, s, fname, path, &st, err, errlen) < 0) {
		if (block_name_is_special(fname))
			block_err(err, errlen, "VMDK extent '%s' is not a file name: refused", fname);
		free(path);
		return -1;
	}
	ret = block_open_file(path, "raw", flags, NULL, out, msg, sizeof(msg));
	if (ret < 0) {
		free(path);
		return block_err(err, errlen, "%s", msg);
	}
	if ((*out)->st_dev != st.st_dev || (*out)->st_ino != st.st_ino) {
		block_close(*out);
		*out = NULL;
		ret = block_err(err, errlen, "VMDK extent '%s' changed while it was opened", path);
	}
	free(path);
	return ret;
}

static int add_flat(struct vmdk_state *s, struct block_dev *f, const char *type,
		    uint64_t sectors, uint64_t off_sectors, char *err, size_t errlen)
{
	struct vmdk_extent *e = &s->ext[s->n];
	uint64_t start = s->n ? s->ext[s->n - 1].start + s->ext[s->n - 1].sectors * VMDK_SECTOR : 0;

	memset(e, 0, sizeof(*e));
	if (off_sectors > (UINT64_MAX >> 10))
		return block_err(err, errlen, "Invalid extent offset %" PRIu64, off_sectors);
	e->file = f;
	e->owned = true;
	e->kind = VMDK_FLAT;
	snprintf(e->type, sizeof(e->type), "%s", type);
	e->start = start;
	e->sectors = sectors;
	e->flat_off = off_sectors * VMDK_SECTOR;
	s->n++;
	return 0;
}

/* One extent line of the descriptor (QEMU's vmdk_parse_extents). */
static int parse_line(struct block_dev *bd, struct vmdk_state *s, const char *line, int depth,
		      char *err, size_t errlen)
{
	char access[11], type[11], fname[512];
	int64_t sectors = 0, off = -1;
	struct block_dev *f = NULL;
	int m = sscanf(line, "%10s %" SCNd64 " %10s \"%511[^\n\r\"]\" %" SCNd64, access, &sectors,
		       type, fname, &off);

	/* Lines QEMU skips: comments, keys, non-RW access and types it lacks. */
	if (m < 4 || strcmp(access, "RW"))
		return 0;
	if (!strcmp(type, "FLAT")) {
		if (m != 5 || off < 0)
			return block_err(err, errlen, "Invalid extent line: %s", line);
	} else if (!strcmp(type, "VMFS")) {
		if (m != 4)
			return block_err(err, errlen, "Invalid extent line: %s", line);
		off = 0;
	} else if (m != 4) {
		return block_err(err, errlen, "Invalid extent line: %s", line);
	}
	if (sectors <= 0 || (strcmp(type, "FLAT") && strcmp(type, "SPARSE") && strcmp(type, "VMFS") &&
			     strcmp(type, "VMFSSPARSE") && strcmp(type, "SESPARSE")))
		return 0;
	if (!strcmp(type, "SESPARSE"))
		return block_err(err, errlen, "Unsupported extent type '%s'", type);
	if ((uint64_t)sectors > (1ULL << 54))
		return block_err(err, errlen, "Invalid extent size %" PRId64 " sectors", sectors);
	if (s->n >= VMDK_MAX_EXTENTS)
		return block_err(err, errlen, "Too many extents (at most %d)", VMDK_MAX_EXTENTS);
	if (extent_open(bd, s, fname, &f, err, errlen) < 0)
		return -1;
	if (!strcmp(type, "FLAT") || !strcmp(type, "VMFS")) {
		if (add_flat(s, f, type, (uint64_t)sectors, (uint64_t)off, err, errlen) < 0) {
			block_close(f);
			return -1;
		}
		return 0;
	}
	/* SPARSE/VMFSSPARSE: the file's own header says how large it is. */
	return vmdk_open_sparse(bd, s, f, true, type, depth, err, errlen);
}

int vmdk_open_desc(struct block_dev *bd, struct vmdk_state *s, const char *desc, int depth,
		   char *err, size_t errlen)
{
	char ct[64], line[1024];
	const char *p, *nl;

	if (depth > VMDK_MAX_NEST)
		return block_err(err, errlen, "VMDK descriptors nested too deep (extent loop?)");
	if (vmdk_desc_value(desc, "createType", ct, sizeof(ct)) < 0)
		return block_err(err, errlen, "invalid VMDK image descriptor");
	if (strcmp(ct, "monolithicFlat") && strcmp(ct, "vmfs") && strcmp(ct, "vmfsSparse") &&
	    strcmp(ct, "seSparse") && strcmp(ct, "twoGbMaxExtentSparse") &&
	    strcmp(ct, "twoGbMaxExtentFlat"))
		return block_err(err, errlen, "Unsupported image type '%s'", ct);
	snprintf(s->create_type, sizeof(s->create_type), "%s", ct);
	for (p = desc; *p; p = *nl ? nl + 1 : nl) {
		size_t n;
		nl = strchr(p, '\n');
		if (!nl)
			nl = p + strlen(p);
		n = (size_t)(nl - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (n >= sizeof(line))
			n = sizeof(line) - 1;
		memcpy(line, p, n);
		line[n] = '\0';
		if (parse_line(bd, s, line, depth, err, errlen) < 0)
			return -1;
	}
	return 0;
}
