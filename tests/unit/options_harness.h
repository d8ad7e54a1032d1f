/*
 * What the command-line tests (test_options.c, test_options_memory.c) share:
 * options_parse on a NULL-terminated argument list, argv[0] supplied, with
 * the parser's messages sent to /dev/null by the cmocka group setup.
 * Include after <cmocka.h> and "cli/options.h".
 */
#ifndef KESTREL_TESTS_OPTIONS_HARNESS_H
#define KESTREL_TESTS_OPTIONS_HARNESS_H

#include <stdio.h>

static FILE *devnull;

static enum options_result parse_to(struct vm_config *cfg, FILE *out, const char **args)
{
	char *argv[64] = { "kestrel" };
	int argc = 1;

	while (args[argc - 1]) {
		assert_true(argc < 63);
		argv[argc] = (char *)args[argc - 1];
		argc++;
	}
	return options_parse(argc, argv, cfg, out);
}

static int group_setup(void **state)
{
	(void)state;
	devnull = fopen("/dev/null", "w");
	return devnull ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	fclose(devnull);
	return 0;
}

#endif
