#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

/* Set once at start-up, before any thread exists. */
static const char *program = "kestrel";
static bool verbose;
static bool timestamps;
static char guest_name[128];	/* a copy: the caller's string may go first */

void log_set_program(const char *name) { program = name; }
void log_set_verbose(bool on) { verbose = on; }
bool log_verbose(void) { return verbose; }
void log_set_timestamp(bool on) { timestamps = on; }
void log_set_guest_name(const char *name)
{
	snprintf(guest_name, sizeof(guest_name), "%s", name ? name : "");
}

/*
 * -msg timestamp=on: QEMU's error_vreport prefix, the UTC time as ISO 8601
 * with microseconds and a "Z" ("2026-12-07T19:00:46.254022Z "); "" when off.
 */
static void stamp(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;

	buf[0] = '\0';
	if (!timestamps || gettimeofday(&tv, NULL) < 0 || !gmtime_r(&tv.tv_sec, &tm))
		return;
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
}

__attribute__((format(printf, 2, 0)))
static void log_line(const char *level, const char *fmt, va_list ap)
{
	char line[1024], when[64];
	int saved = errno;

	vsnprintf(line, sizeof(line), fmt, ap);
	stamp(when, sizeof(when));
	/* One fprintf per message so lines from vCPU threads do not interleave. */
	fprintf(stderr, "%s%s%s%s: %s%s\n", when, guest_name, guest_name[0] ? " " : "", program,
		level, line);
	errno = saved;
}

void log_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line("", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line("warning: ", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line("", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;
	if (!verbose)
		return;
	va_start(ap, fmt);
	log_line("debug: ", fmt, ap);
	va_end(ap);
}
