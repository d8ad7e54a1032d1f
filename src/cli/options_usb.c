/*
 * USB options as QEMU 7.2 takes them: -usb and -machine usb=on (the PIIX3
 * UHCI at 00:01.2 with bus usb-bus.0), -device piix3-usb-uhci[,id=], -device
 * usb-tablet|usb-mouse|usb-kbd[,bus=,port=,id=], and -usbdevice
 * tablet|mouse|keyboard (which implies the UHCI on pc, as in QEMU).  Devices
 * are placed once everything is parsed, since -usb may come after them.
 */
#include <stdio.h>
#include <string.h>

#include "cli/options_internal.h"
#include "usb/hid.h"
#include "util/log.h"

static int add_usb_device(struct vm_config *cfg, int kind, const char *id, const char *bus,
			  const char *port, const char *opt, const char *arg)
{
	struct usb_device_config *d;

	/* QEMU would add a hub here; Kestrel has none. */
	if (cfg->usb.nr == VM_MAX_USB_DEVICES)
		return err_invalid(opt, arg, "no free USB port: kestrel has no USB hub, so at most "
				   "2 USB devices (one per UHCI root port)");
	d = &cfg->usb.devs[cfg->usb.nr++];
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->opt = opt;
	snprintf(d->id, sizeof(d->id), "%s", id ? id : "");
	snprintf(d->bus, sizeof(d->bus), "%s", bus ? bus : "");
	snprintf(d->port, sizeof(d->port), "%s", port ? port : "");
	snprintf(d->arg, sizeof(d->arg), "%s", arg);
	return 0;
}

int options_usb(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	cfg->usb.uhci = true;
	return 0;
}

/* -usbdevice NAME: QEMU 7.2's usb_parse, for the HID names. */
int options_usbdevice(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	static const char *const names[][2] = {
		{ "tablet", "usb-tablet" }, { "mouse", "usb-mouse" }, { "keyboard", "usb-kbd" },
	};
	char msg[160];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(arg, names[i][0]))
			continue;
		cfg->usb.uhci = true;
		return add_usb_device(cfg, usb_hid_kind_parse(names[i][1]), NULL, NULL, NULL,
				      opt, arg);
	}
	snprintf(msg, sizeof(msg), "could not add USB device '%s'", arg);
	return err_invalid(opt, arg, msg);
}

bool options_is_usb_driver(const char *driver)
{
	return !strcmp(driver, "piix3-usb-uhci") || usb_hid_kind_parse(driver) >= 0;
}

static int uhci_device(struct vm_config *cfg, struct opts *o, const char *opt, const char *arg)
{
	const char *id = opts_get(o, "id"), *bus = opts_get(o, "bus"), *addr = opts_get(o, "addr");

	if (check_unused(o, opt, arg) < 0)
		return -1;
	if (cfg->usb.uhci)
		return err_invalid(opt, arg, "only one USB controller is supported: kestrel has "
				   "the PIIX3 UHCI at 00:01.2 (-usb) and no other");
	if (bus && strcmp(bus, "pci.0"))
		return err_invalid(opt, arg, "bus= must be pci.0");
	/* libvirt places it where QEMU's -usb does: the PIIX3's function 2. */
	if (addr && strcmp(addr, "0x1.0x2") && strcmp(addr, "01.2") && strcmp(addr, "1.2"))
		return err_invalid(opt, arg, "addr= other than 0x1.0x2 is not supported: the UHCI "
				   "is function 2 of the PIIX3, as on QEMU's pc machine");
	if (id && strlen(id) >= sizeof(cfg->usb.uhci_id))
		return err_invalid(opt, arg, "id= is too long (31 characters at most)");
	cfg->usb.uhci = true;
	snprintf(cfg->usb.uhci_id, sizeof(cfg->usb.uhci_id), "%s", id ? id : "");
	return 0;
}

int options_usb_device(struct vm_config *cfg, struct opts *o, const char *driver,
		       const char *opt, const char *arg)
{
	const char *id, *bus, *port;

	if (!strcmp(driver, "piix3-usb-uhci"))
		return uhci_device(cfg, o, opt, arg);
	id = opts_get(o, "id");
	bus = opts_get(o, "bus");
	port = opts_get(o, "port");
	if (check_unused(o, opt, arg) < 0)
		return -1;
	if (id && strlen(id) >= sizeof(cfg->usb.devs[0].id))
		return err_invalid(opt, arg, "id= is too long (31 characters at most)");
	if ((bus && strlen(bus) >= sizeof(cfg->usb.devs[0].bus)) ||
	    (port && strlen(port) >= sizeof(cfg->usb.devs[0].port))) {
		char msg[160];
		snprintf(msg, sizeof(msg), "Bus '%s' not found", bus ? bus : "");
		return err_invalid(opt, arg, bus && strlen(bus) >= sizeof(cfg->usb.devs[0].bus) ?
				   msg : "usb port not found");
	}
	for (unsigned i = 0; id && i < cfg->usb.nr; i++)
		if (!strcmp(cfg->usb.devs[i].id, id)) {
			char msg[80];
			snprintf(msg, sizeof(msg), "Duplicate ID '%s' for device", id);
			return err_invalid(opt, arg, msg);
		}
	return add_usb_device(cfg, usb_hid_kind_parse(driver), id, bus, port, opt, arg);
}

/* The bus name QEMU gives the UHCI's USB bus. */
static void options_usb_bus_name(const struct vm_config *cfg, char *buf, size_t len)
{
	if (cfg->usb.uhci_id[0])
		snprintf(buf, len, "%s.0", cfg->usb.uhci_id);
	else
		snprintf(buf, len, "usb-bus.0");
}

static int usb_err(const struct usb_device_config *d, const char *why)
{
	log_error("-%s %s: %s", d->opt, d->arg, why);
	return -1;
}

/* Places each USB device on a root port, in command-line order, as QEMU's usb_claim_port. */
int options_check_usb(struct vm_config *cfg)
{
	bool used[VM_MAX_USB_DEVICES + 1] = { false };
	char bus[48], msg[200];

	options_usb_bus_name(cfg, bus, sizeof(bus));
	/* Machine none has no PCI bus: no UHCI, so no USB bus (QEMU's words for each form). */
	if (cfg->machine == MACHINE_NONE && cfg->usb.uhci) {
		if (cfg->usb.nr && !strcmp(cfg->usb.devs[0].opt, "usbdevice")) {
			snprintf(msg, sizeof(msg), "could not add USB device '%s'",
				 cfg->usb.devs[0].arg);
			return usb_err(&cfg->usb.devs[0], msg);
		}
		if (cfg->usb.nr) {
			snprintf(msg, sizeof(msg), "No 'usb-bus' bus found for device '%s'",
				 usb_hid_kind_name((enum usb_hid_kind)cfg->usb.devs[0].kind));
			return usb_err(&cfg->usb.devs[0], msg);
		}
		log_error("-usb: machine 'none' has no PCI bus for the USB controller");
		return -1;
	}
	for (unsigned i = 0; i < cfg->usb.nr; i++) {
		struct usb_device_config *d = &cfg->usb.devs[i];
		const char *name = usb_hid_kind_name((enum usb_hid_kind)d->kind);
		if (!cfg->usb.uhci) {
			snprintf(msg, sizeof(msg), "No 'usb-bus' bus found for device '%s'", name);
			return usb_err(d, msg);
		}
		if (d->bus[0] && strcmp(d->bus, bus)) {
			snprintf(msg, sizeof(msg), "Bus '%s' not found", d->bus);
			return usb_err(d, msg);
		}
	}
	/* Explicit ports first claim theirs; then the others take the first free one. */
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < cfg->usb.nr; i++) {
			struct usb_device_config *d = &cfg->usb.devs[i];
			unsigned p = 0;
			if (pass == 0 && d->port[0]) {
				if (!strcmp(d->port, "1") || !strcmp(d->port, "2"))
					p = (unsigned)(d->port[0] - '0');
				if (!p || used[p]) {
					snprintf(msg, sizeof(msg),
						 "usb port %s (bus %s) not found (in use?)", d->port, bus);
					return usb_err(d, msg);
				}
			} else if (pass == 1 && !d->port[0]) {
				for (p = 1; p <= VM_MAX_USB_DEVICES && used[p]; p++)
					;
				if (p > VM_MAX_USB_DEVICES)
					return usb_err(d, "no free USB port: kestrel has no USB hub");
			} else {
				continue;
			}
			used[p] = true;
			d->port_nr = p;
		}
	}
	return 0;
}
