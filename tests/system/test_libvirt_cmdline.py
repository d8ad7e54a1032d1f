"""Issue #27: the command line libvirt 9.0 generates at start for a QEMU
7.2-class x86_64 binary (from libvirt's tests/qemuxml2argvdata/*x86_64-latest.args
and a domain virt-install makes: no <graphics>).  Kestrel must read all of it;
on a host without /dev/kvm the run then stops at opening KVM, which is the pass
condition here.  The guest variant boots the probe on the same line."""
import json
import subprocess

import pytest

from conftest import HAVE_KVM, KESTREL, kestrel

SECRET = {"qom-type": "secret", "id": "masterKey0", "format": "raw"}


def libvirt_line(tmp_path, serial="pty", probe=None):
    disk = tmp_path / "vm1.qcow2"
    if not disk.exists():
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    key = tmp_path / "master-key.aes"
    key.write_bytes(b"0123456789abcdef0123456789abcdef")
    j = json.dumps
    args = [
        "-name", "guest=vm1,debug-threads=on",
        "-object", j({**SECRET, "file": str(key)}),
        "-machine", "pc-i440fx-7.2,usb=off,vmport=off,dump-guest-core=off,"
                    "memory-backend=pc.ram,hpet=off",
        "-accel", "kvm",
        "-cpu", "qemu64",
        "-m", "128",
        "-object", j({"qom-type": "memory-backend-ram", "id": "pc.ram", "size": 134217728}),
        "-overcommit", "mem-lock=off",
        "-smp", "1,sockets=1,cores=1,threads=1",
        "-uuid", "c7a5fdbd-edaf-9455-926a-d65c16db1809",
        "-display", "none",
        "-nodefaults",
        "-rtc", "base=utc,driftfix=slew",
        "-global", "kvm-pit.lost_tick_policy=delay",
        "-no-hpet",
        "-no-shutdown",
        "-global", "PIIX4_PM.disable_s3=1",
        "-global", "PIIX4_PM.disable_s4=1",
        "-boot", "strict=on",
        "-blockdev", j({"driver": "file", "filename": str(disk),
                        "node-name": "libvirt-1-storage", "auto-read-only": True,
                        "discard": "unmap"}),
        "-blockdev", j({"node-name": "libvirt-1-format", "read-only": False, "driver": "qcow2",
                        "file": "libvirt-1-storage", "backing": None}),
        "-device", j({"driver": "virtio-blk-pci", "bus": "pci.0", "addr": "0x4",
                      "drive": "libvirt-1-format", "id": "virtio-disk0", "bootindex": 1}),
        "-netdev", j({"type": "user", "id": "hostnet0"}),
        "-device", j({"driver": "virtio-net-pci", "netdev": "hostnet0", "id": "net0",
                      "mac": "52:54:00:6b:3c:58", "bus": "pci.0", "addr": "0x3"}),
        "-chardev", f"{serial},id=charserial0",
        "-device", j({"driver": "isa-serial", "chardev": "charserial0", "id": "serial0",
                      "index": 0}),
        "-audiodev", j({"id": "audio1", "driver": "none"}),
        "-device", j({"driver": "virtio-balloon-pci", "id": "balloon0", "bus": "pci.0",
                      "addr": "0x5"}),
    ]
    if probe:
        args += ["-kernel", probe]
    return args


# With /dev/kvm the line would start a guest: the guest variant below covers that host.
ONLY_WITHOUT_KVM = pytest.mark.skipif(HAVE_KVM, reason="this host has /dev/kvm: the guest "
                                      "variant boots the line instead")


@ONLY_WITHOUT_KVM
def test_libvirt_start_line_parses_up_to_kvm(tmp_path):
    status, out, err = kestrel(*libvirt_line(tmp_path, serial="null"))
    assert status != 0
    assert "/dev/kvm does not exist" in err, err
    assert err.count("kestrel:") == 1, err  # that was the only complaint


@ONLY_WITHOUT_KVM
def test_libvirt_probe_time_options_too(tmp_path):
    """-S, -msg, -no-user-config are H-probe's (issue #27): checked once accepted."""
    status, _, _ = kestrel("-S", "-msg", "timestamp=on", "-no-user-config", "-version")
    if status != 0:
        pytest.skip("kestrel does not take -S/-msg/-no-user-config yet")
    status, _, err = kestrel("-S", "-no-user-config", *libvirt_line(tmp_path, serial="null"),
                             "-msg", "timestamp=on")
    assert status != 0 and "/dev/kvm does not exist" in err, err


@pytest.mark.parametrize("args, message", [
    (["-machine", "pc,usb=maybe"], "Parameter 'usb' expects 'on' or 'off'"),
    (["-machine", "pc,vmport=maybe"], "Parameter 'vmport' does not accept value 'maybe'"),
    (["-machine", "pc,vmport=on"], "vmport=on is not supported"),
    (["-machine", "pc,hpet=maybe"], "Parameter 'hpet' expects 'on' or 'off'"),
    (["-machine", "pc,hpet=on"], "hpet=on is not supported"),
    (["-machine", "pc,dump-guest-core=maybe"], "dump-guest-core= takes on or off"),
    (["-global", "kvm-pit.lost_tick_policy=bogus"],
     "Parameter 'lost_tick_policy' does not accept value 'bogus'"),
    (["-global", "PIIX4_PM.disable_s3=x"], "Parameter 'disable_s3' expects uint64"),
    (["-global", "PIIX4_PM.disable_s3=0"], "offer no S3 sleep state"),
    (["-global", "PIIX4_PM.disable_s4=0"], "offer no S4 sleep state"),
    (["-rtc", "base=bogus"], "invalid datetime format"),
    (["-rtc", "clock=bogus"], "invalid option value 'bogus'"),
    (["-rtc", "driftfix=bogus"], "invalid option value 'bogus'"),
    (["-rtc", "base=utc,foo=1"], "Invalid parameter 'foo'"),
    (["-audiodev", "none"], "Parameter 'id' is missing"),
    (["-audiodev", "bogus,id=a"], "Parameter 'driver' does not accept value 'bogus'"),
    (["-audiodev", "none,id=a,foo=1"], "Parameter 'foo' is unexpected"),
    (["-audiodev", '{"id":"a","driver":"bogus"}'],
     "Parameter 'driver' does not accept value 'bogus'"),
    (["-machine", "pc,acpi=maybe"], "Parameter 'acpi' does not accept value 'maybe'"),
    (["-machine", "pc,acpi=off"], "acpi=off is not supported"),
    (["-boot", "strict=maybe"], "Parameter 'boot.strict' expects 'on' or 'off'"),
    (["-smbios", "type=1,serial=x"], "SMBIOS tables are not supported"),
    (["-cpu", "bogus"], "unable to find CPU model 'bogus'"),
    (["-cpu", "host,migratable=maybe"], "Parameter 'migratable' expects 'on' or 'off'"),
    (["-device", "{bad"], "JSON parse error, invalid keyword 'bad'"),
    (["-object", "{bad"], "JSON parse error, invalid keyword 'bad'"),
    # The error shows the argument as given, JSON and all, as QEMU's do.
    (["-device", '{"driver":"virtio-balloon-pci","foo":1}'],
     '-device {"driver":"virtio-balloon-pci","foo":1}: Invalid parameter \'foo\''),
])
def test_bad_values_are_refused_as_qemu_refuses_them(args, message):
    status, _, err = kestrel(*args, "-kernel", "/nonexistent")
    assert status != 0
    assert message in err, err


@pytest.mark.guest
def test_libvirt_start_line_boots_the_probe(tmp_path, probe, session):
    vm = session([str(KESTREL), *libvirt_line(tmp_path, serial="stdio", probe=probe)])
    vm.expect(r"probe: cpu: AuthenticAMD hypervisor KVMKVMKVM", timeout=60)
    vm.expect(r"probe: PASS", timeout=60)
