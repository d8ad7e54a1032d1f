"""Firmware boot (issue #7): SeaBIOS from Debian's seabios package, GRUB disks
and a grub-mkrescue ISO built here from Debian's GRUB packages, booted from IDE
(-hda, -cdrom) and virtio-blk, raw and qcow2, under kestrel and, with the same
images and disk options, QEMU 7.2.

GRUB runs at ring 0, which PVM hosts emulate (~2M instructions/s): one GRUB
boot takes 30-40 s on them under either VMM, so each boot here checks as much
as it can (menu, a file read from the FAT partition, the probe it loads)."""
import shutil
import subprocess

import pytest

import fwimages
from conftest import BUILD, KESTREL, QEMU, need_qemu

GRUB_TIMEOUT = 240
KIMG = BUILD / "src" / "block" / "kestrel-img"
# The reference peer without the devices kestrel lacks (VGA, e1000 and its iPXE ROM).
QEMU_PC = [*QEMU, "-M", "pc", "-vga", "none", "-net", "none"]
VMMS = ["kestrel", pytest.param("qemu", marks=pytest.mark.qemu)]


def vmm(name, *args):
    if name == "qemu":
        need_qemu()
        return [*QEMU_PC, "-nographic", "-m", "128", *args]
    return [str(KESTREL), "-nographic", "-m", "128", *args]


@pytest.fixture(scope="module")
def media(tmp_path_factory, probe):
    missing = fwimages.tools_missing()
    if missing:
        pytest.fail("missing " + ", ".join(missing) + " (scripts/install-deps.sh installs them)")
    work = tmp_path_factory.mktemp("fw")
    raw = fwimages.make_disk(work, probe)
    return {
        "raw": raw,
        "qcow2": fwimages.convert_qcow2(raw, KIMG),
        "iso": fwimages.make_iso(work),
        "installer": fwimages.make_iso(work, installer=True),
    }


@pytest.mark.guest
@pytest.mark.parametrize("which", VMMS)
def test_seabios_banner_and_boot_menu(session, which):
    """No -kernel: SeaBIOS runs from the reset vector, prints its banner on COM1
    (sercon) and, with menu=on, its boot menu, which answers ESC typed on COM1."""
    s = session(vmm(which, "-boot", "menu=on,splash-time=5000"))
    s.expect(r"SeaBIOS \(version [^)]+\)", timeout=30)
    s.expect(r"Press ESC for boot menu", timeout=30)
    s.send(b"\x1b")
    s.expect(r"Select boot device", timeout=30)


def test_bios_option_and_errors(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\0" * 1000)
    p = subprocess.run([str(KESTREL), "-nographic", "-bios", str(bad)], capture_output=True,
                       timeout=10)
    assert p.returncode != 0
    assert b"not a multiple of 64 KiB" in p.stderr
    p = subprocess.run([str(KESTREL), "-nographic", "-bios", str(tmp_path / "none.bin")],
                       capture_output=True, timeout=10)
    assert p.returncode != 0 and b"none.bin" in p.stderr
    for arg in ["order=xyz", "once=q", "menu=maybe", "splash-time=-5", "bogus=1"]:
        p = subprocess.run([str(KESTREL), "-nographic", "-boot", arg], capture_output=True,
                           timeout=10)
        assert p.returncode != 0, arg
        assert b"-boot" in p.stderr, arg


@pytest.mark.guest
def test_debugcon_gets_seabios_log(session, tmp_path):
    log = tmp_path / "debugcon.log"
    s = session(vmm("kestrel", "-debugcon", f"file:{log}"))
    s.expect(r"No bootable device", timeout=30)
    s.kill()
    text = log.read_text(errors="replace")
    assert "Found QEMU fw_cfg" in text
    assert "QEMU fw_cfg DMA interface supported" in text
    # Kestrel's own ACPI tables, installed by SeaBIOS from etc/table-loader.
    assert "table(50434146)" in text


def grub_boot(s, probe_expected):
    s.expect(r"grub: config read from", timeout=GRUB_TIMEOUT)
    s.expect(fwimages.HELLO, timeout=60)
    s.expect(r"GNU GRUB", timeout=60)
    if probe_expected:
        s.expect(r"probe: boot: multiboot2", timeout=120)
        s.expect(r"probe: PASS", timeout=30)
        s.expect(r"probe: poweroff", timeout=30)


@pytest.mark.guest
@pytest.mark.parametrize("which", VMMS)
def test_grub_from_hda_raw_boots_the_probe(session, media, which):
    """-hda raw: SeaBIOS -> GRUB's MBR and core.img (ATA PIO) -> grub.cfg and a
    file from the FAT partition -> the menu -> the probe by Multiboot2 -> PASS."""
    s = session(vmm(which, "-hda", str(media["raw"])))
    grub_boot(s, probe_expected=True)
    assert s.wait(timeout=30) == 0 if which == "kestrel" else True


@pytest.mark.guest
@pytest.mark.parametrize("which", VMMS)
def test_grub_from_virtio_qcow2(session, media, which):
    s = session(vmm(which, "-drive", f"file={media['qcow2']},format=qcow2,if=virtio"))
    grub_boot(s, probe_expected=False)


@pytest.mark.guest
@pytest.mark.parametrize("fmt,iface", [("qcow2", "ide"), ("raw", "virtio")])
def test_grub_other_disk_combinations(session, media, fmt, iface):
    s = session(vmm("kestrel", "-drive", f"file={media[fmt]},format={fmt},if={iface}"))
    grub_boot(s, probe_expected=False)


@pytest.mark.guest
def test_cdrom_boots_once_then_the_disk(session, media):
    """-boot once=d: the first boot is the grub-mkrescue ISO on the ATAPI CD-ROM
    (its GRUB reboots), the reset goes back to order=c and boots the disk.
    (Kestrel only: the installer test below runs the CD path under QEMU too.)"""
    s = session(vmm("kestrel", "-hda", str(media["raw"]), "-cdrom", str(media["iso"]),
                    "-boot", "order=c,once=d"))
    s.expect(r"grub-iso: booted from the CD-ROM", timeout=GRUB_TIMEOUT)
    s.expect(r"SeaBIOS \(version", timeout=60)
    s.expect(r"Booting from Hard Disk", timeout=30)
    s.expect(r"grub: config read from", timeout=GRUB_TIMEOUT)
    assert s.output.count(b"grub-iso: booted") == 1


def second(pattern):
    """A regex for the second occurrence of pattern in the whole output."""
    return rf"(?s){pattern}.*?{pattern}"


@pytest.mark.guest
@pytest.mark.parametrize("which", VMMS)
def test_installer_cd_with_order_dc_once_d(session, media, which):
    """The issue's Windows XP scenario, -boot order=dc,once=d with an installer CD:
    the first boot runs the CD's GRUB menu and a key (Ctrl-N, Enter) picks
    "Install", which reboots; SeaBIOS boots the CD again (order=dc), nobody
    answers, and the menu's default entry chainloads the hard disk's MBR, whose
    GRUB reads its config from the disk."""
    s = session(vmm(which, "-hda", str(media["raw"]), "-cdrom", str(media["installer"]),
                    "-boot", "order=dc,once=d"))
    s.expect(r"Booting from DVD/CD", timeout=30)
    s.expect(r"executed automatically in", timeout=GRUB_TIMEOUT)
    s.send(b"\x0e")      # Ctrl-N: the next menu entry, "Install"
    s.send(b"\r")
    s.expect(fwimages.INSTALLER_MARKER, timeout=60)
    # The guest's reboot: SeaBIOS again, and the CD first again, with its menu.
    s.expect(second(r"SeaBIOS \(version"), timeout=60)
    s.expect(second(r"Booting from DVD/CD"), timeout=30)
    s.expect(second(r"executed automatically in"), timeout=GRUB_TIMEOUT)
    # The default entry after the timeout: the disk's boot sector, then its GRUB.
    s.expect(r"grub: config read from hd0,msdos1", timeout=GRUB_TIMEOUT)
    s.expect(fwimages.HELLO, timeout=60)
    out = s.text()
    assert out.count(fwimages.INSTALLER_MARKER) == 1
    assert out.count("Booting from DVD/CD") == 2
    assert "Booting from Hard Disk" not in out   # GRUB chainloaded it, not SeaBIOS


@pytest.mark.guest
@pytest.mark.parametrize("which", VMMS)
def test_bootindex_orders_the_boot_menu(session, media, which):
    """bootindex= on virtio-blk-pci and ide-cd goes to fw_cfg "bootorder"; SeaBIOS
    lists those devices first, in that order, ahead of the -hda disk."""
    s = session(vmm(which, "-boot", "menu=on,splash-time=5000",
                    "-drive", f"if=none,id=cd,file={media['iso']},media=cdrom",
                    "-device", "ide-cd,drive=cd,bus=ide.1,unit=0,bootindex=1",
                    "-drive", f"if=none,id=vd,file={media['qcow2']},format=qcow2",
                    "-device", "virtio-blk-pci,drive=vd,bootindex=0",
                    "-hda", str(media["raw"])))
    s.expect(r"Press ESC for boot menu", timeout=30)
    s.send(b"\x1b")
    s.expect(r"1\. Virtio disk PCI:[0-9a-f:.]+\s+2\. DVD/CD \[ata1-0[^\n]*\s+3\. ata0-0", timeout=30)


@pytest.mark.guest
def test_numa_tables_reach_a_firmware_booted_guest(session, tmp_path, probe):
    """-numa under SeaBIOS: the SRAT/SLIT go through the table loader with the rest of
    kestrel's ACPI, and the probe, booted by GRUB, finds both nodes."""
    disk = fwimages.make_disk(tmp_path, probe, cfg=fwimages.grub_cfg("probe=numa"))
    s = session([str(KESTREL), "-nographic", "-m", "512m", "-hda", str(disk), "-smp", "2",
                 "-object", "memory-backend-ram,id=m0,size=256M",
                 "-object", "memory-backend-ram,id=m1,size=256M",
                 "-numa", "node,nodeid=0,cpus=0,memdev=m0",
                 "-numa", "node,nodeid=1,cpus=1,memdev=m1", "-numa", "dist,src=0,dst=1,val=21"])
    s.expect(r"probe: boot: multiboot2", timeout=GRUB_TIMEOUT + 120)
    s.expect(r"probe: numa: nodes 2", timeout=30)
    s.expect(r"probe: numa: slit 0: 10 21", timeout=30)
    s.expect(r"probe: PASS", timeout=30)
