#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

/* Set once at start-up, before any thread exists. */
static const char *program = "kestrel";
static bool verbose;

void log_set_program(const char *name) { program = name; }
void log_set_verbose(bool on) { verbose = on; }
bool log_verbose(void) { return verbose; }

__attribute__((format(printf, 2, 0)))
static void log_line(const char *level, const char *fmt, va_list ap)
{
	char line[1024];
	int saved = errno;

	vsnprintf(line, sizeof(line), fmt, ap);
	/* One fprintf per message so lines from vCPU threads do not interleave. */
	fprintf(stderr, "%s: %s%s\n", program, level, line);
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
