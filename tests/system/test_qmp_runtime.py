"""QMP commands libvirt sends at start and while a domain runs (#27), on QEMU 7.2
and on Kestrel started with the same line: `-machine none` (no guest; QEMU runs
it with TCG, Kestrel without /dev/kvm) with libvirt's two -blockdev nodes.

Kestrel's answers come from its own state: the drive's node as its block layer
opened it, no block jobs, no iothreads, no migration capabilities.  Where the
answer must be the same (empty lists, argument errors) it is compared equal;
where Kestrel has less (no per-layer I/O statistics, no format-specific image
info, no CPU hot-plug) the difference is named.
"""
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import KESTREL, need_qemu
from qmp_client import QMP, QMPProcess

pytestmark = pytest.mark.qemu

FORMAT_NODE = "libvirt-1-format"
STORAGE_NODE = "libvirt-1-storage"


def blockdevs(image):
    """libvirt 9.0's -blockdev pair for a qcow2 disk: a file node and its format node."""
    return ["-blockdev", json.dumps({"driver": "file", "filename": str(image),
                                     "node-name": STORAGE_NODE, "auto-read-only": True,
                                     "discard": "unmap"}),
            "-blockdev", json.dumps({"node-name": FORMAT_NODE, "read-only": False,
                                     "driver": "qcow2", "file": STORAGE_NODE,
                                     "backing": None})]


class VM(QMPProcess):
    def __init__(self, binary, tmp_path, name, image):
        super().__init__(binary, tmp_path, name, ["-S", "-no-user-config", "-nodefaults",
                                                  "-nographic", "-machine", "none,accel=kvm:tcg"],
                         blockdevs(image))


def new_image(d, name):
    img = d / name
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "1M"], check=True)
    return img


@pytest.fixture(scope="module")
def vms(tmp_path_factory):
    """The two binaries, each on its own copy of the disk (each takes its write lock)."""
    need_qemu()
    d = tmp_path_factory.mktemp("rt")
    q = VM("qemu-system-x86_64", d, "qemu", new_image(d, "qemu.qcow2"))
    try:
        k = VM(KESTREL, d, "kestrel", new_image(d, "kestrel.qcow2"))
    except AssertionError:
        q.stop()
        raise
    yield q, k
    k.stop()
    q.stop()


def ret(reply):
    assert "return" in reply, reply
    return reply["return"]


# Replies that must be identical, error class and wording included.
SAME = [
    ("query-block-jobs", {}),
    ("query-iothreads", {}),
    ("migrate-set-capabilities", {"capabilities": []}),
    ("migrate-set-capabilities", {}),
    ("migrate-set-capabilities", {"capabilities": {}}),
    ("migrate-set-capabilities", {"capabilities": [1]}),
    ("migrate-set-capabilities", {"capabilities": [{"state": True}]}),
    ("migrate-set-capabilities", {"capabilities": [{"capability": 1, "state": True}]}),
    ("migrate-set-capabilities", {"capabilities": [{"capability": "nosuch",
                                                    "state": True}]}),
    ("query-named-block-nodes", {"flat": "yes"}),
    ("query-blockstats", {"query-nodes": 1}),
    ("qom-list", {"path": "/machine/peripheral"}),      # no -device: the container alone
    ("qom-list", {"path": "/nosuch"}),
    ("qom-list", {}),
    ("qom-get", {"path": "/machine/peripheral/x", "property": "type"}),
]


@pytest.mark.parametrize("name,args", SAME, ids=[f"{n}-{json.dumps(a)}" for n, a in SAME])
def test_same_reply(vms, name, args):
    q, k = vms
    assert k.cmd(name, args) == q.cmd(name, args)


def test_migrate_set_capabilities_events(vms):
    """QEMU has the 'events' capability; Kestrel has no migration and lists none, so
    it refuses the name as QEMU refuses one its enum lacks (libvirt, seeing no
    'events' in query-migrate-capabilities, never sends it)."""
    q, k = vms
    args = {"capabilities": [{"capability": "events", "state": True}]}
    assert ret(q.cmd("migrate-set-capabilities", args)) == {}
    assert ret(k.cmd("query-migrate-capabilities")) == []
    want = q.cmd("migrate-set-capabilities",
                 {"capabilities": [{"capability": "events-x", "state": True}]})
    want["error"]["desc"] = want["error"]["desc"].replace("events-x", "events")
    assert k.cmd("migrate-set-capabilities", args) == want


# BlockDeviceInfo members Kestrel reports with QEMU's values for the same node.
NODE_KEYS = ["node-name", "drv", "ro", "file", "encrypted", "detect_zeroes",
             "backing_file_depth", "write_threshold", "bps", "bps_rd", "bps_wr",
             "iops", "iops_rd", "iops_wr", "cache"]


@pytest.mark.parametrize("flat", [True, False])
def test_named_block_nodes(vms, flat):
    q, k = vms
    qn = {n["node-name"]: n for n in ret(q.cmd("query-named-block-nodes", {"flat": flat}))}
    kn = {n["node-name"]: n for n in ret(k.cmd("query-named-block-nodes", {"flat": flat}))}
    # Both nodes libvirt names: the format node, then the file node it opens.
    assert set(qn) == set(kn) == {FORMAT_NODE, STORAGE_NODE}
    for node in [FORMAT_NODE, STORAGE_NODE]:
        qf, kf = qn[node], kn[node]
        assert set(kf) <= set(qf), set(kf) - set(qf)
        assert kf["file"].endswith("/kestrel.qcow2") and qf["file"].endswith("/qemu.qcow2")
        kf["file"] = kf["image"]["filename"] = qf["file"]
        for key in NODE_KEYS:
            assert kf[key] == qf[key], (node, key)
        # The file node's size is the file's length: both images are alike.
        for key in ["filename", "format", "virtual-size"]:
            assert kf["image"][key] == qf["image"][key], (node, key)


def test_blockstats_query_nodes(vms):
    q, k = vms
    qs = {e["node-name"]: e for e in ret(q.cmd("query-blockstats", {"query-nodes": True}))}
    ks = {e["node-name"]: e for e in ret(k.cmd("query-blockstats", {"query-nodes": True}))}
    # Named difference: Kestrel counts I/O per drive, not per layer, so the file
    # node has no statistics of its own and only the format node is listed.
    assert set(ks) == {FORMAT_NODE} and FORMAT_NODE in qs
    assert "device" not in ks[FORMAT_NODE]
    for key in ["rd_bytes", "wr_bytes", "rd_operations", "wr_operations",
                "flush_operations", "wr_highest_offset", "timed_stats"]:
        assert ks[FORMAT_NODE]["stats"][key] == qs[FORMAT_NODE]["stats"][key], key


def fd_cmd(vm, name, nfds=1, **args):
    """One command sent with nfds fds on /dev/null passed as SCM_RIGHTS."""
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(nfds)]
    msg = {"execute": name}
    if args:
        msg["arguments"] = args
    try:
        socket.send_fds(vm.qmp.sock, [json.dumps(msg).encode()], fds)
    finally:
        for fd in fds:
            os.close(fd)
    return vm.qmp.reply()


def fd_session(vm):
    """getfd/closefd/add-fd/query-fdsets as libvirt would send them; the fd
    numbers (each process's own) are replaced by their order of appearance."""
    steps = [
        lambda: fd_cmd(vm, "getfd", fdname="tap0"),
        lambda: fd_cmd(vm, "getfd", fdname="tap0"),
        lambda: fd_cmd(vm, "getfd", fdname="0tap"),
        lambda: vm.cmd("getfd", {"fdname": "vhost0"}),
        lambda: vm.cmd("closefd", {"fdname": "tap0"}),
        lambda: vm.cmd("closefd", {"fdname": "tap0"}),
        lambda: fd_cmd(vm, "add-fd", opaque="rdwr:/dev/null"),
        lambda: fd_cmd(vm, "add-fd"),
        lambda: fd_cmd(vm, "add-fd", **{"fdset-id": 5}),
        lambda: fd_cmd(vm, "add-fd", **{"fdset-id": 0, "opaque": "y"}),
        lambda: fd_cmd(vm, "add-fd", **{"fdset-id": -1}),
        lambda: vm.cmd("add-fd"),
        lambda: fd_cmd(vm, "add-fd", nfds=3, **{"fdset-id": 7}),
        lambda: vm.cmd("query-fdsets"),
        lambda: vm.cmd("remove-fd", {"fdset-id": 9}),
        lambda: vm.cmd("remove-fd", {"fdset-id": 0, "fd": 99999}),
        lambda: vm.cmd("remove-fd", {}),
    ]
    seen = {}

    def norm(obj):
        if isinstance(obj, dict):
            return {k: (f"fd#{seen.setdefault(v, len(seen))}" if k == "fd" else norm(v))
                    for k, v in obj.items()}
        if isinstance(obj, list):
            return [norm(v) for v in obj]
        return obj
    return [norm(step()) for step in steps]


def test_fd_passing(vms):
    """Fds passed on the QMP socket (SCM_RIGHTS) are named, kept in sets and listed
    as QEMU does; the replies are the same once each process's fd numbers are
    replaced by their order."""
    q, k = vms
    assert fd_session(k) == fd_session(q)


def test_remove_fd_closes_at_once(vms):
    """Named difference: QEMU 7.2 closes a removed fd only once the VM runs
    (monitor_fdset_cleanup waits for runstate_is_running), so under -S it is
    still listed; Kestrel closes it at once and the emptied set goes."""
    _, k = vms
    r = ret(fd_cmd(k, "add-fd", **{"fdset-id": 42}))
    assert any(s["fdset-id"] == 42 for s in ret(k.cmd("query-fdsets")))
    assert ret(k.cmd("remove-fd", {"fdset-id": 42, "fd": r["fd"]})) == {}
    assert all(s["fdset-id"] != 42 for s in ret(k.cmd("query-fdsets")))
    assert "error" in k.cmd("remove-fd", {"fdset-id": 42})


def start_pc(binary, sock, accel):
    argv = [str(binary), "-S", "-nodefaults", "-nographic", "-machine", f"pc,accel={accel}",
            "-cpu", "qemu64", "-smp", "2", "-m", "128",
            "-device", "virtio-rng-pci,id=rng0", "-device", "virtio-balloon-pci,id=balloon0",
            "-qmp", f"unix:{sock},server=on,wait=off"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    qmp = QMP(sock, timeout=10)
    assert "return" in qmp.cmd("qmp_capabilities")
    return proc, qmp


# The vCPU properties Kestrel models; QEMU also has CPUID features (no table in Kestrel).
CPU_SAME = ["type", "realized", "hotplugged", "apic-id", "socket-id", "core-id",
            "thread-id"]


@pytest.mark.guest
def test_qom_cpu_and_peripheral(tmp_path):
    """qom-list/qom-get at each query-cpus-fast path and at /machine/peripheral/ID:
    Kestrel's names and types are QEMU's, values equal apart from 'hotpluggable'
    (Kestrel has no hot-plug)."""
    need_qemu()
    vms = [start_pc("qemu-system-x86_64", tmp_path / "q.sock", "kvm"),
           start_pc(KESTREL, tmp_path / "k.sock", "kvm")]
    try:
        (_, q), (_, k) = vms
        qcpus = ret(q.cmd("query-cpus-fast"))
        kcpus = ret(k.cmd("query-cpus-fast"))
        assert len(qcpus) == len(kcpus) == 2
        for qc, kc in zip(qcpus, kcpus):
            qtypes = {p["name"]: p["type"] for p in ret(q.cmd("qom-list", path=qc["qom-path"]))}
            ktypes = {p["name"]: p["type"] for p in ret(k.cmd("qom-list", path=kc["qom-path"]))}
            assert set(ktypes) <= set(qtypes)
            assert all(ktypes[n] == qtypes[n] for n in ktypes)
            for name in CPU_SAME:
                assert (ret(k.cmd("qom-get", path=kc["qom-path"], property=name)) ==
                        ret(q.cmd("qom-get", path=qc["qom-path"], property=name))), name
            assert ret(k.cmd("qom-get", path=kc["qom-path"], property="hotpluggable")) is False
            err = k.cmd("qom-get", path=kc["qom-path"], property="avx2")["error"]
            assert err["desc"] == "Property 'qemu64-x86_64-cpu.avx2' not found"
        # -device id=rng0 is at /machine/peripheral/rng0 (not peripheral-anon).
        def listing(vm, path):
            return sorted(ret(vm.cmd("qom-list", path=path)), key=lambda p: p["name"])
        assert listing(k, "/machine/peripheral") == listing(q, "/machine/peripheral")
        for dev in ["rng0", "balloon0"]:
            path = f"/machine/peripheral/{dev}"
            qprops = {p["name"]: p["type"] for p in listing(q, path)}
            kprops = {p["name"]: p["type"] for p in listing(k, path)}
            assert kprops.items() <= qprops.items()
            for name in ["type", "realized", "hotplugged"]:
                assert (ret(k.cmd("qom-get", path=path, property=name)) ==
                        ret(q.cmd("qom-get", path=path, property=name))), name
    finally:
        for proc, qmp in vms:
            qmp.cmd("quit")
            proc.wait(timeout=10)
