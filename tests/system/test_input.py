"""Monitor input commands (#21, #22): HMP sendkey, mouse_move, mouse_button,
info mice and QMP send-key, input-send-event, query-mice, on QEMU 7.2 and on
Kestrel started with the same line.

`-machine none` has no input devices on either (QEMU runs it with TCG,
Kestrel without /dev/kvm), so the answers there are the argument checks and
the "no device" answers, compared equal.  The pc machine (the PS/2 keyboard
and mouse) needs a guest on Kestrel: that comparison is a guest test.
"""

import pytest

from conftest import KESTREL, need_qemu
from qmp_client import QMPProcess

pytestmark = pytest.mark.qemu


class VM(QMPProcess):
    def __init__(self, binary, tmp_path, name, machine, extra=()):
        super().__init__(binary, tmp_path, name, ["-no-user-config", "-nodefaults",
                                                  "-nographic", "-machine", machine], extra)


@pytest.fixture(scope="module")
def none_vms(tmp_path_factory):
    need_qemu()
    d = tmp_path_factory.mktemp("input")
    q = VM("qemu-system-x86_64", d, "q", "none,accel=tcg")
    try:
        k = VM(KESTREL, d, "k", "none,accel=kvm:tcg")
    except AssertionError:
        q.stop()
        raise
    yield q, k
    q.stop()
    k.stop()


HMP_LINES = [
    "info mice", "sendkey ctrl-alt-delete", "sendkey 0x1e", "sendkey a 50", "sendkey foo",
    "sendkey a-", "sendkey -a", "sendkey 0xzz", "sendkey 0x1ff", "sendkey", "sendkey a b",
    "sendkey a -5", "sendkey kp_1-shift-ctrl-alt-meta_l-a-b-c-d-e-f", "sendkey <",
    "sendkey f13", "sendkey lang1-menu-sysrq", "sendkey 0x100", "sendkey a 4294967296",
    "mouse_move 1 2", "mouse_move 1 2 3", "mouse_move a b", "mouse_move 1", "mouse_button 1",
    "mouse_button x", "mouse_button", "help sendkey", "help mouse_move", "help mouse_button",
]


@pytest.mark.parametrize("line", HMP_LINES)
def test_hmp_input_as_qemu(none_vms, line):
    q, k = none_vms
    assert k.hmp(line) == q.hmp(line), line


KEY = {"type": "key", "data": {"down": True, "key": {"type": "qcode", "data": "a"}}}
QMP_CMDS = [
    ("query-mice", None),
    ("send-key", {"keys": [{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"},
                           {"type": "qcode", "data": "delete"}]}),
    ("send-key", {"keys": [{"type": "number", "data": 30}], "hold-time": 50}),
    ("send-key", {"keys": []}),
    ("send-key", {"keys": [{"type": "qcode", "data": "foo"}]}),
    ("send-key", {"keys": [{"type": "qcode", "data": "f13"}]}),
    ("send-key", {"keys": [{"type": "number", "data": 286}]}),
    ("send-key", {"keys": [{"type": "bad", "data": 30}]}),
    ("send-key", {"keys": [{"type": "number", "data": "x"}]}),
    ("send-key", {"keys": [{"type": "number", "data": -1}]}),
    ("send-key", {"keys": [{"type": "qcode"}]}),
    ("send-key", {"keys": 5}),
    ("send-key", {"keys": [5]}),
    ("send-key", {"keys": [{"type": "qcode", "data": "a", "x": 1}]}),
    ("send-key", {}),
    ("send-key", {"keys": [], "foo": 1}),
    ("input-send-event", {"events": [KEY]}),
    ("input-send-event", {"events": [{"type": "rel", "data": {"axis": "x", "value": 10}}]}),
    ("input-send-event", {"events": [{"type": "abs", "data": {"axis": "x", "value": 10}}]}),
    ("input-send-event", {"events": []}),
    ("input-send-event", {"device": "foo", "events": [KEY]}),
    ("input-send-event", {"events": [{"type": "rel", "data": {"axis": "q", "value": 1}}]}),
    ("input-send-event", {"events": [{"type": "btn", "data": {"down": True, "button": "x"}}]}),
    ("input-send-event", {"events": [{"type": "zz", "data": {}}]}),
    ("input-send-event", {"events": [{"type": "key", "data": {"key": KEY["data"]["key"]}}]}),
    ("input-send-event", {"events": [{"type": "rel"}]}),
]


@pytest.mark.parametrize("name,args", QMP_CMDS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(QMP_CMDS)])
def test_qmp_input_as_qemu(none_vms, name, args):
    q, k = none_vms
    assert k.cmd(name, args) == q.cmd(name, args)


@pytest.mark.guest
def test_pc_mice_as_qemu(tmp_path):
    """The pc machine's PS/2 mouse: QEMU's name and id, current, relative."""
    need_qemu()
    q = VM("qemu-system-x86_64", tmp_path, "q", "pc,accel=tcg", ["-S"])
    k = VM(KESTREL, tmp_path, "k", "pc", ["-S"])
    try:
        want = [{"index": 2, "name": "QEMU PS/2 Mouse", "current": True, "absolute": False}]
        assert q.cmd("query-mice")["return"] == want
        assert k.cmd("query-mice")["return"] == want
        assert k.hmp("info mice") == q.hmp("info mice") == "* Mouse #2: QEMU PS/2 Mouse\r\n"
        # Stopped (-S): QEMU refuses input-send-event; so does Kestrel.
        ev = {"events": [{"type": "rel", "data": {"axis": "x", "value": 1}}]}
        assert k.cmd("input-send-event", ev) == q.cmd("input-send-event", ev)
    finally:
        q.stop()
        k.stop()
