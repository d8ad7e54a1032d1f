/* -drive and the -device models beyond the platform's: QEMU's names and properties. */
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "cli/options_internal.h"
#include "util/log.h"
#include "util/size.h"
#include "virtio/devices.h"
#include "virtio/virtio.h"

void options_device_help(FILE *out)
{
	fprintf(out, "Storage devices:\n"
		     "name \"ide-cd\", bus IDE\n"
		     "name \"ide-hd\", bus IDE\n"
		     "name \"virtio-blk-pci\", bus PCI, alias \"virtio-blk\"\n"
		     "\nNetwork devices:\n"
		     "name \"e1000\", bus PCI, alias \"e1000-82540em\", desc \"Intel Gigabit Ethernet\"\n"
		     "name \"virtio-net-pci\", bus PCI, alias \"virtio-net\"\n"
		     "\nDisplay devices:\n"
		     "name \"bochs-display\", bus PCI\n"
		     "name \"VGA\", bus PCI\n"
		     "\nInput devices:\n"
		     "name \"isa-serial\", bus ISA (COM1 only)\n"
		     "\nMisc devices:\n"
		     "name \"isa-debug-exit\", bus ISA (tests: exit with (value << 1) | 1)\n"
		     "name \"virtio-balloon-pci\", bus PCI, alias \"virtio-balloon\"\n"
		     "name \"virtio-rng-pci\", bus PCI, alias \"virtio-rng\"\n"
		     "name \"virtio-serial-pci\", bus PCI, alias \"virtio-serial\"\n"
		     "name \"virtconsole\", bus virtio-serial-bus\n");
}

static int add_device(struct vm_config *cfg, const char *opt, const char *arg,
		      const struct device_config *dev)
{
	if (cfg->nr_devices == VM_MAX_DEVICES)
		return err_invalid(opt, arg, "too many devices");
	cfg->devices[cfg->nr_devices++] = *dev;
	return 0;
}

/* QEMU's cache= modes (qemu-options.hx "-drive"): O_DIRECT, O_DSYNC, flush honoured or not. */
static int cache_flags(const char *mode, unsigned *flags)
{
	static const struct {
		const char *name;
		unsigned flags;
	} modes[] = {
		{ "writeback", 0 },
		{ "none", BLOCK_NOCACHE },
		{ "writethrough", BLOCK_DSYNC },
		{ "directsync", BLOCK_NOCACHE | BLOCK_DSYNC },
		{ "unsafe", BLOCK_NO_FLUSH },
	};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(mode, modes[i].name) == 0) {
			*flags |= modes[i].flags;
			return 0;
		}
	}
	return -1;
}

static bool word_in(const char *v, const char *a, const char *b, const char *c, const char *d)
{
	return !strcmp(v, a) || !strcmp(v, b) || !strcmp(v, c) || !strcmp(v, d);
}

/*
 * -drive cache.direct= and cache.no-flush=: they win over cache=, which QEMU's
 * blockdev_init sets only as their defaults (cache=none,cache.direct=off is
 * cached writeback).
 */
static int cache_overrides(const char *direct, const char *no_flush, unsigned *flags,
			   const char *opt, const char *arg)
{
	const struct {
		const char *key, *value;
		unsigned flag;
	} keys[] = { { "cache.direct", direct, BLOCK_NOCACHE },
		     { "cache.no-flush", no_flush, BLOCK_NO_FLUSH } };
	char msg[80];

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!keys[i].value)
			continue;
		/* QEMU's qapi_bool_parse words. */
		if (word_in(keys[i].value, "on", "yes", "true", "y")) {
			*flags |= keys[i].flag;
		} else if (word_in(keys[i].value, "off", "no", "false", "n")) {
			*flags &= ~keys[i].flag;
		} else {
			snprintf(msg, sizeof(msg), "Parameter '%s' expects 'on' or 'off'", keys[i].key);
			return err_invalid(opt, arg, msg);
		}
	}
	return 0;
}

static int copy_serial(char *dst, const char *serial, const char *opt, const char *arg)
{
	if (strlen(serial) > 20)
		return err_invalid(opt, arg, "serial= is at most 20 characters (VIRTIO_BLK_ID_BYTES)");
	strcpy(dst, serial);
	return 0;
}

/* A controller that numbers its drives: if=ide (index= 0-3), if=floppy (0 A:, 1 B:). */
struct drive_bus {
	enum drive_if iface;
	int max;
	const char *bad_index, *full;
};

static const struct drive_bus drive_buses[] = {
	{ DRIVE_IF_IDE, IDE_MAX_DRIVES, "index= must be 0 to 3 for if=ide",
	  "the IDE controller takes four drives at most" },
	{ DRIVE_IF_FLOPPY, FLOPPY_MAX_DRIVES, "index= must be 0 or 1 for if=floppy",
	  "the floppy controller takes two drives at most" },
};

/* index= or the first free position on d's controller, as QEMU's drive_new picks it. */
static int drive_slot(struct vm_config *cfg, struct drive_config *d, const char *index,
		      const char *opt, const char *arg)
{
	const struct drive_bus *b = NULL;
	bool used[IDE_MAX_DRIVES] = { false };
	uint64_t n;

	_Static_assert(FLOPPY_MAX_DRIVES <= IDE_MAX_DRIVES, "used[] holds every bus");
	d->index = -1;
	for (size_t i = 0; i < sizeof(drive_buses) / sizeof(drive_buses[0]); i++)
		if (drive_buses[i].iface == d->iface)
			b = &drive_buses[i];
	if (!b)
		return 0;	/* virtio and none number their drives by order */
	for (unsigned i = 0; i < cfg->nr_drives; i++)
		if (cfg->drives[i].iface == b->iface)
			used[cfg->drives[i].index] = true;
	if (index) {
		if (!uint_parse(index, &n) || n >= (uint64_t)b->max)
			return err_invalid(opt, arg, b->bad_index);
		if (used[n])
			return err_invalid(opt, arg, "drive index is already in use");
		d->index = (int)n;
		return 0;
	}
	for (int i = 0; i < b->max; i++) {
		if (!used[i]) {
			d->index = i;
			return 0;
		}
	}
	return err_invalid(opt, arg, b->full);
}

/* if=, index=, format=, cache= and media= of a -drive into d. */
static int drive_kind(struct vm_config *cfg, struct drive_config *d, const char *iface,
		      const char *index, const char *format, const char *cache, const char *media,
		      const char *opt, const char *arg)
{
	if (iface && strcmp(iface, "virtio") && strcmp(iface, "none") && strcmp(iface, "ide") &&
	    strcmp(iface, "floppy"))
		return err_invalid(opt, arg, "if= must be ide, floppy, virtio or none");
	/* QEMU's pc default is IDE. */
	d->iface = !iface || !strcmp(iface, "ide") ? DRIVE_IF_IDE
		: !strcmp(iface, "virtio") ? DRIVE_IF_VIRTIO
		: !strcmp(iface, "floppy") ? DRIVE_IF_FLOPPY : DRIVE_IF_NONE;
	if (drive_slot(cfg, d, index, opt, arg) < 0)
		return -1;
	if (format && !block_format_has_driver(format))
		return err_invalid(opt, arg, "format= must be an image format Kestrel has "
				   "(raw, qcow2, ...)");
	if (cache && cache_flags(cache, &d->flags) < 0)
		return err_invalid(opt, arg,
				   "cache= must be none, writeback, writethrough, unsafe or directsync");
	if (media && strcmp(media, "disk") && strcmp(media, "cdrom"))
		return err_invalid(opt, arg, "media= must be disk or cdrom");
	d->cdrom = media && !strcmp(media, "cdrom");
	if (d->cdrom && d->iface == DRIVE_IF_FLOPPY)
		return err_invalid(opt, arg, "a floppy drive cannot be a CD-ROM");
	/* QEMU gives a virtio "CD-ROM" as a read-only virtio-blk disk. */
	if (d->cdrom && d->iface == DRIVE_IF_VIRTIO) {
		d->cdrom = false;
		d->readonly = true;
	}
	return 0;
}

/* d's name (QEMU's implicit ones without id=) and file, then d into cfg. */
static int drive_add(struct vm_config *cfg, struct drive_config *d, const char *id,
		     const char *file, const char *format, const char *opt, const char *arg)
{
	if (cfg->nr_drives == VM_MAX_DRIVES)
		return err_invalid(opt, arg, "too many drives");
	if (format)
		strcpy(d->format, format);
	if (d->cdrom)
		d->readonly = true;	/* a CD-ROM never writes, and ISOs are often read-only files */
	if (d->readonly)
		d->flags |= BLOCK_RDONLY;
	snprintf(d->id, sizeof(d->id), "%s", id ? id : "");
	if (!id && d->iface == DRIVE_IF_IDE)	/* QEMU's implicit names: ide1-cd0, ... */
		snprintf(d->id, sizeof(d->id), "ide%d-%s%d", d->index / 2, d->cdrom ? "cd" : "hd",
			 d->index % 2);
	else if (!id && d->iface == DRIVE_IF_FLOPPY)	/* QEMU's floppy0, floppy1 */
		snprintf(d->id, sizeof(d->id), "floppy%d", d->index);
	else if (!id)	/* virtio0, virtio1, ... */
		snprintf(d->id, sizeof(d->id), "virtio%u", cfg->nr_drives);
	if (find_drive(cfg, d->id))
		return err_invalid(opt, arg, "Duplicate ID for drive");
	d->file = strdup(file);	/* the caller frees the option list */
	if (!d->file)
		return err_invalid(opt, arg, "out of memory");
	cfg->drives[cfg->nr_drives++] = *d;
	/* if=virtio brings its own device; IDE drives sit on the PIIX controller. */
	if (d->iface == DRIVE_IF_IDE || d->iface == DRIVE_IF_FLOPPY)
		cfg->drives[cfg->nr_drives - 1].claimed = true;
	if (d->iface == DRIVE_IF_VIRTIO) {
		struct device_config dev = { .kind = DEVICE_VIRTIO_BLK, .slot = -1 };
		strcpy(dev.drive, d->id);
		return add_device(cfg, opt, arg, &dev);
	}
	return 0;
}

/*
 * werror= and rerror= (QEMU's drive_new and blockdev_init): enospc, report,
 * stop or ignore for writes; rerror has no enospc.  The buses that honour
 * them are virtio and IDE (and if=none, for a -device); stop on IDE is
 * refused: its requests run on the vCPU, which cannot wait for cont.
 */
static int drive_error_policy(struct drive_config *d, const char *werror, const char *rerror,
			      const char *opt, const char *arg)
{
	char msg[160];
	int w = werror ? block_error_action_parse(werror) : BLOCK_ERR_ENOSPC;
	int r = rerror ? block_error_action_parse(rerror) : BLOCK_ERR_REPORT;

	if (w < 0) {
		snprintf(msg, sizeof(msg), "'%s' invalid write error action", werror);
		return err_invalid(opt, arg, msg);
	}
	if (r < 0 || r == BLOCK_ERR_ENOSPC) {
		snprintf(msg, sizeof(msg), "'%s' invalid read error action", rerror);
		return err_invalid(opt, arg, msg);
	}
	if ((werror || rerror) && d->iface == DRIVE_IF_FLOPPY) {
		snprintf(msg, sizeof(msg), "%s is not supported by this bus type",
			 werror ? "werror" : "rerror");
		return err_invalid(opt, arg, msg);
	}
	if (d->iface == DRIVE_IF_IDE && (w == BLOCK_ERR_STOP || r == BLOCK_ERR_STOP))
		return err_invalid(opt, arg, "werror=stop and rerror=stop are not supported on IDE "
				   "drives by Kestrel (only on virtio-blk)");
	d->werror = (unsigned char)(w + 1);
	d->rerror = (unsigned char)(r + 1);
	return 0;
}

int options_drive(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o = parse_list(opt, arg, "file");
	struct drive_config d = { 0 };
	const char *file, *iface, *format, *cache, *media, *discard, *aio, *id, *serial, *detect;
	const char *index, *werror, *rerror, *direct, *no_flush;
	int rc = -1;

	if (!o)
		return -1;
	werror = opts_get(o, "werror");
	rerror = opts_get(o, "rerror");
	file = opts_get(o, "file");
	iface = opts_get(o, "if");
	format = opts_get(o, "format");
	cache = opts_get(o, "cache");
	direct = opts_get(o, "cache.direct");
	no_flush = opts_get(o, "cache.no-flush");
	media = opts_get(o, "media");
	discard = opts_get(o, "discard");
	aio = opts_get(o, "aio");
	id = opts_get(o, "id");
	serial = opts_get(o, "serial");
	index = opts_get(o, "index");	/* IDE: bus * 2 + unit; virtio numbers by order */
	detect = opts_get(o, "detect-zeroes");
	if (options_key_secret(o, "key-secret", &d, opt, arg) < 0)
		goto out;
	if (!opts_get_bool(o, "readonly", &d.readonly) || !opts_get_bool(o, "snapshot", &d.snapshot)) {
		err_invalid(opt, arg, "readonly= and snapshot= take on or off");
		goto out;
	}
	if (!opts_get_bool(o, "copy-on-read", &d.copy_on_read)) {
		err_invalid(opt, arg, "Parameter 'copy-on-read' expects 'on' or 'off'");
		goto out;
	}
	if (options_drive_throttle(o, &d, opt, arg) < 0 ||
	    options_overlap_check(o, format, &d, opt, arg) < 0 || check_unused(o, opt, arg) < 0)
		goto out;
	if (!file || !*file) {
		err_invalid(opt, arg, "a file= is needed (empty drives come with the CD-ROM support)");
		goto out;
	}
	if (drive_kind(cfg, &d, iface, index, format, cache, media, opt, arg) < 0 ||
	    cache_overrides(direct, no_flush, &d.flags, opt, arg) < 0)
		goto out;
	if (options_drive_io(&d, discard, aio, detect, d.flags & BLOCK_NOCACHE,
			     "cache.direct=on", opt, arg) < 0)
		goto out;
	if (serial && copy_serial(d.serial, serial, opt, arg) < 0)
		goto out;
	if (drive_error_policy(&d, werror, rerror, opt, arg) < 0)
		goto out;
	/* QEMU 7.2's blockdev_init: a warning, and the drive opens without the filter. */
	if (d.copy_on_read && (d.readonly || d.cdrom)) {
		log_warn("-%s %s: disabling copy-on-read on read-only drive", opt, arg);
		d.copy_on_read = false;
	}
	rc = drive_add(cfg, &d, id, file, format, opt, arg);
out:
	opts_free(o);
	return rc;
}

/*
 * -device ide-hd|ide-cd,drive=ID[,bus=ide.N][,unit=U][,bootindex=I]: puts an
 * if=none drive on the IDE controller.  The -drive must come first.
 */
static int ide_device(struct vm_config *cfg, struct opts *o, const char *driver,
		      const char *opt, const char *arg)
{
	const char *drive = opts_get(o, "drive"), *bus = opts_get(o, "bus");
	const char *unit = opts_get(o, "unit"), *bootindex = opts_get(o, "bootindex");
	struct drive_config *d;
	uint64_t u = 0, b = 0, n;
	bool used = false;

	opts_get(o, "id");
	if (check_unused(o, opt, arg) < 0)
		return -1;
	if (!drive)
		return err_invalid(opt, arg, "drive property not set");
	d = find_drive(cfg, drive);
	if (!d)
		return err_invalid(opt, arg, "drive not found (give its -drive first)");
	if (d->iface != DRIVE_IF_NONE || d->claimed)
		return err_invalid(opt, arg, "the drive is already in use (use if=none)");
	if (bus && (strncmp(bus, "ide.", 4) || !uint_parse(bus + 4, &b) || b > 1))
		return err_invalid(opt, arg, "bus= must be ide.0 or ide.1");
	if (unit && (!uint_parse(unit, &u) || u > 1))
		return err_invalid(opt, arg, "unit= must be 0 or 1");
	for (unsigned i = 0; i < cfg->nr_drives; i++)
		used |= cfg->drives[i].iface == DRIVE_IF_IDE &&
			cfg->drives[i].index == (int)(b * 2 + u);
	if (used)
		return err_invalid(opt, arg, "that IDE position is taken");
	if (d->werror == BLOCK_ERR_STOP + 1 || d->rerror == BLOCK_ERR_STOP + 1)
		return err_invalid(opt, arg, "werror=stop and rerror=stop are not supported on IDE "
				   "drives by Kestrel (only on virtio-blk)");
	if (bootindex) {
		if (!uint_parse(bootindex, &n) || n > 0xffff)
			return err_invalid(opt, arg, "bootindex= must be 0 to 65535");
		d->has_bootindex = true;
		d->bootindex = (unsigned)n;
	}
	d->iface = DRIVE_IF_IDE;
	d->index = (int)(b * 2 + u);
	d->cdrom = !strcmp(driver, "ide-cd");
	if (d->cdrom) {
		d->readonly = true;
		d->flags |= BLOCK_RDONLY;
	}
	d->claimed = true;
	return 0;
}

/*
 * virtio-rng's rng= names an -object rng-*, and no such object is accepted,
 * so any name is unknown (QEMU's wording); the entropy source is getrandom().
 * virtio-serial models one console port without MULTIPORT (virtio 1.2
 * §5.3.3), so max_ports= other than 1 would not reach the guest.
 */
static int rng_and_ports(const struct device_config *dev, const char *rng, const char *ports,
			 const char *opt, const char *arg)
{
	char msg[160];
	uint64_t n;

	if (rng && dev->kind != DEVICE_VIRTIO_RNG)
		return err_invalid(opt, arg, "Invalid parameter 'rng'");
	if (rng) {
		snprintf(msg, sizeof(msg), "Device '%s' not found", rng);
		return err_invalid(opt, arg, msg);
	}
	if (!ports)
		return 0;
	if (dev->kind != DEVICE_VIRTIO_SERIAL)
		return err_invalid(opt, arg, "Invalid parameter 'max_ports'");
	if (!uint_parse(ports, &n))
		return err_invalid(opt, arg, "max_ports= must be a number");
	if (n == 0)
		return err_invalid(opt, arg, "Maximum number of serial ports not specified");
	if (n != 1)
		return err_invalid(opt, arg, "max_ports= other than 1 is not supported: one "
				   "console port is modelled, without MULTIPORT");
	return 0;
}

/*
 * -device isa-serial,chardev=ID[,index=0]: COM1 (0x3f8, IRQ 4) on that chardev,
 * as -serial chardev:ID; libvirt's <serial> element.  COM2-4 are not modelled.
 */
static int isa_serial(struct vm_config *cfg, struct opts *o, const char *opt, const char *arg)
{
	const char *chardev = opts_get(o, "chardev"), *index = opts_get(o, "index");

	opts_get(o, "id");
	if (check_unused(o, opt, arg) < 0)
		return -1;
	if (index && strcmp(index, "0"))
		return err_invalid(opt, arg, "index= other than 0 is not supported: kestrel "
				   "models COM1 only");
	if (cfg->serial_given)
		return err_invalid(opt, arg, "only one serial port (COM1) is supported");
	if (!chardev)
		return err_invalid(opt, arg, "Property 'chardev' is missing");
	cfg->serial_given = true;
	snprintf(cfg->serial_chardev, sizeof(cfg->serial_chardev), "%s", chardev);
	return 0;
}


/* -device virtconsole: the single virtio console port's back end. */
static int virtconsole(struct vm_config *cfg, struct opts *o, const char *opt, const char *arg)
{
	const char *chardev = opts_get(o, "chardev");
	const char *name;

	opts_get(o, "id");
	name = opts_get(o, "name");
	if (check_unused(o, opt, arg) < 0)
		return -1;
	/* A port name reaches the guest only through MULTIPORT, which is not modelled. */
	if (name)
		return err_invalid(opt, arg, "name= is not supported: the single virtio "
				   "console port has no MULTIPORT control queue to announce it");
	if (!chardev)
		return err_invalid(opt, arg, "Property 'chardev' is missing");
	snprintf(cfg->console_chardev, sizeof(cfg->console_chardev), "%s", chardev);
	return 0;
}

int options_virtio_device(struct vm_config *cfg, struct opts *o, const char *driver,
			  const char *opt, const char *arg)
{
	struct device_config dev = { .slot = -1 };
	const char *drive, *serial;
	char msg[160];

	if (!driver) {
		return err_invalid(opt, arg, "no device model named (see -device help)");
	} else if (!strcmp(driver, "virtio-blk-pci") || !strcmp(driver, "virtio-blk")) {
		dev.kind = DEVICE_VIRTIO_BLK;
	} else if (!strcmp(driver, "virtio-rng-pci") || !strcmp(driver, "virtio-rng")) {
		dev.kind = DEVICE_VIRTIO_RNG;
	} else if (!strcmp(driver, "virtio-serial-pci") || !strcmp(driver, "virtio-serial")) {
		dev.kind = DEVICE_VIRTIO_SERIAL;
	} else if (!strcmp(driver, "virtio-net-pci") || !strcmp(driver, "virtio-net") ||
		   !strcmp(driver, "e1000") || !strcmp(driver, "e1000-82540em")) {
		return options_net_device(cfg, o, opt, arg);
	} else if (!strcmp(driver, "ide-hd") || !strcmp(driver, "ide-cd")) {
		return ide_device(cfg, o, driver, opt, arg);
	} else if (!strcmp(driver, "virtio-balloon-pci") || !strcmp(driver, "virtio-balloon")) {
		if (options_pci_addr(opts_get(o, "addr"), &dev.slot) < 0)
			return err_invalid(opt, arg, "addr= must be a PCI slot 1-31 (function 0)");
		return options_balloon_device(cfg, o, dev.slot, opt, arg);
	} else if (options_is_usb_driver(driver)) {
		return options_usb_device(cfg, o, driver, opt, arg);
	} else if (!strcmp(driver, "isa-serial")) {
		return isa_serial(cfg, o, opt, arg);
	} else if (!strcmp(driver, "VGA")) {
		dev.kind = DEVICE_VGA;
	} else if (!strcmp(driver, "bochs-display")) {
		dev.kind = DEVICE_BOCHS_DISPLAY;
	} else if (!strcmp(driver, "virtconsole")) {
		return virtconsole(cfg, o, opt, arg);
	} else {
		snprintf(msg, sizeof(msg), "'%s' is not a valid device model name (see -device help)",
			 driver);
		return err_invalid(opt, arg, msg);
	}
	if (options_pci_addr(opts_get(o, "addr"), &dev.slot) < 0)
		return err_invalid(opt, arg, "addr= must be a PCI slot 1-31 (function 0)");
	const char *id = opts_get(o, "id");
	if (id && strlen(id) >= sizeof(dev.id))
		return err_invalid(opt, arg, "id= is too long (31 characters at most)");
	snprintf(dev.id, sizeof(dev.id), "%s", id ? id : "");
	/* One QOM path per id: QEMU's qdev_set_id refuses the second. */
	bool taken = id && !strcmp(cfg->balloon.id, id);
	for (unsigned i = 0; id && i < cfg->nr_devices; i++)
		taken |= !strcmp(cfg->devices[i].id, id);
	if (taken) {
		snprintf(msg, sizeof(msg), "Duplicate ID '%s' for device", id);
		return err_invalid(opt, arg, msg);
	}
	opts_get(o, "bus");
	if (rng_and_ports(&dev, opts_get(o, "rng"), opts_get(o, "max_ports"), opt, arg) < 0)
		return -1;
	drive = opts_get(o, "drive");
	serial = opts_get(o, "serial");
	const char *queues = opts_get(o, "num-queues");
	const char *bootindex = opts_get(o, "bootindex");
	const char *vgamem = dev.kind == DEVICE_VGA ? opts_get(o, "vgamem_mb") : NULL;
	if (check_unused(o, opt, arg) < 0)
		return -1;
	if (vgamem) {
		uint64_t n;
		/* QEMU vga_common_init: 1 to 256 MiB here, a power of two (QEMU rounds up). */
		if (!uint_parse(vgamem, &n) || n < 1 || n > 256 || (n & (n - 1)))
			return err_invalid(opt, arg, "vgamem_mb= must be a power of two from 1 to 256");
		dev.vgamem_mb = (unsigned)n;
	}
	if (queues) {
		uint64_t n;
		if (dev.kind != DEVICE_VIRTIO_BLK)
			return err_invalid(opt, arg, "Property 'num-queues' not found");
		if (!uint_parse(queues, &n) || n < 1 || n > VIRTIO_MAX_QUEUES)
			return err_invalid(opt, arg, "num-queues must be 1 to 8");
		dev.num_queues = (unsigned)n;
	}
	if (bootindex) {
		uint64_t n;
		if (dev.kind != DEVICE_VIRTIO_BLK)
			return err_invalid(opt, arg, "Property 'bootindex' not found");
		if (!uint_parse(bootindex, &n) || n > 0xffff)
			return err_invalid(opt, arg, "bootindex= must be 0 to 65535");
		dev.has_bootindex = true;
		dev.bootindex = (unsigned)n;
	}
	if (dev.kind == DEVICE_VIRTIO_BLK) {
		if (!drive)
			return err_invalid(opt, arg, "drive property not set");
		snprintf(dev.drive, sizeof(dev.drive), "%s", drive);
		if (serial && copy_serial(dev.serial, serial, opt, arg) < 0)
			return -1;
	}
	return add_device(cfg, opt, arg, &dev);
}

static const char *device_name(enum device_kind kind)
{
	static const char *const names[] = {
		[DEVICE_VIRTIO_BLK] = "virtio-blk-pci",	[DEVICE_VIRTIO_RNG] = "virtio-rng-pci",
		[DEVICE_VIRTIO_SERIAL] = "virtio-serial-pci", [DEVICE_VIRTIO_NET] = "virtio-net-pci",
		[DEVICE_E1000] = "e1000",		[DEVICE_VIRTIO_BALLOON] = "virtio-balloon-pci",
		[DEVICE_VGA] = "VGA",			[DEVICE_BOCHS_DISPLAY] = "bochs-display",
	};
	return names[kind];
}

/* Whether the pc machine builds its -vga std card at 00:02.0 (QEMU's default_vga rule). */
static bool options_default_vga(const struct vm_config *cfg)
{
	if (cfg->machine != MACHINE_PC || cfg->vga == VGA_TYPE_NONE)
		return false;
	if (cfg->vga == VGA_TYPE_STD)
		return true;
	if (cfg->nodefaults)
		return false;
	/* A bochs-display is no VGA: QEMU keeps its default card beside one. */
	for (unsigned i = 0; i < cfg->nr_devices; i++)
		if (cfg->devices[i].kind == DEVICE_VGA)
			return false;
	return true;
}

/* An addr= that the PIIX3 (slot 1, always there on pc), the -vga card or another device holds. */
static int check_slots(const struct vm_config *cfg)
{
	unsigned legacy_vgas = options_default_vga(cfg);

	for (unsigned i = 0; i < cfg->nr_devices; i++) {
		const struct device_config *dev = &cfg->devices[i];
		const char *holder = dev->slot == 1 ? "PIIX3" : NULL;
		if (dev->kind == DEVICE_VGA && ++legacy_vgas > 1) {
			log_error("-device VGA: only one VGA with the legacy ports and window is "
				  "supported");
			return -1;
		}
		if (!holder && dev->slot == VGA_PCI_SLOT && options_default_vga(cfg))
			holder = "VGA";
		for (unsigned j = 0; !holder && dev->slot >= 0 && j < i; j++)
			if (cfg->devices[j].slot == dev->slot)
				holder = device_name(cfg->devices[j].kind);
		if (holder) {
			log_error("-device %s: PCI: slot %d function 0 not available for %s, in use by %s",
				  device_name(dev->kind), dev->slot, device_name(dev->kind), holder);
			return -1;
		}
	}
	return 0;
}

int options_check_devices(struct vm_config *cfg)
{
	bool have_serial_bus = false;

	if (check_slots(cfg) < 0)
		return -1;
	/* The VMM sees the decision: std builds the card, anything else none. */
	cfg->vga = options_default_vga(cfg) ? VGA_TYPE_STD : VGA_TYPE_NONE;

	for (unsigned i = 0; i < cfg->nr_devices; i++) {
		struct device_config *dev = &cfg->devices[i];
		if (dev->kind == DEVICE_VIRTIO_SERIAL)
			have_serial_bus = true;
		if (dev->kind != DEVICE_VIRTIO_BLK)
			continue;
		struct drive_config *d = find_drive(cfg, dev->drive);
		if (!d) {
			log_error("-device virtio-blk-pci: drive '%s' not found", dev->drive);
			return -1;
		}
		if (d->claimed) {
			log_error("-device virtio-blk-pci: drive '%s' is already in use", dev->drive);
			return -1;
		}
		d->claimed = true;
		if (cfg->snapshot_all && !d->blockdev)	/* -snapshot is for -drive, as in QEMU */
			d->snapshot = true;
	}
	if (cfg->console_chardev[0] && !have_serial_bus) {
		log_error("-device virtconsole: no virtio-serial bus; add -device virtio-serial-pci");
		return -1;
	}
	for (unsigned i = 0; i < cfg->nr_drives; i++)
		if (cfg->drives[i].iface == DRIVE_IF_IDE && cfg->snapshot_all && !cfg->drives[i].cdrom)
			cfg->drives[i].snapshot = true;
	for (unsigned i = 0; i < cfg->nr_drives; i++)
		if (!cfg->drives[i].claimed && !cfg->drives[i].blockdev)
			log_warn("-drive %s: no device uses this drive (if=none without -device)",
				 cfg->drives[i].file);
	return 0;
}
