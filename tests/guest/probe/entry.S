/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The probe's only kernel-mode (CPL0) code: PVH 32-bit entry -> long mode
 * -> iretq to CPL3.  On a PVM host CPL0 code runs in KVM's instruction
 * emulator (~2M instructions/s) while CPL3 runs natively, so everything
 * here is straight-line: the page tables, GDT and TSS are built by the
 * assembler, not by loops at run time.  There is no IDT: any exception is
 * a triple fault, which the VMM reports as a shutdown.
 */

#define MSR_EFER	0xc0000080
#define EFER_LME	(1 << 8)
#define CR0_PE		(1 << 0)
#define CR0_PG		(1 << 31)
#define CR4_PAE		(1 << 5)

#define PTE_P		(1 << 0)
#define PTE_RW		(1 << 1)
#define PTE_US		(1 << 2)	/* user: CPL3 does all the work */
#define PTE_PS		(1 << 7)	/* 2 MiB page in a PD entry */

/* GDT selectors; the order matters to nobody (no SYSCALL/SYSRET). */
#define SEL_KCODE	0x08
#define SEL_KDATA	0x10
#define SEL_UDATA	0x18
#define SEL_UCODE	0x20
#define SEL_TSS		0x28

#define RFLAGS_IF	(1 << 9)
#define RFLAGS_RSVD1	(1 << 1)

/* boot_cpuid[slot] = CPUID(leaf) as {eax, ebx, ecx, edx} */
.macro CPUID_SAVE leaf, slot
	movl	$\leaf, %eax
	xorl	%ecx, %ecx
	cpuid
	movl	%eax, boot_cpuid + \slot * 16 + 0
	movl	%ebx, boot_cpuid + \slot * 16 + 4
	movl	%ecx, boot_cpuid + \slot * 16 + 8
	movl	%edx, boot_cpuid + \slot * 16 + 12
.endm

/*
 * PVH boot: Xen's public/elfnote.h XEN_ELFNOTE_PHYS32_ENTRY (18), a 32-bit
 * physical entry address; descsz is 4, as Xen defines it.  (Linux emits
 * 8 bytes; QEMU 7.2 reads a size_t and truncates it to 32 bits.  A loader
 * should read descsz bytes.)
 */
	.section .note.Xen, "a", @note
	.balign 4
	.long	2f - 1f			/* namesz */
	.long	4f - 3f			/* descsz */
	.long	18			/* XEN_ELFNOTE_PHYS32_ENTRY */
1:	.asciz	"Xen"
2:	.balign 4
3:	.long	_start
4:

/*
 * Entry per the PVH ABI (Xen docs/misc/pvh.pandoc): 32-bit protected mode,
 * flat segments, paging off, %ebx = physical address of hvm_start_info.
 * %ebx is kept (in %ebp after CPUID) until it becomes main's argument.
 */
	.section .text.entry, "ax"
	.code32
/*
 * Multiboot2 header (Multiboot2 spec §3.1), for GRUB's "multiboot2" command:
 * magic, architecture 0 (i386 protected mode), length, checksum, then only
 * the end tag.  GRUB loads the ELF segments and enters at _start like PVH,
 * with %eax = 0x36d76289 and %ebx = its information.  (Multiboot v1 would
 * not do: QEMU's -kernel prefers a v1 header to the PVH note and refuses a
 * 64-bit ELF with one.)
 */
	.balign	8
mb2_header:
	.long	0xe85250d6
	.long	0
	.long	mb2_header_end - mb2_header
	.long	-(0xe85250d6 + 0 + (mb2_header_end - mb2_header))
	.word	0, 0			/* end tag: type 0, flags 0 */
	.long	8			/* size */
mb2_header_end:

	.globl	_start
_start:
	/* multiboot.c tells a Multiboot entry from PVH by this. */
	movl	%eax, boot_magic
	lgdt	gdt_desc
	/* Limit 0: a stray exception triple-faults instead of vectoring
	 * through whatever the firmware left in IDTR (the real-mode IVT). */
	lidt	idt_desc

	/* Exactly PAE: clears any SMEP/SMAP the firmware may have set,
	 * which would forbid this code (on user pages) from running. */
	movl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$pml4, %eax
	movl	%eax, %cr3

	/* Needs the VMM to have done KVM_SET_CPUID2 (long mode bit). */
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr

	movl	%cr0, %eax
	orl	$(CR0_PE | CR0_PG), %eax
	movl	%eax, %cr0
	ljmp	$SEL_KCODE, $start64

	.code64
start64:
	movl	$SEL_KDATA, %eax
	movl	%eax, %ss
	xorl	%eax, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %fs
	movl	%eax, %gs
	movl	$kstack_top, %esp

	/*
	 * A system descriptor scatters the base over three fields, which no
	 * relocation can express, so patch it in: five instructions.
	 */
	movl	$tss, %eax
	movw	%ax, gdt_tss + 2
	shrl	$16, %eax
	movb	%al, gdt_tss + 4
	movb	%ah, gdt_tss + 7
	movw	$SEL_TSS, %ax
	ltr	%ax

	/*
	 * PVM runs user mode with IF=1 whatever RFLAGS says, and kernel-mode
	 * interrupt entry is what hangs under emulation: mask both 8259s.
	 * The LAPIC needs nothing: its LVTs are masked at reset and the
	 * firmware's virtual-wire LINT0 only forwards the (masked) 8259.
	 */
	movb	$0xff, %al
	outb	%al, $0x21
	outb	%al, $0xa1

	/*
	 * PVM lets CPL3 execute CPUID natively, which answers with the host's
	 * values (vendor, hypervisor signature, APIC ID of the host CPU).  At
	 * CPL0 it is emulated from the VMM's KVM_SET_CPUID2 table, which is
	 * what the probe reports: take the three leaves it needs here.
	 */
	movl	%ebx, %ebp
	CPUID_SAVE 0x00000000, 0
	CPUID_SAVE 0x00000001, 1
	CPUID_SAVE 0x40000000, 2

	/* The kernel-mode scenario (cpl0.c), if the command line asks for it. */
	movl	%ebp, %edi
	call	probe_cpl0

	pushq	$(SEL_UDATA | 3)
	pushq	$ustack_top
	pushq	$(RFLAGS_IF | RFLAGS_RSVD1)
	pushq	$(SEL_UCODE | 3)
	pushq	$user_start
	movl	%ebp, %edi
	iretq

/* CPL3 from here on. The call aligns %rsp as the SysV ABI expects. */
	.text
user_start:
	call	probe_main
1:	pause
	jmp	1b

	.data
	.balign	16
gdt:
	.quad	0
	.quad	0x00af9a000000ffff	/* SEL_KCODE: 64-bit, DPL0 */
	.quad	0x00cf92000000ffff	/* SEL_KDATA: DPL0 */
	.quad	0x00cff2000000ffff	/* SEL_UDATA: DPL3 */
	.quad	0x00affa000000ffff	/* SEL_UCODE: 64-bit, DPL3 */
gdt_tss:				/* SEL_TSS: 16-byte system descriptor */
	.word	tss_end - tss - 1	/* limit 15:0 */
	.word	0			/* base 15:0, patched */
	.byte	0			/* base 23:16, patched */
	.byte	0x89			/* present, 64-bit TSS (available) */
	.byte	0			/* limit 19:16 = 0, G = 0 */
	.byte	0			/* base 31:24, patched */
	.long	0			/* base 63:32 */
	.long	0
gdt_end:

gdt_desc:
	.word	gdt_end - gdt - 1
	.quad	gdt
idt_desc:
	.word	0
	.quad	0

/*
 * 64-bit TSS (SDM vol. 3 §8.7).  PVM forces IOPL=0 in user mode, so port
 * I/O from CPL3 is granted by the I/O permission bitmap: all 65536 ports
 * allowed (zero bits), then the 0xff byte the CPU requires after it.
 */
	.balign	16
tss:
	.long	0
	.quad	kstack_top		/* rsp0: never used without an IDT */
	.quad	0, 0			/* rsp1, rsp2 */
	.quad	0
	.fill	7, 8, 0			/* ist1..7 */
	.quad	0
	.word	0
	.word	iomap - tss		/* 0x68 */
iomap:
	.fill	8192, 1, 0
	.byte	0xff
tss_end:

/*
 * Identity map of the first 4 GiB with 2 MiB pages, user and writable at
 * every level: enough for the image, all RAM of a small guest, the ACPI
 * tables QEMU puts in high RAM, and the MMIO below 4 GiB.
 */
	.section .data.pagetables, "aw"
	.balign	4096
pml4:
	.quad	pdpt + (PTE_P | PTE_RW | PTE_US)
	.fill	511, 8, 0
pdpt:
	.quad	pd + 0x0000 + (PTE_P | PTE_RW | PTE_US)
	.quad	pd + 0x1000 + (PTE_P | PTE_RW | PTE_US)
	.quad	pd + 0x2000 + (PTE_P | PTE_RW | PTE_US)
	.quad	pd + 0x3000 + (PTE_P | PTE_RW | PTE_US)
	.fill	508, 8, 0
pd:
	.set	pa, 0
	.rept	2048
	.quad	pa + (PTE_P | PTE_RW | PTE_US | PTE_PS)
	.set	pa, pa + 0x200000
	.endr

	.bss
	.balign	16
	.globl	boot_cpuid
boot_cpuid:
	.skip	3 * 16
kstack:
	.skip	4096
kstack_top:
ustack:
	.skip	65536
ustack_top:

	.section .note.GNU-stack, "", @progbits
