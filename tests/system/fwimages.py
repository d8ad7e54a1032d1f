"""Builds the firmware-boot test media from Debian's GRUB packages, without root
or loop devices: a disk image with an MBR, GRUB's boot.img and core.img in the
gap before the first partition, and a FAT partition (mtools) holding grub.cfg,
GRUB modules, a text file and the guest probe; and a grub-mkrescue ISO.

Used by tests/system/test_firmware.py and bench/firmware."""
import os
import shutil
import struct
import subprocess
from pathlib import Path

GRUB_DIR = Path("/usr/lib/grub/i386-pc")
HELLO = "hello from a file on the FAT partition"
DISK_MIB = 16
PART_START = 2048                 # sectors: the usual 1 MiB alignment, room for core.img
# Compiled into core.img (decompressed by GRUB at ring 0, which PVM hosts
# emulate slowly: keep it small).  The multiboot2 loader and its many
# dependencies are read from the FAT partition only when the probe is booted.
CORE_MODULES = ["biosdisk", "part_msdos", "fat", "normal", "serial", "terminal", "cat", "echo"]

GRUB_SERIAL = """serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
"""


def tools_missing():
    need = ["grub-mkimage", "grub-mkrescue", "xorriso", "mkfs.fat", "mcopy"]
    missing = [t for t in need if not shutil.which(t)]
    if not (GRUB_DIR / "boot.img").exists():
        missing.append("grub-pc-bin")
    return missing


def _deps():
    deps = {}
    for line in (GRUB_DIR / "moddep.lst").read_text().splitlines():
        name, _, rest = line.partition(":")
        deps[name] = rest.split()
    return deps


def _closure(mods):
    deps, seen, todo = _deps(), set(), list(mods)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += deps.get(m, [])
    return sorted(seen)


def grub_cfg(probe_args="probe=hello", timeout=1):
    return GRUB_SERIAL + f"""echo "grub: config read from $root"
cat /hello.txt
set timeout={timeout}
set default=0
menuentry 'kestrel guest probe' {{
  insmod multiboot2
  echo "grub: loading the probe"
  multiboot2 /probe.elf {probe_args}
  boot
}}
"""


def _run(argv):
    subprocess.run(argv, check=True, capture_output=True)


def make_disk(workdir, probe_elf, cfg=None):
    """Returns the path of a raw disk image that boots GRUB from its MBR."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "grub.cfg").write_text(cfg or grub_cfg())
    (work / "hello.txt").write_text(HELLO + "\n")
    core, part, disk = work / "core.img", work / "part.img", work / "disk.raw"
    _run(["grub-mkimage", "-O", "i386-pc", "-p", "(hd0,msdos1)/boot/grub", "-o", str(core),
          *CORE_MODULES])
    if part.exists():
        part.unlink()
    size = DISK_MIB << 20
    _run(["mkfs.fat", "-C", str(part), str((size - PART_START * 512) // 1024)])
    _run(["mmd", "-i", str(part), "::/boot", "::/boot/grub", "::/boot/grub/i386-pc"])
    _run(["mcopy", "-i", str(part), str(work / "grub.cfg"), "::/boot/grub/grub.cfg"])
    _run(["mcopy", "-i", str(part), str(work / "hello.txt"), "::/hello.txt"])
    _run(["mcopy", "-i", str(part), str(probe_elf), "::/probe.elf"])
    mods = [str(GRUB_DIR / f"{m}.mod") for m in _closure(["multiboot2"])]
    _run(["mcopy", "-i", str(part), *mods, "::/boot/grub/i386-pc/"])

    img = bytearray(size)
    boot = (GRUB_DIR / "boot.img").read_bytes()
    core_bytes = core.read_bytes()
    assert len(core_bytes) < (PART_START - 1) * 512, "core.img does not fit the MBR gap"
    # boot.img's code (the partition table is ours) loads sector 1, diskboot.img,
    # whose block list grub-mkimage already points at the following sectors.
    img[0:440] = boot[0:440]
    img[446:462] = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", 0x0e, b"\xfe\xff\xff",
                               PART_START, size // 512 - PART_START)
    img[510:512] = b"\x55\xaa"
    img[512:512 + len(core_bytes)] = core_bytes
    p = part.read_bytes()
    img[PART_START * 512:PART_START * 512 + len(p)] = p
    disk.write_bytes(img)
    return disk


def convert_qcow2(raw, img_tool):
    out = Path(raw).with_suffix(".qcow2")
    _run([str(img_tool), "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out)])
    return out


INSTALLER_MARKER = "grub-iso: installer running"


def installer_cfg(timeout=5):
    """An installer CD's menu: unless a key picks "Install" (the second entry),
    it boots the first hard disk after timeout seconds, by chainloading its MBR."""
    return GRUB_SERIAL + f"""echo "grub-iso: installer CD menu"
set timeout={timeout}
set default=0
menuentry 'Boot from first hard disk' {{
  set root=(hd0)
  chainloader +1
  boot
}}
menuentry 'Install' {{
  echo "{INSTALLER_MARKER}"
  reboot
}}
"""


def make_iso(workdir, marker="grub-iso: booted from the CD-ROM", then="reboot",
             installer=False):
    """A grub-mkrescue ISO whose GRUB prints marker, then runs `then`; with
    installer=True, one with installer_cfg()'s menu instead (cd-installer.iso)."""
    work = Path(workdir)
    tree = work / ("isotree-installer" if installer else "isotree")
    (tree / "boot" / "grub").mkdir(parents=True, exist_ok=True)
    cfg = installer_cfg() if installer else GRUB_SERIAL + f'echo "{marker}"\n{then}\n'
    (tree / "boot" / "grub" / "grub.cfg").write_text(cfg)
    iso = work / ("cd-installer.iso" if installer else "cd.iso")
    _run(["grub-mkrescue", "-o", str(iso), str(tree)])
    return iso


if __name__ == "__main__":
    import sys
    d = make_disk(sys.argv[1], sys.argv[2])
    print(d, make_iso(sys.argv[1]))
