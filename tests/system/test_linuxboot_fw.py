"""BIOS-mediated Linux boot (issue #7): -kernel/-initrd/-append together with an
explicit -bios go through the firmware, as on QEMU's pc machine.  Kestrel hands
the patched setup header, the kernel, the initrd and the command line over
fw_cfg and registers QEMU's linuxboot_dma.bin (Debian's qemu-system-data) as
"genroms/linuxboot_dma.bin" with boot priority 0; SeaBIOS runs it ("Booting
from ROM..."), it copies everything into place and enters the kernel's
real-mode setup code.  Without -bios kestrel keeps its direct boot
(test_linux_boot.py).

On this PVM host Linux stops at its first kernel-mode interrupt, so the tests
assert on the early boot log, which shows what the firmware path decided: the
exact command line, the e820 map as SeaBIOS builds it, and the initrd where
linuxboot_dma.bin puts it.  The same command line runs under QEMU 7.2."""
import re
import struct
import subprocess
import time

import pytest

from conftest import KESTREL, QEMU, host_has_hw_virt, need_qemu

SEABIOS = "/usr/share/seabios/bios-256k.bin"
APPEND = "console=ttyS0 earlyprintk=serial noxsave panic=-1 kestrel.test=fw-linuxboot"
TIMEOUT = 420
MIB = 1 << 20


def vmm(which, *args):
    if which == "qemu":
        need_qemu()
        return [*QEMU, "-M", "pc", "-vga", "none", "-net", "none", *args]
    return [str(KESTREL), *args]


def e820_ranges(lines):
    """[(start, end, kind)] from Linux's "BIOS-e820: [mem A-B] kind" lines."""
    out = []
    for l in lines:
        m = re.search(r"BIOS-e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] (\w+)", l)
        if m:
            out.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
    return out


def check_seabios_e820(e820, ram):
    """The map SeaBIOS builds from etc/e820: its EBDA and F-segment below 1 MiB,
    RAM up to its own high tables, KVM's private pages and the BIOS ROM."""
    fixed = [(0, 0x9fbff, "usable"), (0x9fc00, 0x9ffff, "reserved"),
             (0xf0000, 0xfffff, "reserved")]
    assert e820[:3] == fixed, e820
    start, top, kind = e820[3]
    assert (start, kind) == (0x100000, "usable"), e820
    # SeaBIOS keeps what its tables use at the top of RAM (at most 256 KiB).
    assert e820[4] == (top + 1, ram - 1, "reserved"), e820
    assert ram - 256 * 1024 <= top + 1 < ram, e820
    assert e820[5:7] == [(0xfeffc000, 0xfeffffff, "reserved"),
                         (0xfffc0000, 0xffffffff, "reserved")], e820
    # QEMU 7.2 adds AMD's HyperTransport hole (0xfd00000000) on AMD hosts;
    # nothing else may follow.
    assert all(s >= 1 << 32 for s, _, _ in e820[7:]), e820
    return top


def boot(session, which, linux_guest):
    s = session(vmm(which, "-m", "128m", "-smp", "2", "-nographic", "-no-reboot",
                    "-bios", SEABIOS, "-kernel", str(linux_guest / "bzImage"),
                    "-initrd", str(linux_guest / "initramfs.cpio"), "-append", APPEND))
    start = time.monotonic()
    s.expect(r"Booting from ROM", timeout=60)
    if host_has_hw_virt():
        s.expect(r"kestrel-guest: init reached", timeout=TIMEOUT)
        level = "init (full boot)"
    else:
        s.expect(r"Memory: \d+K/\d+K available", timeout=TIMEOUT)
        level = "early boot log (PVM host)"
    return s, level, time.monotonic() - start


@pytest.mark.guest
@pytest.mark.linux
@pytest.mark.parametrize("which", ["kestrel", pytest.param("qemu", marks=pytest.mark.qemu)])
def test_bios_mediated_linux_boot(linux_guest, session, which, record_property):
    s, level, seconds = boot(session, which, linux_guest)
    log = s.text()
    lines = [l.strip() for l in log.replace("\r", "").splitlines()]

    def has(pattern):
        return any(re.search(pattern, l) for l in lines)

    # SeaBIOS ran the loader ROM (bootorder's first entry), not a disk.
    assert "SeaBIOS (version" in log
    assert has(r"Command line: " + re.escape(APPEND) + "$"), "the exact -append text"
    assert has(r"Kernel command line: " + re.escape(APPEND) + "$")
    top = check_seabios_e820(e820_ranges(lines), 128 * MIB)

    # linuxboot_dma.bin moves the initrd to the top of RAM as int 15h/e801
    # reports it (64 KiB units), whole pages; Linux says where it found it.
    m = re.search(r"RAMDISK: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]", log)
    assert m, "the initrd was not found"
    rd_start, rd_end = int(m.group(1), 16), int(m.group(2), 16)
    size = (linux_guest / "initramfs.cpio").stat().st_size
    assert rd_end + 1 - rd_start == (size + 4095) & ~4095
    assert rd_end + 1 == (top + 1) & ~0xffff, hex(rd_end)

    # SeaBIOS's own tables: the MP table in the F-segment, and ACPI (kestrel's
    # through the table loader, placed by SeaBIOS too).
    assert has(r"found SMP MP-table at \[mem 0x000f[0-9a-f]{4}-")
    oem = "KESTRL" if which == "kestrel" else "BOCHS"
    assert has(rf"ACPI: RSDP 0x00000000000F[0-9A-F]{{4}} [0-9A-F]{{6}} \(v0\d {oem}")
    assert has(r"smpboot: Allowing 2 CPUs, 0 hotplug CPUs")
    total = int(re.search(r"Memory: \d+K/(\d+)K available", log).group(1))
    assert 126 * 1024 <= total <= 128 * 1024, total
    record_property("level", f"{level}, {seconds:.0f} s")


# Real-mode setup code for a fake bzImage: prints the string at cmd_line_ptr
# (segment 0x2000) on COM1 and halts.  Linux's setup starts with a short jump
# at 0x200 over the header; ours lands at 0x280.
SETUP_STUB = bytes([
    0xB8, 0x00, 0x20,   # mov ax, 0x2000
    0x8E, 0xD8,         # mov ds, ax
    0x31, 0xF6,         # xor si, si
    0xBA, 0xF8, 0x03,   # mov dx, 0x3f8
    0xAC,               # 1: lodsb
    0x84, 0xC0,         # test al, al
    0x74, 0x03,         # jz 2f
    0xEE,               # out dx, al
    0xEB, 0xF8,         # jmp 1b
    0xFA,               # 2: cli
    0xF4,               # hlt
    0xEB, 0xFC,         # jmp 2b
])


def fake_bzimage(path, size=64 * 1024):
    """A setup header (protocol 2.15, loaded high) and SETUP_STUB."""
    img = bytearray(size)
    img[0x1f1] = 27
    struct.pack_into("<H", img, 0x1fe, 0xAA55)
    img[0x200:0x202] = bytes([0xEB, 0x280 - 0x202])
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, 0x20F)
    img[0x211] = 0x01
    struct.pack_into("<I", img, 0x22C, 0x7FFFFFFF)
    struct.pack_into("<I", img, 0x238, 2048)
    struct.pack_into("<I", img, 0x260, 4 * MIB)
    img[0x280:0x280 + len(SETUP_STUB)] = SETUP_STUB
    path.write_bytes(bytes(img))
    return path


def run_kestrel(*args):
    return subprocess.run([str(KESTREL), "-nographic", "-no-reboot", *args],
                          capture_output=True, timeout=30)


def test_bad_kernels_under_bios_fail_clearly(tmp_path, probe):
    # A PVH ELF boots directly, but the firmware path takes only bzImages.
    p = run_kestrel("-bios", SEABIOS, "-kernel", probe)
    assert p.returncode != 0
    assert b"not a Linux bzImage" in p.stderr, p.stderr

    # An initrd larger than the RAM it may go to, with QEMU's numbers.
    kernel = fake_bzimage(tmp_path / "bzImage")
    initrd = tmp_path / "initrd"
    with open(initrd, "wb") as f:
        f.truncate(40 * MIB)
    p = run_kestrel("-m", "32m", "-bios", SEABIOS, "-kernel", str(kernel),
                    "-initrd", str(initrd))
    assert p.returncode != 0
    assert b"initrd is too large (max: 33390591, need 41943040)" in p.stderr, p.stderr

    # Too long for the kernel's cmdline_size.
    p = run_kestrel("-bios", SEABIOS, "-kernel", str(kernel), "-append", "x" * 3000)
    assert p.returncode != 0
    assert b"this kernel accepts at most 2048" in p.stderr, p.stderr

    p = run_kestrel("-bios", SEABIOS, "-kernel", str(kernel), "-append", "vga=bogus")
    assert p.returncode != 0
    assert b"invalid 'vga=' kernel parameter" in p.stderr, p.stderr


@pytest.mark.guest
@pytest.mark.parametrize("which", ["kestrel", pytest.param("qemu", marks=pytest.mark.qemu)])
def test_loader_rom_enters_the_setup_code(session, tmp_path, which):
    """The whole hand-over in seconds, without Linux: SeaBIOS boots the loader ROM
    first (bootorder), which copies the setup code and the command line through
    fw_cfg DMA and enters the setup code, which prints the command line it finds
    at cmd_line_ptr."""
    kernel = fake_bzimage(tmp_path / "bzImage")
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"initrd" * 1000)
    append = "fake-setup: the command line at cmd_line_ptr"
    s = session(vmm(which, "-nographic", "-no-reboot", "-m", "64m", "-bios", SEABIOS,
                    "-kernel", str(kernel), "-initrd", str(initrd), "-append", append))
    s.expect(r"Booting from ROM", timeout=60)
    s.expect(re.escape(append), timeout=30)
