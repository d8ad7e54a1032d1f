"""libvirt 9.0 drives Kestrel through its own QEMU driver (issue #27).

libvirtd probes every <emulator> binary before it accepts a domain for it
(`-S -no-user-config -nodefaults -nographic -machine none,accel=kvm:tcg -qmp …
-pidfile … -daemonize`, then a series of QMP queries) and caches what it learnt.
Each test runs the same step with QEMU 7.2 as the emulator and compares."""
import re
import subprocess
import uuid

import pytest

import libvirt_env
from conftest import HAVE_KVM, KESTREL, PROBE

QEMU_BIN = "/usr/bin/qemu-system-x86_64"

pytestmark = pytest.mark.skipif(libvirt_env.available() is not None,
                                reason=str(libvirt_env.available()))


@pytest.fixture(scope="module")
def libvirt():
    lv = libvirt_env.Libvirt()
    yield lv
    lv.stop()


def domcaps(binary):
    return libvirt_env.virsh("domcapabilities", "--emulatorbin", binary, "--arch", "x86_64",
                             "--virttype", "kvm")


def same_error(k, q, names=()):
    """Kestrel's virsh error is QEMU's with the binary's path (and names) changed."""
    text = k[2].replace(str(KESTREL), QEMU_BIN)
    for kname, qname in names:
        text = text.replace(kname, qname)
    return text == q[2]


def flags(caps):
    return set(re.findall(r"<flag name='([^']+)'/>", caps))


def test_probe_succeeds_as_for_qemu(libvirt):
    for binary in (str(KESTREL), QEMU_BIN):
        libvirt_env.reprobe(binary)
    k, q = domcaps(KESTREL), domcaps(QEMU_BIN)
    assert "probe" not in k[2].lower(), k[2]
    if HAVE_KVM:
        assert k[0] == q[0] == 0, (k[2], q[2])
        assert "<domain>kvm</domain>" in k[1] and f"<path>{KESTREL}</path>" in k[1]
    else:
        # libvirt read Kestrel's answers and concluded: no KVM in use here, and (no
        # tcg-accel in qom-list-types) no TCG either.  QEMU has TCG, so libvirt names
        # only the missing accelerator for it.
        assert k[0] == q[0] == 1, (k[2], q[2])
        assert k[2].endswith(f"invalid argument: Emulator '{KESTREL}' does not support "
                             "virt type 'kvm'\n"), k[2]
        assert q[2].endswith(f"the accel 'kvm' is not supported by '{QEMU_BIN}' on this "
                             "host\n"), q[2]
    caps = libvirt_env.cached_caps(KESTREL)
    assert caps is not None, "libvirtd cached no capabilities for kestrel"


def test_cached_capabilities_claim_nothing_qemu_lacks(libvirt):
    domcaps(KESTREL)
    domcaps(QEMU_BIN)
    k, q = libvirt_env.cached_caps(KESTREL), libvirt_env.cached_caps(QEMU_BIN)
    assert k is not None and q is not None
    assert flags(k) <= flags(q), sorted(flags(k) - flags(q))
    assert "<arch>x86_64</arch>" in k
    machines = re.findall(r"<machine [^>]*name='([^']+)'[^>]*alias='pc'[^>]*default='yes'", k)
    assert len(machines) == 1, "no default machine with the alias pc"
    listed = subprocess.run([str(KESTREL), "-machine", "help"], capture_output=True,
                            text=True).stdout
    assert machines[0] in listed


def test_probe_leaves_no_process_behind(libvirt):
    libvirt_env.reprobe(str(KESTREL))
    domcaps(KESTREL)
    left = subprocess.run(["pgrep", "-f", f"^{KESTREL} -S -no-user-config"],
                          capture_output=True, text=True).stdout
    assert left == "", left


def domain_xml(binary, name):
    return f"""<domain type='kvm'>
  <name>{name}</name>
  <uuid>{uuid.uuid4()}</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{PROBE}</kernel></os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>{binary}</emulator>
    <serial type='pty'/>
    <memballoon model='virtio'/>
  </devices>
</domain>
"""


def define(tmp_path, binary, name):
    (tmp_path / name).mkdir(exist_ok=True)
    xml = tmp_path / name / "domain.xml"
    xml.write_text(domain_xml(binary, name))
    return libvirt_env.virsh("define", xml)


def test_define_answers_as_for_qemu(libvirt, tmp_path):
    k = define(tmp_path, KESTREL, "kestrel-define")
    q = define(tmp_path, QEMU_BIN, "qemu-define")
    try:
        if HAVE_KVM:
            assert k[0] == q[0] == 0, (k[2], q[2])
        else:
            # libvirt refuses both alike: neither binary can run a KVM guest here.
            assert k[0] == q[0] == 1, (k[2], q[2])
            assert same_error(k, q, [("kestrel-define", "qemu-define")]), (k[2], q[2])
    finally:
        for name in ("kestrel-define", "qemu-define"):
            libvirt_env.virsh("undefine", name)


@pytest.mark.guest
def test_start_list_destroy_as_for_qemu(libvirt, tmp_path):
    out = {}
    for binary, name in ((KESTREL, "kestrel-life"), (QEMU_BIN, "qemu-life")):
        assert define(tmp_path, binary, name)[0] == 0
        try:
            steps = [libvirt_env.virsh("start", name), libvirt_env.virsh("domstate", "--reason", name),
                     libvirt_env.virsh("suspend", name), libvirt_env.virsh("domstate", name),
                     libvirt_env.virsh("resume", name), libvirt_env.virsh("destroy", name),
                     libvirt_env.virsh("domstate", "--reason", name)]
            out[binary] = [(rc, o.replace(name, "NAME")) for rc, o, _ in steps]
        finally:
            libvirt_env.virsh("destroy", name)
            libvirt_env.virsh("undefine", name)
    assert out[KESTREL] == out[QEMU_BIN]
