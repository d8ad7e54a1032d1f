"""Issue #22 with real third-party code: SeaBIOS (Debian's) finds the PIIX3
UHCI at 00:01.2, enumerates the USB keyboard and mouse on its root ports
(GET_DESCRIPTOR, SET_ADDRESS, SET_CONFIGURATION, HID SET_PROTOCOL/SET_IDLE,
interrupt IN polling) and says so on its debug console, under kestrel and,
with the same devices, QEMU 7.2.  Explicit ports keep QEMU from adding its
automatic hub, which Kestrel does not have."""
import pytest

from conftest import KESTREL, QEMU, need_qemu

USB_ARGS = ["-usb", "-device", "usb-kbd,port=1", "-device", "usb-mouse,port=2"]


def vmm(name, log):
    if name == "qemu":
        need_qemu()
        return [*QEMU, "-M", "pc", "-vga", "none", "-net", "none", "-nographic", "-m", "128",
                "-debugcon", f"file:{log}", "-global", "isa-debugcon.iobase=0x402", *USB_ARGS]
    return [str(KESTREL), "-nographic", "-m", "128", "-debugcon", f"file:{log}", *USB_ARGS]


@pytest.mark.guest
@pytest.mark.parametrize("which", ["kestrel", pytest.param("qemu", marks=pytest.mark.qemu)])
def test_seabios_finds_usb_keyboard_and_mouse(session, tmp_path, which):
    log = tmp_path / "debugcon.log"
    s = session(vmm(which, log))
    s.expect(r"No bootable device", timeout=60)
    s.kill()
    text = log.read_text(errors="replace")
    assert "UHCI init on dev 00:01.2" in text, text[-2000:]
    assert "USB keyboard initialized" in text, text[-2000:]
    assert "USB mouse initialized" in text, text[-2000:]
