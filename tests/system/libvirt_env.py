"""Debian's libvirt 9.0 started for a test or a benchmark (issue #27), as its
README says: the system D-Bus, virtlogd and libvirtd, with user/group root in
/etc/libvirt/qemu.conf (/dev/kvm is 0600). libvirtd runs inside a network
namespace of its own, so no libvirt network it might autostart reaches the
host's. What this module starts it stops again; what already ran is left."""
import os
import shutil
import subprocess
import time
from pathlib import Path

QEMU_CONF = Path("/etc/libvirt/qemu.conf")
NETNS = "kestrel-libvirt"
URI = "qemu:///system"
CACHE = Path("/var/cache/libvirt/qemu/capabilities")


def available():
    """None when libvirt can run here, else why not."""
    if os.geteuid() != 0:
        return "libvirtd needs root"
    for tool in ("libvirtd", "virtlogd", "virsh", "dbus-daemon", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install-deps.sh installs libvirt)"
    return None


def virsh(*args, timeout=120):
    """(exit status, stdout, stderr) of one virsh command on the system URI."""
    p = subprocess.run(["virsh", "-c", URI, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def _running(name):
    return subprocess.run(["pgrep", "-x", name], capture_output=True).returncode == 0


def _root_in_qemu_conf():
    text = QEMU_CONF.read_text()
    lines = [ln.split("=")[0].strip() for ln in text.splitlines() if not ln.startswith("#")]
    add = [f'{key} = "root"' for key in ("user", "group") if key not in lines]
    if add:
        QEMU_CONF.write_text(text.rstrip("\n") + "\n" + "\n".join(add) + "\n")


class Libvirt:
    def __init__(self):
        self.started = []
        _root_in_qemu_conf()
        if not Path("/run/dbus/system_bus_socket").exists():
            os.makedirs("/run/dbus", exist_ok=True)
            subprocess.run(["dbus-daemon", "--system", "--fork"], check=True)
        if not _running("virtlogd"):
            subprocess.run(["virtlogd", "-d"], check=True)
            self.started.append("virtlogd")
        if not _running("libvirtd"):
            subprocess.run(["ip", "netns", "add", NETNS], check=True)
            subprocess.run(["ip", "netns", "exec", NETNS, "libvirtd", "-d"], check=True)
            self.started.append("libvirtd")
        deadline = time.monotonic() + 30
        while virsh("version", timeout=30)[0] != 0:
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("libvirtd did not answer within 30 s")
            time.sleep(0.2)

    def stop(self):
        for name in reversed(self.started):
            subprocess.run(["pkill", "-x", name])
            deadline = time.monotonic() + 15
            while _running(name) and time.monotonic() < deadline:
                time.sleep(0.1)
        if "libvirtd" in self.started:
            subprocess.run(["ip", "netns", "delete", NETNS])
        self.started = []


def cached_caps(binary):
    """The capabilities XML libvirtd cached for binary after probing it, or None."""
    for f in CACHE.glob("*.xml"):
        text = f.read_text()
        if f"<emulator>{binary}</emulator>" in text:
            return text
    return None


def reprobe(binary):
    """Makes libvirtd probe binary again at its next use: libvirt re-probes when
    the binary's ctime differs from the one it cached. A chmod to the same mode
    changes the ctime and nothing else (the mtime of a packaged binary stays)."""
    os.chmod(binary, os.stat(binary).st_mode)
