"""Bad command lines: a message naming the option, exit 1, and no VM started."""
import os
import pytest

from conftest import KESTREL, kestrel

BAD = [
    (["-m", "lots"], "-m lots"),
    (["-m", "1"], "-m 1"),
    (["-m", "size=2G,maxmem=8G"], "maxmem"),
    (["-smp", "two"], "-smp two"),
    (["-smp", "sockets=2,cores=2,maxcpus=3"], "Invalid CPU topology"),
    (["-smp", "4,maxcpus=2"], "maxcpus must be equal to or greater than smp"),
    (["-smp", "300"], "The max CPUs supported by machine 'pc' is 255"),
    (["-smp", "2,bogus=1"], "Invalid parameter 'bogus'"),
    (["-uuid", "not-a-uuid"], "-uuid not-a-uuid"),
    (["-cpu", "pentium"], "-cpu pentium"),
    (["-machine", "q35"], "-machine q35"),
    (["-accel", "tcg"], "-accel tcg"),
    (["-display", "gtk"], "-display gtk"),
    (["-serial", "vc:80Cx24C"], "-serial vc:80Cx24C"),
    (["-chardev", "socket,id=x"], "a TCP port number is needed"),
    (["-chardev", "stdio"], "Parameter 'id' is missing"),
    (["-serial", "chardev:nope"], "chardev 'nope' not found"),
    (["-mon", "chardev=nope"], "chardev 'nope' not found"),
    (["-monitor", "stdio", "-serial", "stdio"], "cannot use stdio by multiple character devices"),
    (["-device", "usb-storage"], "'usb-storage' is not a valid device model name"),
    (["-device", "virtio-blk-pci"], "drive property not set"),
    (["-frobnicate"], "-frobnicate: invalid option"),
    (["-kernel"], "-kernel: requires an argument"),
    (["disk.img"], "disk.img"),
    (["-daemonize", "-nographic"], "-nographic cannot be used with -daemonize"),
    # Issue #13: these are checked before /dev/kvm is opened, so every host names them.
    (["-device", "virtio-rng-pci,addr=3", "-device", "virtio-rng-pci,addr=3"],
     "slot 3 function 0 not available for virtio-rng-pci, in use by virtio-rng-pci"),
    (["-device", "virtio-rng-pci,addr=1"], "in use by PIIX3"),
    (["-netdev", "user,id=u,hostfwd=tcp::x-:22", "-device", "virtio-net-pci,netdev=u"],
     "invalid host forwarding rule 'tcp::x-:22'"),
    (["-netdev", "user,id=u,frob=1", "-device", "virtio-net-pci,netdev=u"],
     "Invalid parameter 'frob'"),
    (["-netdev", "socket,id=s,listen=:1,connect=:2", "-device", "virtio-net-pci,netdev=s"],
     "exactly one of listen= and connect="),
    (["-netdev", "tap,id=t,queues=99", "-device", "virtio-net-pci,netdev=t"], "queues=99"),
    # Issue #26: inputs QEMU 7.2 refuses, with its wording; options not honoured, by name.
    (["-accel", "kvm,foo=bar"], "Property 'kvm-accel.foo' not found"),
    (["-numa", "dist,src=0,dst=1,val=20"], "Source/Destination NUMA node is missing"),
    (["-numa", "node,initiator=0"], "Heterogeneous Memory Attribute Table (HMAT) is disabled"),
    (["-device", "virtio-rng-pci,rng=nosuch"], "Device 'nosuch' not found"),
    (["-device", "virtio-serial-pci,max_ports=0"], "Maximum number of serial ports not specified"),
    (["-device", "virtio-serial-pci,max_ports=31"], "max_ports= other than 1 is not supported"),
    (["-object", "memory-backend-ram,id=m,size=64M,align=999"], "Invalid parameter 'align'"),
    (["-object", "memory-backend-file,id=m,size=64M,mem-path=/tmp,align=999"],
     "alignment 0x3e7 must be multiples of page size 0x1000"),
    (["-m", "128", "-mem-path", "/tmp", "-numa", "node"],
     "total memory for NUMA nodes (0x0) should equal RAM size (0x8000000)"),
    (["-overcommit", "cpu-pm=bogus"], "Parameter 'cpu-pm' expects 'on' or 'off'"),
    (["-overcommit", "cpu-pm=on"], "cpu-pm=on (guest-controlled HLT/MWAIT) is not supported"),
    (["-machine", "dump-guest-core=maybe"], "dump-guest-core= takes on or off"),
    (["-chardev", "null,id=c", "-device", "virtio-serial-pci",
      "-device", "virtconsole,chardev=c,name=org.qemu.console.0"], "name= is not supported"),
    # Issue #20: TLS credentials for the NBD server (QMP nbd-server-start tls-creds).
    (["-object", "tls-creds-x509,id=t,endpoint=middle,dir=/tmp"],
     "Parameter 'endpoint' does not accept"),
    (["-object", "tls-creds-psk,id=t,endpoint=server,dir=/tmp,username=u"],
     "username should not be set when endpoint=server"),
    (["-object", "tls-creds-x509,id=t"], "Missing 'dir' property value"),
    (["-object", "tls-creds-x509,id=t,dir=/tmp,verify-peer=maybe"],
     "Parameter 'verify-peer' expects 'on' or 'off'"),
]


@pytest.mark.parametrize("splash,needle", [
    ("/nonexistent.bmp", "warning: failed to find file '/nonexistent.bmp'"),
    ("/etc/hostname", "splash file '/etc/hostname' format not recognized; must be JPEG or 24 bit BMP"),
])
def test_boot_splash_warns_as_qemu(probe, splash, needle):
    """QEMU 7.2 warns and goes on; so do we (the run then stops at /dev/kvm here)."""
    _, _, err = kestrel("-kernel", probe, "-display", "none", "-boot", "splash=" + splash)
    assert needle in err, err


@pytest.mark.parametrize("args,needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_exits_1_naming_it(probe, args, needle):
    status, out, err = kestrel("-kernel", probe, "-nographic", *args)
    assert status == 1
    assert needle in err, err
    assert err.startswith("kestrel: ")
    assert "probe:" not in out, "nothing may start"


@pytest.mark.parametrize("kernel,needle", [
    ("/nonexistent/vmlinuz", "No such file or directory"),
    ("/etc/hostname", "not a Linux bzImage nor an ELF kernel"),
    ("/bin/true", "no PVH entry note"),
    ("/dev/null", "not a regular file"),
])
def test_bad_kernel_is_named(kernel, needle):
    status, out, err = kestrel("-nographic", "-kernel", kernel)
    assert status == 1
    assert needle in err and "-kernel" in err, err


def test_missing_initrd_is_named(probe):
    status, _, err = kestrel("-nographic", "-kernel", probe, "-initrd", "/nonexistent.cpio")
    assert status == 1 and "-initrd /nonexistent.cpio" in err


def test_initrd_too_big_for_ram(probe, tmp_path):
    big = tmp_path / "big.cpio"
    with open(big, "wb") as f:
        f.truncate(64 << 20)
    status, _, err = kestrel("-m", "32", "-nographic", "-kernel", probe, "-initrd", str(big))
    assert status == 1 and "-initrd" in err and "increase -m" in err


def test_no_kernel_means_firmware_boot():
    """Issue #7: without -kernel the firmware boots (test_firmware.py); a missing
    -bios file is then a clear error."""
    status, _, err = kestrel("-nographic", "-bios", "/nonexistent/bios.bin")
    assert status == 1 and "-bios" in err and "/nonexistent/bios.bin" in err


def test_huge_initrd_is_refused_by_its_size_without_reading_it(probe, tmp_path):
    """Issue #16 (7): a 2 GiB -initrd was read whole (8.7 s, 2 GB RSS) before the
    refusal; its size alone decides now (QEMU: 0.07 s)."""
    import subprocess
    import time
    big = tmp_path / "huge.cpio"
    with open(big, "wb") as f:
        f.truncate(2 << 30)
    start = time.monotonic()
    p = subprocess.Popen([str(KESTREL), "-m", "128m", "-nographic", "-kernel", probe,
                          "-initrd", str(big)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read().decode()
    _, status, usage = os.wait4(p.pid, 0)       # this child's own resource use
    elapsed = time.monotonic() - start
    assert os.waitstatus_to_exitcode(status) == 1
    assert "-initrd" in err and "increase -m" in err, err
    assert elapsed < 2.0, elapsed
    # Reading 2 GiB into memory takes at least 524288 page faults.  (Not ru_maxrss:
    # Linux hands a child its parent's peak RSS across fork and exec.)
    assert usage.ru_minflt < 50000, usage.ru_minflt


@pytest.mark.parametrize("smp", ["0", "2,sockets=0"])
def test_smp_zero_is_accepted_with_qemus_deprecation_warning(probe, smp):
    """Issue #16: QEMU 7.2 takes a 0 count as omitted and warns; the warning comes
    from option parsing, before /dev/kvm, so it shows on every host.  Without KVM
    the start then fails naming /dev/kvm; with it the probe says hello and powers off."""
    status, out, err = kestrel("-kernel", probe, "-nographic", "-smp", smp)
    assert ("kestrel: warning: Deprecated CPU topology (considered invalid): "
            "CPU topology parameters must be greater than zero") in err.splitlines(), err
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        assert status == 0, err
    else:
        assert status == 1 and "/dev/kvm" in err, err


def test_smp_without_zero_has_no_warning(probe):
    status, out, err = kestrel("-kernel", probe, "-nographic", "-smp", "2,sockets=1")
    assert "warning" not in err, err
