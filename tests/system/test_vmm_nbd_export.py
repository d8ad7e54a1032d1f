"""The VMM's NBD server (issue #20, "Serving"): a running VM's disk exported over QMP
(nbd-server-start, nbd-server-add, block-export-add, query-block-exports, removal and
stop) and HMP (nbd_server_start/add/stop), read by qemu-img and nbdinfo while the guest
runs, beside QEMU 7.2 doing the same on the same command line.  The export is the VM's
own open drive (no second open: the image stays locked by the VMM alone, and a write
through the export is what the guest's disk holds).  Needs a guest, so it is marked
guest; the server itself is unit-tested in tests/unit/test_nbd_export.c."""
import json
import shutil
import subprocess

import pytest

from conftest import KESTREL, QEMU, need_qemu
from qmp_client import QMP

pytestmark = [pytest.mark.guest, pytest.mark.qemu,
              pytest.mark.skipif(not shutil.which("nbdinfo"), reason="nbdinfo is needed")]

MiB = 1 << 20


def disk(path):
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "32M"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 1M 2M", str(path)], check=True,
                   capture_output=True)
    return path


def start(argv, qmp_path, image, probe):
    args = ["-m", "128m", "-nodefaults", "-display", "none", "-serial", "null",
            "-qmp", f"unix:{qmp_path},server,nowait", "-kernel", probe, "-append", "probe=echo",
            "-drive", f"file={image},format=qcow2,if=none,id=disk0",
            "-device", "virtio-blk-pci,drive=disk0"]
    proc = subprocess.Popen([*argv, *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    q = QMP(qmp_path, timeout=60)
    q.cmd("qmp_capabilities")
    return proc, q


def session(argv, d, probe):
    """The same QMP/HMP sequence on one VMM: what each step answered, and what qemu-img
    and nbdinfo read through the exports."""
    image = disk(d / "disk.qcow2")
    sock = d / "nbd.sock"
    proc, q = start(argv, d / "qmp.sock", image, probe)
    seen = {}
    try:
        seen["start"] = q.cmd("nbd-server-start",
                              addr={"type": "unix", "data": {"path": str(sock)}})
        seen["start-again"] = q.cmd("nbd-server-start",
                                    addr={"type": "unix", "data": {"path": str(sock)}})
        seen["add"] = q.cmd("nbd-server-add", device="disk0")
        seen["add-missing"] = q.cmd("nbd-server-add", device="nosuch")
        seen["export-add"] = q.cmd("block-export-add", type="nbd", id="e1",
                                   **{"node-name": "disk0"}, name="rw", writable=True)
        seen["exports"] = q.cmd("query-block-exports")
        info = subprocess.run(["qemu-img", "info", "--output=json",
                               f"nbd+unix:///disk0?socket={sock}"], capture_output=True,
                              text=True, timeout=60)
        seen["info"] = json.loads(info.stdout)["virtual-size"] if info.returncode == 0 else None
        seen["read"] = subprocess.run(["qemu-img", "compare", "-f", "raw",
                                       f"nbd+unix:///disk0?socket={sock}",
                                       f"nbd+unix:///rw?socket={sock}"],
                                      capture_output=True, text=True, timeout=60).returncode
        seen["list"] = subprocess.run(["nbdinfo", "--list", "--json",
                                       f"nbd+unix:///?socket={sock}"], capture_output=True,
                                      text=True, timeout=60).returncode
        seen["remove"] = q.cmd("nbd-server-remove", name="disk0")
        seen["remove-again"] = q.cmd("nbd-server-remove", name="disk0")
        seen["del"] = q.cmd("block-export-del", id="e1")
        seen["stop"] = q.cmd("nbd-server-stop")
        seen["stop-again"] = q.cmd("nbd-server-stop")
        seen["hmp"] = [q.cmd("human-monitor-command", **{"command-line": line})["return"]
                       for line in (f"nbd_server_start unix:{sock}", "nbd_server_add disk0",
                                    "nbd_server_stop")]
        q.cmd("quit")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return seen


@pytest.fixture(scope="module")
def both(probe, tmp_path_factory):
    need_qemu()
    k = session([str(KESTREL)], tmp_path_factory.mktemp("k"), probe)
    q = session([*QEMU, "-M", "pc"], tmp_path_factory.mktemp("q"), probe)
    return k, q


def kind(reply):
    return ("error", reply["error"]["class"]) if "error" in reply else ("return",)


@pytest.mark.parametrize("step", ["start", "start-again", "add", "add-missing", "export-add",
                                  "remove", "remove-again", "del", "stop", "stop-again"])
def test_each_step_answers_as_qemu(both, step):
    k, q = both
    assert kind(k[step]) == kind(q[step]), (k[step], q[step])
    if "error" in q[step]:
        assert k[step]["error"]["desc"] == q[step]["error"]["desc"]


def test_the_exports_are_listed_and_read_as_qemu_s(both):
    k, q = both
    assert k["info"] == q["info"] == 32 * MiB
    assert k["read"] == q["read"] == 0          # both exports show the same disk
    assert k["list"] == q["list"] == 0
    strip = [{key: e[key] for key in ("type", "id", "shutting-down")}
             for e in q["exports"]["return"]]
    assert [{key: e[key] for key in ("type", "id", "shutting-down")}
            for e in k["exports"]["return"]] == strip


def test_hmp_answers_as_qemu(both):
    k, q = both
    assert k["hmp"] == q["hmp"]
