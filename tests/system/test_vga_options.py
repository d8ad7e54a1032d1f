"""-vga and the display devices on the command line (issue #21): Kestrel has the
VGA types std and none; QEMU's other cards are refused by name, the ones it has
parse.  No guest runs here: a command that parses reaches KVM (on this host the
/dev/kvm error) or, where KVM exists, runs the probe, which powers off."""
import pytest

from conftest import kestrel

OTHER = ["cirrus", "qxl", "vmware", "virtio"]


@pytest.mark.parametrize("card", OTHER)
def test_other_vga_types_are_refused_naming_ours(probe, card):
    status, out, err = kestrel("-kernel", probe, "-nographic", "-vga", card)
    assert status == 1
    assert f"-vga {card}: VGA type '{card}' is not supported" in err, err
    assert "std and none" in err, err
    assert "probe:" not in out


@pytest.mark.parametrize("args", [
    ["-vga", "std"], ["-vga", "none"], ["-device", "VGA"],
    ["-device", "VGA,id=video0,vgamem_mb=32"], ["-device", "bochs-display"],
    ["-vga", "none", "-device", "bochs-display,id=b"],
], ids=" ".join)
def test_our_vga_types_parse(probe, args):
    status, _, err = kestrel("-kernel", probe, "-nographic", *args, timeout=60)
    assert "-vga" not in err and "-device" not in err, err


def test_vga_help_lists_std_and_none():
    status, out, _ = kestrel("-vga", "help")
    assert status == 0
    assert out.split() == ["none", "no", "graphic", "card", "std", "standard", "VGA", "(default)"]


@pytest.mark.parametrize("args,needle", [
    (["-device", "VGA", "-device", "VGA"], "only one VGA"),
    (["-device", "VGA,vgamem_mb=3"], "vgamem_mb= must be a power of two"),
    (["-device", "bochs-display,vgamem_mb=16"], "Invalid parameter 'vgamem_mb'"),
    (["-device", "virtio-rng-pci,addr=2"],
     "PCI: slot 2 function 0 not available for virtio-rng-pci, in use by VGA"),
])
def test_bad_display_devices(probe, args, needle):
    status, _, err = kestrel("-kernel", probe, "-nographic", *args)
    assert status == 1 and needle in err, err
