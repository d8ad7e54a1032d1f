/*
 * A scratch directory for one test executable: tmpdir_setup and
 * tmpdir_teardown are a cmocka group's setup and teardown (the directory
 * goes with everything in it), tmpdir_path names a file there.
 */
#ifndef KESTREL_TESTS_UNIT_TMPDIR_H
#define KESTREL_TESTS_UNIT_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

static char tmpdir[] = "/tmp/kestrel-unit-XXXXXX";

static inline int tmpdir_setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static inline int tmpdir_teardown(void **state)
{
	char cmd[64];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd);
}

/* tmpdir/name; the last four results stay valid, so a call may take several. */
static inline const char *tmpdir_path(const char *name)
{
	static char p[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", tmpdir, name);
	return p[i];
}

#endif
