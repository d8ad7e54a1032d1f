"""Network boot (-boot n): SeaBIOS runs the NIC's PXE option ROM (Debian's ipxe-qemu,
efi-e1000.rom / efi-virtio.rom, through the PCI expansion ROM register), iPXE starts,
probes the NIC, gets a DHCP lease from user-mode networking and fetches its script
over TFTP.  On a PVM host the emulator cannot take iPXE's first protected-mode
interrupt (QEMU 7.2 resets there, kestrel stops with a KVM internal error, at the same
point), so there only the ROM and device initialisation are checked and the lease and
download are skipped with that reason; on a vmx/svm host the whole boot runs."""
import pytest

from conftest import KESTREL, QEMU, host_has_hw_virt, need_qemu

pytestmark = pytest.mark.guest  # every test here starts a guest

SCRIPT = """#!ipxe
echo kestrel-ipxe-script-running
imgfetch tftp://10.0.2.2/hello.txt
imgstat
"""
PVM_REASON = ("PVM host: iPXE's first protected-mode interrupt cannot be delivered by the "
              "KVM emulator (QEMU 7.2 resets at the same point); needs vmx/svm")


def boot_argv(vmm, model, tftp):
    args = ["-nographic", "-m", "128m", "-boot", "n", "-net", f"nic,model={model}",
            "-net", f"user,tftp={tftp},bootfile=boot.ipxe"]
    if vmm == "qemu":
        need_qemu()
        return [*QEMU, "-M", "pc", "-no-reboot", *args]
    return [str(KESTREL), *args]


def tftp_dir(tmp_path):
    (tmp_path / "boot.ipxe").write_text(SCRIPT)
    (tmp_path / "hello.txt").write_text("hello from tftp\n")
    return tmp_path


# QEMU for one model: the firmware part is slow under emulation (~30 s a run).
@pytest.mark.parametrize("vmm,model", [("kestrel", "e1000"), ("kestrel", "virtio"),
                                       ("qemu", "e1000")])
def test_pxe_rom_runs_and_finds_the_nic(vmm, model, tmp_path, session):
    s = session(boot_argv(vmm, model, tftp_dir(tmp_path)))
    s.expect(r"SeaBIOS \(version", timeout=60)
    s.expect(r"iPXE \(http://ipxe\.org\) 00:0[0-9a-f]\.0 [0-9A-F]+ PCI2\.10 PnP PMM", timeout=90)
    s.expect(r"iPXE initialising devices\.\.\.ok", timeout=90)


@pytest.mark.skipif(not host_has_hw_virt(), reason=PVM_REASON)
@pytest.mark.parametrize("vmm", ["kestrel", "qemu"])
@pytest.mark.parametrize("model", ["e1000", "virtio"])
def test_ipxe_dhcp_and_tftp(vmm, model, tmp_path, session):
    s = session(boot_argv(vmm, model, tftp_dir(tmp_path)))
    s.expect(r"net0: 10\.0\.2\.15/255\.255\.255\.0 gw 10\.0\.2\.2", timeout=120)
    s.expect(r"kestrel-ipxe-script-running", timeout=60)
    s.expect(r"hello\.txt : 16 bytes", timeout=60)
