/* kestrel-img: a qemu-img compatible disk image tool. */
#include "img/img.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KESTREL_VERSION
#define KESTREL_VERSION "0"
#endif

static void help(void)
{
	printf("%s version " KESTREL_VERSION "\n"
	       "usage: %s [standard options] command [command options]\n"
	       "Disk image utility, compatible with qemu-img\n\n"
	       "    '-h', '--help'       display this help and exit\n"
	       "    '-V', '--version'    output version information and exit\n\n"
	       "Command syntax:\n", IMG_NAME, IMG_NAME);
	for (const struct img_cmd *c = img_cmds; c->name; c++)
		printf("  %s\n", c->usage);
	printf("\nCommand parameters:\n"
	       "  'filename' is a disk image filename\n"
	       "  'fmt' is the disk image format. It is guessed automatically in most cases\n"
	       "  'cache' is the cache mode used to write the output disk image, the valid\n"
	       "    options are: 'none', 'writeback' (default, except for convert), 'writethrough',\n"
	       "    'directsync' and 'unsafe' (default for convert)\n"
	       "  'src_cache' is the cache mode used to read input disk images, the valid\n"
	       "    options are the same as for the 'cache' option\n"
	       "  'size' is the disk image size in bytes. Optional suffixes\n"
	       "    'k' or 'K' (kilobyte, 1024), 'M' (megabyte, 1024k), 'G' (gigabyte, 1024M),\n"
	       "    'T' (terabyte, 1024G), 'P' (petabyte, 1024T) and 'E' (exabyte, 1024P)  are\n"
	       "    supported. 'b' is ignored.\n"
	       "  'output_filename' is the destination disk image filename\n"
	       "  'output_fmt' is the destination format\n"
	       "  'options' is a comma separated list of format specific options in a\n"
	       "    name=value format. Use -o help for an overview of the options supported by\n"
	       "    the used format\n"
	       "  'snapshot_param' is param used for internal snapshot, format\n"
	       "    is 'snapshot.id=[ID],snapshot.name=[NAME]', or\n"
	       "    '[ID_OR_NAME]'\n"
	       "  '-c' indicates that target image must be compressed (qcow2 format only)\n"
	       "  '-u' allows unsafe backing chains. For rebasing, it is assumed that old and\n"
	       "       new backing file match exactly. The image doesn't need a working\n"
	       "       backing file before rebasing in this case (useful for renaming the\n"
	       "       backing file). For image creation, allow creating without attempting\n"
	       "       to open the backing file.\n"
	       "  '-h' with or without a command shows this help and lists the supported formats\n"
	       "  '-p' show progress of command (only certain commands)\n"
	       "  '-q' use Quiet mode - do not print any output (except errors)\n"
	       "  '-S' indicates the consecutive number of bytes (defaults to 4k) that must\n"
	       "       contain only zeros for the tool to create a sparse image during\n"
	       "       conversion. If the number of bytes is 0, the source will not be scanned for\n"
	       "       unallocated or zero sectors, and the destination image will always be\n"
	       "       fully allocated\n"
	       "  '--output' takes the format in which the output must be done (human or json)\n"
	       "  '-n' skips the target volume creation (useful if the volume is created\n"
	       "       prior to running the tool)\n\n"
	       "Parameters to check subcommand:\n"
	       "  '-r' tries to repair any inconsistencies that are found during the check.\n"
	       "       '-r leaks' repairs only cluster leaks, whereas '-r all' fixes all\n"
	       "       kinds of errors, with a higher risk of choosing the wrong fix or\n"
	       "       hiding corruption that has already occurred.\n\n"
	       "Parameters to snapshot subcommand:\n"
	       "  'snapshot' is the name of the snapshot to create, apply or delete\n"
	       "  '-a' applies a snapshot (revert disk to saved state)\n"
	       "  '-c' creates a snapshot\n"
	       "  '-d' deletes a snapshot\n"
	       "  '-l' lists all snapshots in the given image\n\n"
	       "Parameters to compare subcommand:\n"
	       "  '-f' first image format\n"
	       "  '-F' second image format\n"
	       "  '-s' run in Strict mode - fail on different image size or sector allocation\n\n"
	       "Supported formats:");
	block_print_formats(stdout);
	printf("\n");
}

int main(int argc, char **argv)
{
	const char *cmd, *slash;

	if (argc > 0 && argv[0] && *argv[0]) {
		slash = strrchr(argv[0], '/');
		img_prog = slash && slash[1] ? slash + 1 : argv[0];
	}
	if (argc < 2) {
		return img_usage_error("Not enough arguments");
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		help();
		return 0;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("%s version " KESTREL_VERSION "\n", IMG_NAME);
		return 0;
	}
	for (const struct img_cmd *c = img_cmds; c->name; c++)
		if (!strcmp(c->name, cmd))
			return c->run(argc - 1, argv + 1);
	/* qemu-img parses its own options first: "--frobnicate" is no command. */
	if (cmd[0] == '-')
		return img_usage_error("unrecognized option '%s'", cmd);
	return img_usage_error("Command not found: %s", cmd);
}
