"""Differential test against QEMU 7.2: the same QMP sequence sent to QEMU and to
kestrel, both running the same guest probe with the same command line; reply
shapes (key sets and value types) and HMP text layout must match."""
import subprocess

import pytest

from conftest import KESTREL, QEMU, need_qemu
from qmp_client import QMP

pytestmark = [pytest.mark.qemu, pytest.mark.guest]

# Commands both implement, in the order a management tool would send them.
SEQUENCE = [
    ("query-version", {}), ("query-status", {}), ("query-name", {}), ("query-uuid", {}),
    ("query-kvm", {}), ("query-cpus-fast", {}), ("query-block", {}),
    ("query-blockstats", {}), ("query-chardev", {}), ("query-pci", {}),
    ("query-balloon", {}), ("query-migrate", {}), ("query-machines", {}),
    ("query-cpu-definitions", {}), ("stop", {}), ("query-status", {}), ("cont", {}),
    ("balloon", {"value": 64 << 20}), ("set_link", {"name": "nic0", "up": False}),
    ("device_del", {"id": "nosuch"}), ("no-such-command", {}),
]
HMP = ["info status", "info balloon", "info block", "info kvm", "info name"]


def shape(value):
    """Key sets and JSON types, recursively; lists by their first element."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return ["list", shape(value[0]) if value else None]
    return type(value).__name__


def run_sequence(argv, path):
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        q = QMP(path, timeout=60)
        q.cmd("qmp_capabilities")
        replies = {}
        for name, args in SEQUENCE:
            replies.setdefault(name, q.cmd(name, **args))
        hmp = {line: q.cmd("human-monitor-command", **{"command-line": line})["return"]
               for line in HMP}
        q.cmd("quit")
        proc.wait(timeout=30)
        return replies, hmp
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def common_args(probe, path):
    return ["-m", "128m", "-smp", "2,sockets=2", "-name", "myos", "-nodefaults",
            "-display", "none", "-serial", "null", "-qmp", f"unix:{path},server,nowait",
            "-kernel", probe, "-append", "probe=echo"]


@pytest.fixture(scope="module")
def both(probe, tmp_path_factory):
    need_qemu()
    d = tmp_path_factory.mktemp("qmp")
    k = run_sequence([str(KESTREL), *common_args(probe, d / "k.sock")], d / "k.sock")
    q = run_sequence([*QEMU, "-M", "pc", *common_args(probe, d / "q.sock")], d / "q.sock")
    return k, q


@pytest.mark.parametrize("name", [n for n, _ in SEQUENCE])
def test_reply_shape_matches_qemu(both, name):
    (kestrel_replies, _), (qemu_replies, _) = both
    k, q = kestrel_replies[name], qemu_replies[name]
    assert set(k) == set(q), (k, q)                      # "return" vs "error" alike
    if "error" in q:
        assert k["error"]["class"] == q["error"]["class"], (k, q)
        return
    if name == "query-machines":
        # QEMU lists ~40 versioned machines; compare the default one field by field.
        k_default = [m for m in k["return"] if m.get("is-default")]
        q_default = [m for m in q["return"] if m.get("is-default")]
        assert shape(k_default) == shape(q_default)
        return
    if name in ("query-pci", "query-cpu-definitions"):
        # Both answer with a list of the same element shape; QEMU has devices/models
        # Kestrel does not (yet), so compare the element keys present in ours.
        assert isinstance(k["return"], list) and isinstance(q["return"], list)
        if k["return"] and q["return"]:
            assert set(k["return"][0]) <= set(q["return"][0])
        return
    assert shape(k["return"]) == shape(q["return"]), (k, q)


@pytest.mark.parametrize("line", HMP)
def test_hmp_text_layout_matches_qemu(both, line):
    (_, k_hmp), (_, q_hmp) = both
    assert k_hmp[line] == q_hmp[line]


# Issue #16: "info network", "info usernet", "info blockstats", query-blockstats and
# query-rx-filter on the same machine as QEMU 7.2: a virtio NIC on user networking with
# a host forward, a virtio disk the probe writes and reads, an IDE disk.
def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def info_args(probe, d, tag):
    import shutil
    (d / f"{tag}-v.img").write_bytes(bytes(1 << 20))
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(d / f"{tag}-i.qcow2"), "8M"],
                   check=True)
    return ["-m", "128m", "-nodefaults", "-display", "none", "-serial", "null", "-no-shutdown",
            "-qmp", f"unix:{d / (tag + '.sock')},server,nowait",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{free_port()}-:22",
            "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56",
            "-drive", f"file={d / (tag + '-v.img')},format=raw,if=virtio",
            "-drive", f"file={d / (tag + '-i.qcow2')},format=qcow2,if=ide",
            "-kernel", probe, "-append", "probe=blk-write,pattern=7,sectors=300"]


def run_info(argv, path):
    import time
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        q = QMP(path, timeout=60)
        q.cmd("qmp_capabilities")
        deadline = time.monotonic() + 120
        while q.cmd("query-status")["return"]["status"] != "shutdown":  # the probe is done
            assert time.monotonic() < deadline, "the probe did not power off"
            time.sleep(0.2)
        hmp = {line: q.cmd("human-monitor-command", **{"command-line": line})["return"]
               for line in ("info network", "info usernet", "info blockstats")}
        stats = {e["device"]: e for e in q.cmd("query-blockstats")["return"]}
        rx = q.cmd("query-rx-filter")["return"]
        q.cmd("quit")
        proc.wait(timeout=30)
        return hmp, stats, rx
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def info_both(probe, tmp_path_factory):
    need_qemu()
    d = tmp_path_factory.mktemp("info")
    k = run_info([str(KESTREL), *info_args(probe, d, "k")], d / "k.sock")
    q = run_info([*QEMU, "-M", "pc", *info_args(probe, d, "q")], d / "q.sock")
    return k, q


def blockstats_lines(text):
    """{device: [(key, value), ...]} from "info blockstats"."""
    out = {}
    for line in text.replace("\r", "").splitlines():
        dev, rest = line.split(": ", 1)
        out[dev] = [tuple(kv.split("=")) for kv in rest.split()]
    return out


def test_info_network_matches_qemu(info_both):
    (k, _, _), (q, _, _) = info_both
    assert k["info network"] == q["info network"]
    assert "type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:56" in k["info network"]
    assert "\\ n0: index=0,type=user,net=10.0.2.0,restrict=off" in k["info network"]


def test_info_usernet_matches_qemu(info_both):
    import re
    (k, _, _), (q, _, _) = info_both
    # The listening socket's descriptor number and the host port differ; the rest is the same.
    norm = lambda t: re.sub(r"(\]) +\d+ +(\S+) +\d+ ", r"\1 FD \2 PORT ", t)
    assert norm(k["info usernet"]) == norm(q["info usernet"])
    assert "TCP[HOST_FORWARD]" in k["info usernet"] and "10.0.2.15    22" in k["info usernet"]


def test_info_blockstats_counts_the_guests_requests_as_qemu(info_both):
    (k, _, _), (q, _, _) = info_both
    kb, qb = blockstats_lines(k["info blockstats"]), blockstats_lines(q["info blockstats"])
    assert set(kb) == {"virtio0", "ide0-hd0"} and set(kb) <= set(qb)
    for dev in kb:
        assert [key for key, _ in kb[dev]] == [key for key, _ in qb[dev]]
    kv, qv = dict(kb["virtio0"]), dict(qb["virtio0"])
    # 300 sectors written in 3 requests, one flush, read back in 3: the same on both.
    for key in ("rd_bytes", "wr_bytes", "rd_operations", "wr_operations", "flush_operations"):
        assert kv[key] == qv[key], (key, kv, qv)
    assert kv["wr_bytes"] == str(300 * 512) and kv["wr_operations"] == "3"
    assert int(kv["wr_total_time_ns"]) > 0 and int(kv["idle_time_ns"]) > 0


def test_query_blockstats_matches_qemu(info_both):
    (_, k, _), (_, q, _) = info_both
    assert set(k) <= set(q)
    for dev in k:
        # QEMU adds the protocol layer as "parent"; Kestrel's drives are one node.
        assert set(k[dev]) == set(q[dev]) - {"parent"}, (k[dev], q[dev])
        assert set(k[dev]["stats"]) == set(q[dev]["stats"]), dev
    for key in ("rd_bytes", "wr_bytes", "rd_operations", "wr_operations", "flush_operations",
                "wr_highest_offset", "failed_rd_operations", "invalid_wr_operations"):
        assert k["virtio0"]["stats"][key] == q["virtio0"]["stats"][key], key


def test_query_rx_filter_matches_qemu(info_both):
    (_, _, k), (_, _, q) = info_both
    assert k == q
