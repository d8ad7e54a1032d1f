/* kestrel --check-host: a virt-host-validate style checklist. */
#ifndef KESTREL_VMM_HOSTCHECK_H
#define KESTREL_VMM_HOSTCHECK_H

#include <stdio.h>

/* Prints the checklist to out; returns 0 when a VM can run here, 1 otherwise. */
int hostcheck_run(FILE *out);

#endif
