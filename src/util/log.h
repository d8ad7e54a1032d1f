/* Diagnostics: one line per message, prefixed with the program name, on stderr. */
#ifndef KESTREL_UTIL_LOG_H
#define KESTREL_UTIL_LOG_H

#include <stdbool.h>

void log_set_program(const char *name);
void log_set_verbose(bool verbose);
bool log_verbose(void);
/* -msg timestamp=on: each message starts with the UTC time, as QEMU's. */
void log_set_timestamp(bool on);
/* -msg guest-name=on: then the guest's -name (NULL: none), as QEMU's. */
void log_set_guest_name(const char *name);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
