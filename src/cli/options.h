/* kestrel's command line: QEMU's option names, syntax and defaults. */
#ifndef KESTREL_CLI_OPTIONS_H
#define KESTREL_CLI_OPTIONS_H

#include <stdio.h>

#include "vmm/config.h"

enum options_result {
	OPTIONS_RUN,		/* cfg describes a VM to start */
	OPTIONS_DONE,		/* help or version was printed: exit 0 */
	OPTIONS_ERROR,		/* a message was printed: exit 1 */
};

/*
 * Parses argv into cfg (zeroed first).  Help and listings go to out; errors are
 * logged naming the option.  Free cfg->name with options_free.
 */
enum options_result options_parse(int argc, char **argv, struct vm_config *cfg, FILE *out);
void options_free(struct vm_config *cfg);

/* -name process=: renames this process (prctl PR_SET_NAME); 0 when not asked. */
int options_set_process_name(const struct vm_config *cfg);

/* -gdb's device: tcp:[HOST]:PORT, unix:PATH[,server], none; -1 with why otherwise. */
int options_gdb_check(const char *dev, char *why, size_t whylen);

/* "-smp" semantics (QEMU 7.2 smp_parse), exposed for tests. */
int options_parse_smp(const char *arg, struct smp_config *smp);

#endif
