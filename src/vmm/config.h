/* What the command line asked for: the whole description of one VM, before it exists. */
#ifndef KESTREL_VMM_CONFIG_H
#define KESTREL_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "block/throttle.h"
#include "chardev/chardev.h"
#include "core/memory.h"

#define VM_DEFAULT_RAM (128ULL << 20)	/* QEMU's default -m */
#define VM_MAX_CHARDEVS 8
#define VM_MAX_MONITORS 4
#define VM_MAX_DRIVES 8
#define VM_MAX_DEVICES 16
#define VM_MAX_CPUS 255			/* xAPIC IDs, as QEMU's pc machine */
#define VM_MAX_NICS 8
#define VM_MAX_NETDEVS 8

struct smp_config {
	unsigned cpus;		/* started at boot */
	unsigned sockets, cores, threads;
	unsigned maxcpus;	/* cpus + hotpluggable ones, listed in ACPI as disabled */
};

enum display_mode {
	DISPLAY_DEFAULT,	/* no -display/-nographic: serial on stdio, VNC on localhost:0,to=99 */
	DISPLAY_NOGRAPHIC,
	DISPLAY_NONE,
	DISPLAY_SDL,	/* -display sdl / -sdl: the local window; serial on stdio as DEFAULT */
};

struct debug_exit_config {
	bool enabled;
	uint16_t iobase;
	uint16_t iosize;
};

/* -chardev, or one made for -serial/-monitor/-qmp ("serial0", "compat_monitor0"). */
struct chardev_config {
	char id[CHARDEV_ID_MAX];
	struct chardev_spec spec;
};

/* -mon: a monitor on a character device. */
struct monitor_config {
	char chardev[CHARDEV_ID_MAX];
	char id[CHARDEV_ID_MAX];	/* -mon id=; "" when not given */
	bool control;		/* QMP (mode=control), else HMP (mode=readline) */
	bool pretty;
};

/* -drive if=: which controller the drive hangs off. */
enum drive_if {
	DRIVE_IF_VIRTIO,
	DRIVE_IF_NONE,
	DRIVE_IF_IDE,
	DRIVE_IF_FLOPPY,
};

#define IDE_MAX_DRIVES 4	/* two channels, master and slave */
#define FLOPPY_MAX_DRIVES 2	/* A: and B: */

/* -boot: firmware boot order and menu (QEMU's drive letters a, c, d, n). */
struct boot_config {
	char order[8];		/* "" for the default, "cad" */
	char once[8];		/* the first boot only; "" for none */
	bool menu;
	int splash_time;	/* ms, -1 when not given */
	int reboot_timeout;	/* ms, -1 when not given */
	bool strict;
};

/* -drive: a disk image and how to open it. */
struct drive_config {
	char id[32];
	char *file;			/* owned: freed by options_free */
	char format[16];		/* "" to probe */
	char key_secret[64];		/* luks: the -object secret's id, "" for none */
	unsigned flags;			/* BLOCK_* open flags from cache= and readonly= */
	bool snapshot;			/* writes go to a throw-away overlay */
	bool copy_on_read;		/* copy-on-read=on: a filter copies backing data up */
	/* werror=, rerror=: enum block_error_action + 1; 0 is QEMU's default (enospc, report) */
	unsigned char werror, rerror;
	bool readonly;
	bool discard;			/* discard=unmap */
	bool claimed;			/* a device uses it */
	char serial[21];
	bool aio_io_uring;		/* aio=io_uring */
	bool aio_native;		/* aio=native (Linux AIO); neither: the thread pool */
	uint8_t detect_zeroes;		/* enum blk_detect_zeroes: off, on, unmap */
	bool blockdev;			/* from -blockdev: id is the node-name */
	bool protocol;			/* -blockdev driver=file|host_device */
	char file_node[32];		/* -blockdev: the file node this format node opens; "" none */
	enum drive_if iface;
	int index;			/* if=ide: 0-3 (bus * 2 + unit), -1 for the next free */
	bool cdrom;			/* media=cdrom */
	bool has_bootindex;
	unsigned bootindex;
	/* I/O limits: -drive iops=... (group "" is the drive's id), or a throttle node's group. */
	bool throttled;
	struct throttle_config throttle;
	char throttle_group[32];
	bool throttle_node;		/* -blockdev driver=throttle: limits are the group's */
};

enum device_kind {
	DEVICE_VIRTIO_BLK,
	DEVICE_VIRTIO_RNG,
	DEVICE_VIRTIO_SERIAL,		/* virtio-serial-pci, carrying the virtconsole */
	DEVICE_VIRTIO_NET,		/* virtio-net-pci: cfg->nics[nic] */
	DEVICE_E1000,			/* e1000: cfg->nics[nic] */
	DEVICE_VIRTIO_BALLOON,		/* virtio-balloon-pci, -balloon virtio */
	DEVICE_VGA,			/* -device VGA: std VGA + VBE (hw/vga.h) */
	DEVICE_BOCHS_DISPLAY,		/* -device bochs-display: VBE only, no legacy VGA */
};

/* -vga: the pc machine's built-in video card (QEMU's default_vga). */
enum vga_type {
	VGA_TYPE_DEFAULT,		/* std, unless -nodefaults or a -device VGA */
	VGA_TYPE_STD,
	VGA_TYPE_NONE,
};

#define VGA_PCI_SLOT 2			/* QEMU's pc puts the -vga card at 00:02.0 */

/* -device (and the virtio-blk that -drive if=virtio implies). */
struct device_config {
	enum device_kind kind;
	char id[32];			/* id=: its QOM path is /machine/peripheral/ID; "": anonymous */
	int slot;			/* addr=; -1 for the first free */
	char drive[32];			/* virtio-blk: drive= */
	unsigned num_queues;		/* virtio-blk: num-queues= (0: one) */
	char serial[21];
	unsigned nic;			/* virtio-net: index into cfg->nics */
	bool has_bootindex;		/* bootindex= */
	unsigned bootindex;
	unsigned vgamem_mb;		/* VGA: vgamem_mb= (0: 16) */
};

/* -netdev TYPE,id=... or the back-end half of -net/-nic (src/net/ parses args). */
struct netdev_config {
	char type[8];			/* tap, user, socket */
	char id[32];
	int vlan;			/* -net: the hub it joins; -1 for -netdev */
	char *args;			/* owned: the option list after the type */
};

/* -net nic, -nic or -device virtio-net-pci: one NIC. */
struct nic_config {
	char netdev[32];		/* netdev= ("" with vlan >= 0) */
	int vlan;			/* -net nic: the hub; -1 otherwise */
	char name[32];
	uint8_t mac[6];
	bool has_mac;
	bool dup_allow;			/* dup=allow: share a MAC with another running VM */
	unsigned vectors;		/* vectors= (accepted; the MSI-X table is fixed) */
	bool mq;			/* mq=on: one queue pair per back-end queue */
	unsigned pairs;			/* queue pairs (set once the netdev is known) */
	bool e1000;			/* model=e1000; otherwise virtio-net */
	bool romfile_set;		/* romfile= given ("" for none) */
	char romfile[256];		/* the PXE option ROM for firmware boot */
};

#define VM_MAX_MEMDEVS 8
#define VM_MAX_NUMA_NODES MEMORY_MAX_BLOCKS

/* -object memory-backend-{ram,file,memfd}. */
struct memdev_config {
	char id[32];
	char *path;			/* owned: mem-path= */
	struct memory_backing backing;	/* backing.path points at path */
	bool merge_given;		/* merge= was explicit; else -machine mem-merge decides */
	bool dump_given;		/* dump= was explicit; else -machine dump-guest-core decides */
	bool used;
};

/* -numa node: which CPUs and which RAM a guest NUMA node has. */
struct numa_node_config {
	unsigned nodeid;
	uint8_t cpus[(VM_MAX_CPUS + 8) / 8];	/* bitmap of vCPU indexes */
	bool has_cpus;
	char memdev[32];		/* "" : a share of -m (QEMU's legacy split) */
};

/* -balloon / -device virtio-balloon-pci. */
struct balloon_config {
	bool enabled;
	int slot;
	char id[32];
	bool deflate_on_oom;
	bool free_page_reporting;
	uint64_t polling_interval;	/* guest-stats-polling-interval= */
};

/* Guest memory: backends, NUMA topology, KSM and locking. */
struct memory_config {
	bool ram_size_given;		/* -m: else -machine memory-backend= sizes RAM */
	bool mem_merge;			/* -machine mem-merge (default on) */
	bool dump_guest_core;		/* -machine dump-guest-core (default on) */
	const char *mem_path;		/* -mem-path */
	bool mem_prealloc;		/* -mem-prealloc */
	bool mem_lock;			/* -overcommit mem-lock=on */
	char memory_backend[32];	/* -machine memory-backend= */
	struct memdev_config memdevs[VM_MAX_MEMDEVS];
	unsigned nr_memdevs;
	struct numa_node_config nodes[VM_MAX_NUMA_NODES];
	unsigned nr_nodes;
	uint8_t distance[VM_MAX_NUMA_NODES][VM_MAX_NUMA_NODES];	/* -numa dist, 0: unset */
	/* Filled by options_check_memory: what backs RAM, in guest order (one per node). */
	struct memory_backing backing[VM_MAX_NUMA_NODES];
	unsigned nr_backing;
};

/* -machine TYPE: the pc, or QEMU's "none" (no RAM, no vCPU, no device: monitors only). */
enum machine_kind {
	MACHINE_PC,
	MACHINE_NONE,
};

/*
 * -machine accel= (and -enable-kvm, its shorthand: the last one wins) or
 * -accel (each one an entry, tried in order): the accelerators to try.
 * Kestrel has only KVM; other names are kept so the errors come when QEMU
 * gives them (cli/accel.c).
 */
#define VM_MAX_ACCELS 4
struct accel_config {
	char machine_list[64];			/* "kvm:tcg"; "" when not given */
	const char *opts[VM_MAX_ACCELS];	/* each -accel argument */
	unsigned nr_opts;
};

/* -rtc: where the guest's CMOS clock starts (options_platform.c, hw/rtc.c). */
struct rtc_config {
	bool localtime;			/* base=localtime: the host's local time, else UTC */
	int64_t offset;			/* base=DATE: seconds from host time */
	bool driftfix_slew;		/* driftfix=slew (see kestrel(1): no ticks are lost) */
};

/* -cpu: the CPUID a vCPU sees (vmm/cpu_model.c). */
enum cpu_model {
	CPU_MODEL_HOST,			/* host, max: what KVM supports */
	CPU_MODEL_QEMU64,		/* QEMU's qemu64, filtered from what KVM supports */
};

struct cpu_config {
	enum cpu_model model;
	bool migratable;		/* host,migratable=on (QEMU's default): no invtsc */
};

/* -global and -machine switches of the pc machine's devices. */
struct platform_config {
	char audiodev[32];		/* -audiodev none,id=: "" when none given */
};

/*
 * USB: the PIIX3 UHCI (-usb, -machine usb=on, -device piix3-usb-uhci,
 * -usbdevice) and the HID devices on its two root ports.  There is no hub,
 * so two devices at most.
 */
#define VM_MAX_USB_DEVICES 2

struct usb_device_config {
	int kind;			/* enum usb_hid_kind */
	char id[32];			/* id=, "" if none */
	char bus[40];			/* bus= as given, "" if none */
	char port[8];			/* port= as given, "" for the first free */
	unsigned port_nr;		/* 1-2 once options_check_usb placed it */
	char arg[96];			/* the option as written, for errors found later */
	const char *opt;		/* "device" or "usbdevice" */
};

struct usb_config {
	bool uhci;			/* a UHCI exists */
	char uhci_id[32];		/* -device piix3-usb-uhci,id=; "" if none */
	struct usb_device_config devs[VM_MAX_USB_DEVICES];
	unsigned nr;
};

struct vm_config {
	enum machine_kind machine;
	struct accel_config accel;
	bool start_paused;	/* -S: vCPUs are created but held until cont */
	bool cpu_given;		/* -cpu (machine none has no CPU to give it to) */
	bool msg_guest_name;	/* -msg guest-name=on: -name prefixes error messages */
	uint64_t ram_size;
	struct smp_config smp;
	char *name;
	char *process_name;		/* -name process=: the comm name, as QEMU's prctl */
	bool debug_threads;		/* -name debug-threads=on: "CPU n/KVM" thread names */
	uint8_t uuid[16];
	bool has_uuid;
	const char *kernel;
	const char *initrd;
	const char *append;
	struct chardev_config chardevs[VM_MAX_CHARDEVS];
	unsigned nr_chardevs;
	char serial_chardev[CHARDEV_ID_MAX];	/* COM1's back end; "" for none */
	bool serial_given;
	struct monitor_config monitors[VM_MAX_MONITORS];
	unsigned nr_monitors;
	bool monitor_given;
	enum display_mode display;
	enum vga_type vga;		/* -vga */
	const char *vnc;		/* -vnc / -display vnc= argument (ui/vnc.h syntax); NULL: none */
	bool vnc_default;		/* the default display's VNC: say where it listens */
	const char *keyboard_layout;	/* -k; NULL: en-us */
	const char *sdl_opts;		/* -display sdl's ",key=value" tail (ui/sdl.h syntax) */
	int sdl_grab;			/* 0: grab-mod as given; 1 -alt-grab; 2 -ctrl-grab */
	bool no_quit;			/* -no-quit: closing the window does not quit */
	bool full_screen;		/* -full-screen */
	bool no_reboot;
	bool no_shutdown;
	bool daemonize;
	const char *pidfile;
	const char *gdb_dev;		/* -gdb/-s: the gdbstub's device, NULL for none */
	bool check_host;
	bool nodefaults;	/* no default serial port or monitor */
	struct debug_exit_config debug_exit;
	struct drive_config drives[VM_MAX_DRIVES];
	unsigned nr_drives;
	struct device_config devices[VM_MAX_DEVICES];
	unsigned nr_devices;
	char console_chardev[CHARDEV_ID_MAX];	/* virtconsole,chardev= ("" for none) */
	bool snapshot_all;			/* -snapshot */
	struct netdev_config netdevs[VM_MAX_NETDEVS];
	unsigned nr_netdevs;
	struct nic_config nics[VM_MAX_NICS];
	unsigned nr_nics;
	const char *bios;			/* -bios; NULL for the default SeaBIOS */
	struct boot_config boot;		/* -boot */
	char debugcon_chardev[CHARDEV_ID_MAX];	/* -debugcon; "" for none */
	struct memory_config memory;
	struct balloon_config balloon;
	struct rtc_config rtc;
	struct cpu_config cpu;
	struct platform_config platform;
	struct usb_config usb;
};

#define FIRMWARE_DEFAULT_BIOS "/usr/share/seabios/bios-256k.bin"

/*
 * Whether the firmware runs: always without -kernel, and with -kernel only
 * when -bios is given (the kernel then goes through fw_cfg, as on QEMU);
 * a plain -kernel is kestrel's direct boot, which needs no firmware.
 */
static inline bool vm_config_firmware_boot(const struct vm_config *cfg)
{
	return !cfg->kernel || cfg->bios;
}

#endif
