/*
 * One virtual machine: the KVM VM, its RAM, vCPU threads, buses and the pc
 * platform devices.  A guest reset destroys and rebuilds the whole object,
 * which is simpler and surer than resetting every piece of state in place.
 */
#ifndef KESTREL_VMM_VM_H
#define KESTREL_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "block/block.h"
#include "hw/acpi_pm.h"
#include "hw/bus.h"
#include "hw/debug_exit.h"
#include "hw/debugcon.h"
#include "hw/fw_cfg.h"
#include "hw/fdc.h"
#include "hw/i8237.h"
#include "hw/ide.h"
#include "hw/piix.h"
#include "hw/port92.h"
#include "hw/rtc.h"
#include "hw/i8042.h"
#include "hw/pci.h"
#include "hw/reset_control.h"
#include "hw/serial.h"
#include "chardev/chardev.h"
#include "vmm/config.h"
#include "vmm/kvm.h"
#include "virtio/devices.h"
#include "virtio/pci.h"
#include "core/iothread.h"
#include "core/memory.h"
#include "usb/hid.h"
#include "usb/uhci.h"

struct e1000;
struct pc_vga;

/* A platform device the machine built, and what tears it down (pc.c). */
struct vm_part {
	void *dev;
	void (*destroy)(void *dev);
};

#define VM_MAX_PARTS 16
#define VM_MAX_VGAS 2			/* -vga std / -device VGA, plus a bochs-display */

/* An option ROM image, read once. */
struct nic_rom {
	uint8_t *data;
	size_t len;
};

/* What the VM uses but does not own: they outlive a reset, which rebuilds the VM. */
struct vm_backends {
	struct chardev *serial;		/* COM1's back end; NULL for none */
	struct block_dev **disks;	/* one per cfg->drives[i], opened by the caller */
	struct virtio_console *console;	/* the virtconsole's state, NULL without one */
	struct virtio_blk *blks;	/* one per cfg->devices[i]: virtio-blk state, set at plug */
	struct virtio_net *nics;	/* one per cfg->nics[i], linked to their back ends */
	struct e1000 *e1000s;		/* the same for cfg->nics[i] with model=e1000 */
	struct nic_rom *nic_roms;	/* each NIC's option ROM, NULL data for none */
	struct chardev *debugcon;	/* -debugcon's back end; NULL for none */
	unsigned boots;			/* VMs built so far: -boot once= holds for the first */
	struct virtio_balloon *balloon;	/* the balloon's state, NULL without one */
	struct blk_error_hook blk_error;	/* virtio-blk's werror=/rerror= (app) */
	struct display *display;	/* the screen the first video card draws; NULL: none */
	struct input *input;		/* key and pointer routing (VNC, monitor); NULL: none */
};

enum vm_stop {
	VM_RUNNING,
	VM_STOP_POWEROFF,	/* the guest powered off */
	VM_STOP_RESET,		/* the guest reset the machine */
	VM_STOP_QUIT,		/* the host asked: a signal, Ctrl-a x */
	VM_STOP_EXIT,		/* isa-debug-exit: exit with exit_status */
	VM_STOP_ERROR,		/* the VMM itself failed (a vCPU thread would not start) */
};

struct vm;
struct display;
struct input;

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	uint64_t exits;		/* exits to userspace, for statistics */
	_Atomic long tid;	/* host thread ID, for query-cpus-fast */
};

struct vm {
	const struct vm_config *cfg;
	const struct kvm_host *host;
	int fd;
	struct guest_memory mem;
	struct bus pio;
	struct bus mmio;
	struct vcpu *vcpus;
	unsigned nr_vcpus;

	_Atomic int stop;	/* enum vm_stop; the first request wins */
	int exit_status;
	int wake_fd;		/* eventfd: tells the main loop a stop was requested */

	/* Pausing (QMP stop/cont): vCPUs park on pause_cond outside KVM_RUN. */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	_Atomic bool pause_requested;
	unsigned nr_parked;
	_Atomic int solo_vcpu;	/* gdb single-step: this vCPU runs while paused (-1: none) */
	/* A vCPU hit a KVM internal error: every vCPU parks, the main loop reports it. */
	_Atomic bool internal_error;
	_Atomic bool io_error;		/* a disk reported an I/O error (vm_io_error) */

	/* The pc platform (pc.c). */
	const struct vm_backends *backends;
	struct chardev *console;	/* COM1's back end (NULL: no COM1); outlives resets */
	struct serial com1;
	struct i8042 kbc;
	struct reset_control rcr;
	struct acpi_pm pm;
	struct debug_exit debug_exit;
	struct pci_bus pci;
	struct iothread io;		/* serves virtqueue kicks */
	struct virtio_pci virtio[VM_MAX_DEVICES];	/* the transports; state is the backends' */
	unsigned nr_virtio;

	/* Legacy PC devices and firmware boot (pc_legacy.c, firmware.c). */
	struct rtc rtc;
	struct port92 port92;
	struct debugcon debugcon;
	struct piix piix;
	struct ide ide;
	struct fw_cfg fw_cfg;
	uint8_t *rom;			/* the -bios image, mapped read-only at the top of 4 GiB */
	size_t rom_size;
	/* -fda/-fdb (pc_floppy.c): the floppy controller and the ISA DMA it needs. */
	struct i8237 isa_dma;
	struct fdc fdc;
	/* Video cards (pc_vga.c), each with its VRAM slot (VM_VGA_SLOT + index). */
	struct pc_vga *vgas[VM_MAX_VGAS];
	unsigned nr_vgas;
	/* USB (pc_usb.c): the PIIX3 UHCI and the HID devices on its root ports. */
	struct uhci uhci;
	struct usb_hid usb_hids[VM_MAX_USB_DEVICES];
	unsigned nr_usb_hids;

	/* The platform devices built, in order; pc_destroy_devices tears them down backwards. */
	struct vm_part parts[VM_MAX_PARTS];
	unsigned nr_parts;
};

/* Creates the VM, RAM, platform devices and vCPUs, and loads the kernel; logs and
 * returns -1 on failure (after which vm_destroy is still safe). */
/*
 * Checks what the configuration names without a VM (preflight.c): the kernel,
 * initrd and BIOS files.  Logs and returns -1 on the first problem.
 */
int vm_preflight(const struct vm_config *cfg);
/* The same for what needs the opened disks (a floppy's size), also before KVM. */
int vm_preflight_backends(const struct vm_config *cfg, struct block_dev *const *disks);

int vm_create(struct vm *vm, const struct kvm_host *host, const struct vm_config *cfg,
	      const struct vm_backends *backends);
int vm_start(struct vm *vm);

/* Thread-safe, from vCPUs, devices or the main loop: ends the run. */
void vm_request_stop(struct vm *vm, enum vm_stop reason, int status);

/*
 * From a vCPU thread: KVM cannot go on with this guest (an internal error,
 * an entry failure).  Parks every vCPU, as QEMU's vm_stop(RUN_STATE_INTERNAL_ERROR),
 * and wakes the main loop, which finds internal_error set; the VM stays for
 * the monitor to inspect until a reset or quit.
 */
void vm_internal_error(struct vm *vm);
/*
 * A disk's I/O error for the main loop (werror=/rerror=), from any thread:
 * wakes it with io_error set; stop also asks the vCPUs to park without
 * waiting for them (one may be the thread that hit the error).
 */
void vm_io_error(struct vm *vm, bool stop);

/*
 * -S, between vm_create and vm_start: the vCPU threads start but wait at
 * their start gate (vcpu_wait_runnable) until vm_resume (QMP cont).
 */
void vm_hold_vcpus(struct vm *vm);

/* Stops every vCPU outside KVM_RUN and waits until they are; vm_resume undoes it. */
void vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);
/* From a vCPU thread: asks every vCPU to park without waiting (gdb's debug exits). */
void vm_pause_async(struct vm *vm);
bool vm_is_paused(struct vm *vm);

/* Waits for every vCPU thread to finish, then frees everything. */
void vm_destroy(struct vm *vm);

uint64_t vm_exit_count(const struct vm *vm);

/* vcpu.c */
int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned index);
int vcpu_set_boot_state(struct vcpu *vcpu, uint32_t entry, uint32_t ebx, uint32_t esi);
/* The x86 power-on state: real mode at 0xf000:0xfff0 (CS base 0xffff0000). */
int vcpu_set_reset_state(struct vcpu *vcpu);
void *vcpu_thread(void *arg);
void vcpu_destroy(struct vcpu *vcpu);
void vcpu_dump_registers(struct vcpu *vcpu, FILE *out);
/* Parks the calling vCPU thread while the VM is paused. */
void vcpu_park(struct vcpu *vcpu);
/*
 * The gate before each KVM_RUN: waits while the VM is paused or held (-S);
 * true when the vCPU may run, false once the VM stops.
 */
bool vcpu_wait_runnable(struct vcpu *vcpu);

/* pc.c: the devices of the pc machine on the buses. */
int pc_create_devices(struct vm *vm);
/* Records a built platform device and its teardown (destroy may be NULL); -1 when full. */
int pc_add_part(struct vm *vm, void *dev, void (*destroy)(void *dev));
/* Whether dev (e.g. &vm->com1, &vm->pci) was built for this VM. */
bool pc_has_part(const struct vm *vm, const void *dev);
void pc_destroy_devices(struct vm *vm);
/* Presses the ACPI power button (QMP system_powerdown). */
void pc_power_button(struct vm *vm);
void pc_describe_mtree(struct vm *vm, FILE *out);
void pc_describe_qtree(struct vm *vm, FILE *out);

/* pc_legacy.c: RTC/CMOS, port 0x92, POST port, debug console; chipset functions. */
int pc_create_legacy(struct vm *vm);
int pc_create_chipset(struct vm *vm);
/* -usb and the USB devices (pc_usb.c); info usb's lines, false when there is no USB. */
int pc_create_usb(struct vm *vm);
bool pc_describe_usb(struct vm *vm, FILE *out);

/* pc_vga.c: a video card, cfg's -vga card when dev is NULL, else a -device VGA/bochs-display. */
int pc_create_vga(struct vm *vm, const struct device_config *dev);

/* pc_floppy.c: the FDC and ISA DMA, only when -fda/-fdb or if=floppy drives exist. */
int pc_create_floppy(struct vm *vm);

#endif
