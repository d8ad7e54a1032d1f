"""libvirt 9.0's capability probe, command by command, on QEMU 7.2 and on Kestrel.

Both binaries start with the probe's own command line (libvirt's
qemuProcessQMPLaunch: -S -no-user-config -nodefaults -nographic -machine
none,accel=kvm:tcg -qmp unix:...,server=on,wait=off -pidfile ... -daemonize) and
get the probe's QMP commands.  QEMU's half runs everywhere (TCG without
/dev/kvm) and pins the reply shapes and error texts Kestrel answers with;
Kestrel's half compares its replies with QEMU's: identical where the answer
must be the same (errors, query-target, query-kvm), a subset of QEMU's where
Kestrel has less (types, properties, options, schema), and named differences
where Kestrel has nothing (no TCG, no TPM, no migration, no CPU feature table).
"""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import KESTREL, need_qemu
from qmp_client import QMP

pytestmark = pytest.mark.qemu

# The devices, machine and backends libvirt asks about that Kestrel has.
DEVICES = ["virtio-blk-pci", "virtio-net-pci", "virtio-rng-pci", "virtio-serial-pci",
           "virtio-balloon-pci", "e1000", "ide-hd", "ide-cd", "virtconsole"]
OBJECTS = ["pc-i440fx-7.2-machine", "none-machine", "memory-backend-ram",
           "memory-backend-file", "memory-backend-memfd"]

# Replies that must be the same, error class and wording included.
SAME = [
    ("query-target", {}),
    ("query-kvm", {}),
    ("query-events", {}),   # gone in QEMU 7.x: libvirt 9.0 reads events from the schema
    ("query-sev-capabilities", {}),
    ("query-sgx-capabilities", {}),
    ("query-hotpluggable-cpus", {}),
    ("device-list-properties", {"typename": "nosuch"}),
    ("device-list-properties", {"typename": "pci-device"}),
    ("device-list-properties", {"typename": "memory-backend-ram"}),
    ("qom-list-properties", {"typename": "nosuch"}),
    ("qom-list-types", {"implements": "nosuch"}),
    ("query-command-line-options", {"option": "nosuch"}),
    ("query-status", {}),
    ("query-cpu-model-expansion", {"type": "full", "model": {"name": "nosuch"}}),
    ("query-cpu-model-expansion", {"type": "wide", "model": {"name": "host"}}),
    ("query-cpu-model-expansion", {"type": "full", "model": {"name": "host", "x": 1}}),
    ("query-cpu-model-expansion", {"type": "full", "model": {}}),
    ("query-cpu-model-expansion", {"type": "full", "model": 1}),
]


class Probe:
    """One binary started as libvirt's probe starts it, with its QMP."""

    def __init__(self, binary, tmp_path, name):
        self.sock = tmp_path / f"{name}.monitor.sock"
        self.pidfile = tmp_path / f"{name}.pidfile"
        self.argv = [str(binary), "-S", "-no-user-config", "-nodefaults", "-nographic",
                     "-machine", "none,accel=kvm:tcg",
                     "-qmp", f"unix:{self.sock},server=on,wait=off",
                     "-pidfile", str(self.pidfile), "-daemonize"]
        self.pid = None
        self.qmp = None

    def start(self):
        """Runs the line; returns (exit status, stderr) of the daemonizing parent."""
        p = subprocess.run(self.argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30)
        if p.returncode == 0:
            self.pid = int(self.pidfile.read_text().strip())
            self.qmp = QMP(self.sock, timeout=20)
            self.qmp.cmd("qmp_capabilities")
        return p.returncode, p.stderr.decode(errors="replace")

    def cmd(self, name, args):
        return self.qmp.cmd(name, **args)

    def stop(self):
        if self.qmp:
            try:
                self.qmp.cmd("quit")
            except (EOFError, OSError):
                pass
            self.qmp.close()
        if self.pid:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)
            os.kill(self.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def tmp_module(tmp_path_factory):
    return tmp_path_factory.mktemp("probe")


@pytest.fixture(scope="module")
def qemu_probe(tmp_module):
    need_qemu()
    p = Probe("qemu-system-x86_64", tmp_module, "qemu")
    rc, err = p.start()
    assert rc == 0, err
    yield p
    p.stop()


@pytest.fixture(scope="module")
def kestrel_probe(tmp_module):
    p = Probe(KESTREL, tmp_module, "kestrel")
    rc, err = p.start()
    if rc != 0:
        pytest.skip(f"kestrel refuses libvirt's probe line (-S/-machine none land with "
                    f"#27's probe part): {err.strip()}")
    yield p
    p.stop()


def ret(reply):
    assert "return" in reply, reply
    return reply["return"]


def by_name(items, key="name"):
    return {i[key]: i for i in items}


def schema_index(schema):
    return {e["name"]: e for e in schema}


def members(index, type_name):
    """Member names of a schema object type, or the element's for an array."""
    e = index[type_name]
    if e["meta-type"] == "array":
        return members(index, e["element-type"])
    if e["meta-type"] != "object":
        return {}
    found = {m["name"]: "default" in m for m in e["members"]}
    for v in e.get("variants", []):     # a flat union: each branch's members too
        found.update(members(index, v["type"]))
    return found


# ---------------------------------------------------------------------------
# QEMU's half: what Kestrel's answers are modelled on, verified here

def test_qemu_probe_errors_kestrel_reproduces(qemu_probe):
    """The error classes and texts Kestrel's unit tests expect are QEMU's."""
    expect = {
        ("query-sgx-capabilities", "{}"): ("GenericError", "SGX is not enabled in KVM"),
        ("query-hotpluggable-cpus", "{}"):
            ("GenericError", "The feature 'query-hotpluggable-cpus' is not enabled"),
        ("device-list-properties", '{"typename": "nosuch"}'):
            ("DeviceNotFound", "Device 'nosuch' not found"),
        ("device-list-properties", '{"typename": "pci-device"}'):
            ("GenericError", "Parameter 'typename' expects a non-abstract device type"),
        ("qom-list-properties", '{"typename": "nosuch"}'):
            ("DeviceNotFound", "Class 'nosuch' not found"),
        ("query-command-line-options", '{"option": "nosuch"}'):
            ("GenericError", "invalid option name: nosuch"),
        ("query-cpu-model-expansion", '{"type": "full", "model": {"name": "nosuch"}}'):
            ("GenericError", "CPU model 'nosuch' not found"),
        ("query-events", "{}"):
            ("CommandNotFound", "The command query-events has not been found"),
    }
    for (name, args), (cls, desc) in expect.items():
        r = qemu_probe.cmd(name, json.loads(args))
        assert r.get("error") == {"class": cls, "desc": desc}, (name, r)
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        # Without KVM: what query-kvm and query-sev-capabilities say (libvirt
        # reports "KVM is not supported" from enabled:false).
        assert ret(qemu_probe.cmd("query-kvm", {})) == {"enabled": False, "present": True}
        assert qemu_probe.cmd("query-sev-capabilities", {})["error"]["desc"] == "KVM not enabled"


def test_qemu_probe_shapes(qemu_probe):
    """The reply shapes Kestrel builds: machines, types, lists, the schema."""
    assert ret(qemu_probe.cmd("query-target", {})) == {"arch": "x86_64"}
    machines = by_name(ret(qemu_probe.cmd("query-machines", {})))
    assert set(machines["none"]) == {"name", "cpu-max", "hotpluggable-cpus",
                                     "numa-mem-supported", "deprecated", "default-ram-id"}
    assert machines["pc-i440fx-7.2"]["alias"] == "pc"
    assert set(machines["pc-i440fx-7.2"]) == {
        "name", "alias", "is-default", "cpu-max", "hotpluggable-cpus", "numa-mem-supported",
        "deprecated", "default-cpu-type", "default-ram-id"}
    accels = by_name(ret(qemu_probe.cmd("qom-list-types", {"implements": "accel"})))
    assert "kvm-accel" in accels and "tcg-accel" in accels   # Kestrel: no tcg-accel
    caps = ret(qemu_probe.cmd("query-migrate-capabilities", {}))
    assert caps and all(set(c) == {"capability", "state"} and c["state"] is False
                        for c in caps)
    for name in ("query-tpm-models", "query-tpm-types"):
        assert isinstance(ret(qemu_probe.cmd(name, {})), list)
    schema = ret(qemu_probe.cmd("query-qmp-schema", {}))
    index = schema_index(schema)
    assert index["0"] == {"name": "0", "meta-type": "object", "members": []}
    assert index["query-status"]["arg-type"] == "0"


# ---------------------------------------------------------------------------
# Kestrel's half: the same line, the same commands, compared with QEMU

def test_same_replies(qemu_probe, kestrel_probe):
    for name, args in SAME:
        q, k = qemu_probe.cmd(name, args), kestrel_probe.cmd(name, args)
        assert k == q, f"{name} {args}: QEMU {q} Kestrel {k}"


def test_machines_and_cpus(qemu_probe, kestrel_probe):
    q = by_name(ret(qemu_probe.cmd("query-machines", {})))
    k = by_name(ret(kestrel_probe.cmd("query-machines", {})))
    assert set(k) == {"pc-i440fx-7.2", "none"}
    for name in k:
        assert set(k[name]) == set(q[name]), name
    assert k["none"] == q["none"]
    assert k["pc-i440fx-7.2"]["alias"] == "pc" and k["pc-i440fx-7.2"]["is-default"]
    qd = by_name(ret(qemu_probe.cmd("query-cpu-definitions", {})))
    kd = by_name(ret(kestrel_probe.cmd("query-cpu-definitions", {})))
    assert set(kd) == {"host", "max", "qemu64"}
    for name in kd:
        # QEMU's qemu64 is an alias of its versioned qemu64-v1; Kestrel has one version.
        assert set(kd[name]) == set(qd[name]) - {"alias-of"}, name
        assert kd[name]["typename"] == qd[name]["typename"]
        assert kd[name]["migration-safe"] == qd[name]["migration-safe"], name


def test_types_are_qemus(qemu_probe, kestrel_probe):
    q = by_name(ret(qemu_probe.cmd("qom-list-types", {"abstract": True})))
    k = by_name(ret(kestrel_probe.cmd("qom-list-types", {"abstract": True})))
    for name, t in k.items():
        assert name in q, name
        assert t.get("parent") == q[name].get("parent") or name == "virtconsole", (t, q[name])
        assert t.get("abstract", False) == q[name].get("abstract", False), name
    accels = by_name(ret(kestrel_probe.cmd("qom-list-types", {"implements": "accel"})))
    assert "kvm-accel" in accels and "tcg-accel" not in accels


def test_properties_are_qemus(qemu_probe, kestrel_probe):
    for dev in DEVICES:
        q = by_name(ret(qemu_probe.cmd("device-list-properties", {"typename": dev})))
        k = ret(kestrel_probe.cmd("device-list-properties", {"typename": dev}))
        assert k, dev
        for p in k:
            assert p["name"] in q and p["type"] == q[p["name"]]["type"], (dev, p)
    for obj in OBJECTS:
        q = by_name(ret(qemu_probe.cmd("qom-list-properties", {"typename": obj})))
        k = ret(kestrel_probe.cmd("qom-list-properties", {"typename": obj}))
        for p in k:
            assert p["name"] in q and p["type"] == q[p["name"]]["type"], (obj, p)


def test_command_line_options_are_qemus(qemu_probe, kestrel_probe):
    q = by_name(ret(qemu_probe.cmd("query-command-line-options", {})), "option")
    k = by_name(ret(kestrel_probe.cmd("query-command-line-options", {})), "option")
    assert "sandbox" in q and "sandbox" not in k
    # QEMU reports only part of what some options take (-drive id=/cache= sit
    # in a list it does not report, -machine memory-backend= is a QOM
    # property): a parameter both name must have QEMU's type.
    for name, opt in k.items():
        assert name in q, name
        qp = by_name(q[name]["parameters"])
        for p in opt["parameters"]:
            assert p["name"] not in qp or p["type"] == qp[p["name"]]["type"], (name, p)


def test_named_differences(qemu_probe, kestrel_probe):
    """Where Kestrel has nothing, it says so in QEMU's shapes."""
    assert ret(kestrel_probe.cmd("query-migrate-capabilities", {})) == []
    assert ret(kestrel_probe.cmd("query-tpm-models", {})) == []
    assert ret(kestrel_probe.cmd("query-tpm-types", {})) == []
    r = kestrel_probe.cmd("query-cpu-model-expansion",
                          {"type": "static", "model": {"name": "host"}})
    assert r["error"]["class"] == "GenericError"


def test_schema_is_a_subset_of_qemus(qemu_probe, kestrel_probe):
    qi = schema_index(ret(qemu_probe.cmd("query-qmp-schema", {})))
    ki = schema_index(ret(kestrel_probe.cmd("query-qmp-schema", {})))
    kcmds = {c["name"] for c in ret(kestrel_probe.cmd("query-commands", {}))}
    assert kcmds == {n for n, e in ki.items() if e["meta-type"] == "command"}
    for name, e in ki.items():
        if e["meta-type"] not in ("command", "event"):
            continue
        assert name in qi, name
        qm, km = members(qi, qi[name]["arg-type"]), members(ki, e["arg-type"])
        for m, optional in km.items():
            assert m in qm, (name, m)
        if "ret-type" in e and e["ret-type"] not in ("any", "str", "0"):
            qr = members(qi, qi[name]["ret-type"])
            for m in members(ki, e["ret-type"]):
                assert m in qr, (name, "returns", m)
