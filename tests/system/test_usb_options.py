"""Issue #22: the USB options as QEMU 7.2 takes them (-usb, -machine usb=on,
-usbdevice, -device piix3-usb-uhci / usb-tablet / usb-mouse / usb-kbd with
bus= and port=).  A good line runs until KVM is opened (the pass condition on
a host without /dev/kvm); a bad one fails with QEMU 7.2's words, and the
same line given to QEMU (TCG, stopped with -S) fails with the same words."""
import shutil
import subprocess

import pytest

from conftest import HAVE_KVM, kestrel, need_qemu

KVM_MISSING = "/dev/kvm does not exist"

GOOD = [
    ["-usb"],
    ["-machine", "pc,usb=on"],
    ["-machine", "pc,usb=off"],
    ["-usbdevice", "tablet"],
    ["-usb", "-usbdevice", "tablet", "-device", "usb-kbd,id=k1"],
    ["-usb", "-device", "usb-mouse,id=m2,port=2", "-usbdevice", "keyboard"],
    ["-device", "piix3-usb-uhci,id=uhci", "-device", "usb-tablet,bus=uhci.0,port=2"],
    ["-device", "piix3-usb-uhci,id=usb,bus=pci.0,addr=0x1.0x2",
     "-device", "usb-tablet,id=input0,bus=usb.0,port=1"],
    # libvirt 9.0's JSON form of the same two devices.
    ["-device", '{"driver":"piix3-usb-uhci","id":"usb","bus":"pci.0","addr":"0x1.0x2"}',
     "-device", '{"driver":"usb-tablet","id":"input0","bus":"usb.0","port":"1"}'],
]

# (arguments, the message after "-opt arg: ", whether QEMU 7.2 says the same)
BAD = [
    (["-device", "usb-tablet"], "No 'usb-bus' bus found for device 'usb-tablet'", True),
    (["-usbdevice", "foo"], "could not add USB device 'foo'", True),
    (["-usb", "-device", "usb-tablet,bus=nope.0"], "Bus 'nope.0' not found", True),
    (["-usb", "-device", "usb-tablet,port=7"],
     "usb port 7 (bus usb-bus.0) not found (in use?)", True),
    (["-usb", "-device", "usb-tablet,port=abc"],
     "usb port abc (bus usb-bus.0) not found (in use?)", True),
    (["-usb", "-device", "usb-tablet,port=1", "-device", "usb-kbd,port=1"],
     "usb port 1 (bus usb-bus.0) not found (in use?)", True),
    (["-device", "piix3-usb-uhci,id=u", "-device", "usb-tablet,bus=usb-bus.0"],
     "Bus 'usb-bus.0' not found", True),
    (["-usbdevice"], "requires an argument", True),
    (["-machine", "pc,usb=maybe"], "Parameter 'usb' expects 'on' or 'off'", False),
    # QEMU adds a hub for a third device; Kestrel has none and says so.
    (["-usbdevice", "tablet", "-usbdevice", "mouse", "-usbdevice", "keyboard"],
     "kestrel has no USB hub", False),
    (["-usb", "-device", "piix3-usb-uhci"], "only one USB controller is supported", False),
    (["-device", "usb-tablet,foo=1"], "foo", False),
    # Machine none: no PCI bus, so no UHCI (QEMU ignores a bare -usb there; Kestrel refuses it).
    (["-M", "none", "-usbdevice", "tablet"], "could not add USB device", True),
    (["-M", "none", "-usb", "-device", "usb-kbd"],
     "No 'usb-bus' bus found for device 'usb-kbd'", False),
    (["-M", "none", "-usb"], "machine 'none' has no PCI bus", False),
]


@pytest.mark.parametrize("args", GOOD, ids=lambda a: " ".join(a))
def test_usb_lines_accepted(args):
    if HAVE_KVM:
        pytest.skip("the pass condition is the missing /dev/kvm")
    status, _, err = kestrel("-display", "none", *args)
    assert status != 0 and KVM_MISSING in err, err


@pytest.mark.parametrize("args, message, same", BAD, ids=lambda a: str(a))
def test_usb_errors(args, message, same):
    status, _, err = kestrel("-display", "none", *args)
    assert status != 0, err
    assert message in err, err
    assert KVM_MISSING not in err


@pytest.mark.qemu
@pytest.mark.parametrize("args, message", [(a, m) for a, m, same in BAD if same],
                         ids=lambda a: str(a))
def test_usb_errors_match_qemu(args, message):
    need_qemu()
    p = subprocess.run(["qemu-system-x86_64", "-machine", "accel=tcg", "-display", "none",
                        "-S", "-nodefaults", *args], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode != 0 and message in p.stderr, p.stderr
    # The same "-opt arg: message" line as Kestrel's, after the program name.
    _, _, err = kestrel("-display", "none", *args)
    qemu_line = p.stderr.strip().splitlines()[-1].split(": ", 1)[1]
    assert qemu_line in err, (qemu_line, err)
