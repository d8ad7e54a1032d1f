"""kestrel-nbd, the qemu-nbd role (issue #20, "Serving"): each test starts the server
on a Unix socket in its own directory (or a loopback port) and stops it.  Clients are
qemu-img, qemu-io, nbdinfo (libnbd), kestrel-img, and a small raw-socket client here
for what those never send (hostile requests).  Answers are compared with qemu-nbd 7.2
serving the same image."""
import json
import os
import shutil
import socket
import struct
import subprocess
import time

import pytest

from test_img_helpers import BUILD, KIMG, SANITIZER_REPORT
from test_nbd import free_port, needs_libnbd, servers, wait_for  # noqa: F401

KNBD = BUILD / "src" / "nbd" / "kestrel-nbd"

pytestmark = [
    pytest.mark.skipif(not KNBD.exists(), reason=f"{KNBD} is not built"),
    pytest.mark.skipif(not shutil.which("qemu-nbd") or not shutil.which("nbdinfo"),
                       reason="qemu-nbd and nbdinfo (libnbd-bin) are needed"),
]

MiB = 1 << 20


def sh(*argv, check=True):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, f"{argv}: {p.stdout}{p.stderr}"
    return p


_started = []


@pytest.fixture(autouse=True)
def no_sanitizer_reports():
    """Under the sanitizer build (KESTREL_BUILD=build-asan) a report on a server's
    stderr fails the test; the servers fixture has stopped them (SIGTERM) by then."""
    _started.clear()
    yield
    for s in _started:
        if s.proc.poll() is None:
            s.stop()
        err = s.proc.stderr.read().decode(errors="replace")
        assert not SANITIZER_REPORT.search(err), err


def serve(servers, tmp_path, image, *opts, prog=None, name="k"):
    """Starts kestrel-nbd (or qemu-nbd with prog=) on tmp_path/NAME.sock: (server, uri)."""
    sock = tmp_path / f"{name}.sock"
    argv = [prog or str(KNBD), *opts, "-k", str(sock), str(image)]
    s = servers(argv, sock)
    if prog is None:
        _started.append(s)
    export = ""
    if "-x" in opts:
        export = opts[opts.index("-x") + 1]
    return s, f"nbd+unix:///{export}?socket={sock}"


def raw_image(path, size=16 * MiB):
    sh("qemu-img", "create", "-q", "-f", "raw", path, size)
    sh("qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 3M", "-c", "write -z 8M 1M",
       "-c", "write -P 0x11 12M 64k", path)
    return path


def qcow2_chain(tmp_path):
    """A qcow2 overlay on a qcow2 base: data in both, a zero cluster, holes."""
    base, top = tmp_path / "base.qcow2", tmp_path / "top.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", base, "16M")
    sh("qemu-io", "-c", "write -P 0xaa 0 2M", "-c", "write -P 0xab 6M 1M", base)
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
    sh("qemu-io", "-c", "write -P 0xbb 1M 64k", "-c", "write -z 6M 64k",
       "-c", "write -P 0xcc 10M 512k", top)
    return top


def images(tmp_path, kind):
    if kind == "raw":
        return raw_image(tmp_path / "d.raw"), "raw"
    return qcow2_chain(tmp_path), "qcow2"


def nbdinfo_json(uri):
    d = json.loads(sh("nbdinfo", "--json", uri).stdout)
    for e in d["exports"]:
        e.pop("uri")
    return d


def both_servers(servers, tmp_path, image, fmt, *opts):
    """The same image served read-only by qemu-nbd and kestrel-nbd: (qemu uri, kestrel uri)."""
    _, q = serve(servers, tmp_path, image, "-r", "-t", "-f", fmt, *opts, prog="qemu-nbd",
                 name="q")
    _, k = serve(servers, tmp_path, image, "-r", "-t", "-f", fmt, *opts)
    return q, k


@pytest.mark.parametrize("kind", ["raw", "qcow2"])
def test_nbdinfo_and_maps_match_qemu_nbd(servers, tmp_path, kind):
    image, fmt = images(tmp_path, kind)
    q, k = both_servers(servers, tmp_path, image, fmt, "-x", "exp", "-D", "a disk")
    assert nbdinfo_json(k) == nbdinfo_json(q)
    assert sh("nbdinfo", "--map", k).stdout == sh("nbdinfo", "--map", q).stdout
    assert sh("nbdinfo", "--map", k).stdout.count("\n") > 3        # holes, zeroes and data
    qmap = sh("qemu-img", "map", "--output=json", "-f", "raw", q).stdout
    assert sh("qemu-img", "map", "--output=json", "-f", "raw", k).stdout == qmap
    assert sh(KIMG, "map", "--output=json", "-f", "raw", k).stdout == qmap
    assert sh("nbdinfo", "--list", "--json", k).stdout.replace(k, q) == \
        sh("nbdinfo", "--list", "--json", q).stdout


@pytest.mark.parametrize("kind", ["raw", "qcow2"])
def test_writable_export_flags_match_qemu_nbd(servers, tmp_path, kind):
    image, fmt = images(tmp_path, kind)
    s, q = serve(servers, tmp_path, image, "-t", "-f", fmt, prog="qemu-nbd", name="q")
    want = nbdinfo_json(q)
    s.stop()
    _, k = serve(servers, tmp_path, image, "-t", "-f", fmt)
    got = nbdinfo_json(k)
    # NBD_CMD_FLAG_FAST_ZERO is not offered: Kestrel cannot tell a slow zeroing in advance.
    want["exports"][0].pop("can_fast_zero")
    assert got["exports"][0].pop("can_fast_zero") is False
    assert got == want


@pytest.mark.parametrize("kind", ["raw", "qcow2"])
def test_qemu_img_info_and_compare_through_kestrel_nbd(servers, tmp_path, kind):
    image, fmt = images(tmp_path, kind)
    q, k = both_servers(servers, tmp_path, image, fmt)
    qi = sh("qemu-img", "info", "--output=json", q).stdout
    assert sh("qemu-img", "info", "--output=json", k).stdout.replace("k.sock", "q.sock") == qi
    sh("qemu-img", "compare", "-f", fmt, "-F", "raw", image, k)
    sh("qemu-img", "compare", "-f", "raw", "-F", "raw", q, k)


def test_qemu_io_writes_through_kestrel_nbd_land_in_the_qcow2_overlay(servers, tmp_path):
    top = qcow2_chain(tmp_path)
    s, k = serve(servers, tmp_path, top, "-t", "-f", "qcow2")
    sh("qemu-io", "-f", "raw", "-c", "write -P 0x77 3M 128k", "-c", "write -z 1M 64k",
       "-c", "flush", k)
    out = sh("qemu-io", "-f", "raw", "-c", "read -P 0x77 3M 128k", "-c", "read -P 0 1M 64k",
             "-c", "read -P 0xaa 0 1M", "-c", "read -P 0xcc 10M 512k", k).stdout
    assert "Pattern verification failed" not in out
    s.stop()
    out = sh("qemu-io", "-c", "read -P 0x77 3M 128k", "-c", "read -P 0 1M 64k", top).stdout
    assert "Pattern verification failed" not in out
    sh("qemu-img", "check", top)
    # The backing file was not written.
    out = sh("qemu-io", "-c", "read -P 0xaa 0 2M", tmp_path / "base.qcow2").stdout
    assert "Pattern verification failed" not in out


# A raw-socket NBD client: sends what real clients never do.

class Client:
    def __init__(self, sock_path, timeout=5):
        tcp = isinstance(sock_path, tuple)      # (host, port)
        self.s = socket.socket(socket.AF_INET if tcp else socket.AF_UNIX)
        self.s.settimeout(timeout)
        self.s.connect(sock_path if tcp else str(sock_path))
        if tcp:   # the client side sends at once; what is measured is the server's
            self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def recv(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError(f"server closed after {len(b)} of {n} bytes")
            b += c
        return b

    def hello(self, flags=3):
        h = self.recv(18)
        assert h[:16] == b"NBDMAGICIHAVEOPT"
        self.s.sendall(struct.pack(">I", flags))

    def opt(self, opt, data=b"", length=None):
        n = len(data) if length is None else length
        self.s.sendall(b"IHAVEOPT" + struct.pack(">II", opt, n) + data)

    def reply(self):
        magic, opt, typ, n = struct.unpack(">QIII", self.recv(20))
        assert magic == 0x3e889045565a9
        return opt, typ, self.recv(n)

    def go(self, name=b"", structured=False, meta=False):
        if structured:
            self.opt(8)
            assert self.reply()[1] == 1
        if meta:
            q = b"base:allocation"
            self.opt(10, struct.pack(">I", len(name)) + name + struct.pack(">II", 1, len(q)) + q)
            assert self.reply()[1] == 4 and self.reply()[1] == 1
        self.opt(7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
        while True:
            _, typ, data = self.reply()
            if typ == 3 and struct.unpack(">H", data[:2])[0] == 0:
                self.size, self.flags = struct.unpack(">QH", data[2:])
            if typ != 3:
                return typ

    def cmd(self, typ, off, length, flags=0, data=b"", magic=0x25609513):
        self.s.sendall(struct.pack(">IHHQQI", magic, flags, typ, 42, off, length) + data)

    def simple(self):
        magic, err, handle = struct.unpack(">IIQ", self.recv(16))
        assert magic == 0x67446698 and handle == 42
        return err

    def closed(self):
        try:
            return self.s.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    def close(self):
        self.s.close()


def open_client(sock, **kw):
    c = Client(sock)
    c.hello()
    assert c.go(**kw) == 1
    return c


def still_serves(sock, size):
    c = open_client(sock)
    c.cmd(0, 0, 4096)
    assert c.simple() == 0 and len(c.recv(4096)) == 4096 and c.size == size
    c.close()


EPERM, EINVAL, ENOSPC = 1, 22, 28


def test_read_only_export_answers_writes_with_eperm(servers, tmp_path):
    image = raw_image(tmp_path / "d.raw")
    before = image.read_bytes()
    serve(servers, tmp_path, image, "-r", "-t")
    c = open_client(tmp_path / "k.sock")
    assert c.flags & 2                                   # NBD_FLAG_READ_ONLY
    c.cmd(1, 0, 512, data=b"x" * 512)
    assert c.simple() == EPERM
    for typ in (4, 6):                                   # TRIM, WRITE_ZEROES
        c.cmd(typ, 0, 4096)
        assert c.simple() == EPERM
    c.cmd(0, 1 * MiB, 512)
    assert c.simple() == 0 and c.recv(512) == b"\x5a" * 512
    c.close()                                            # one client at a time (-e 1)
    p = sh("qemu-io", "-f", "raw", "-c", "write 0 512", f"nbd+unix:///?socket={tmp_path}/k.sock",
           check=False)
    assert p.returncode == 1 and "Permission denied" in p.stderr      # as from qemu-nbd -r
    assert image.read_bytes() == before


def test_hostile_requests_get_nbd_errors_or_a_hangup_and_the_server_goes_on(servers, tmp_path):
    size = 64 * MiB
    image = raw_image(tmp_path / "d.raw", size)
    sock = tmp_path / "k.sock"
    serve(servers, tmp_path, image, "-t", "-e", "0")
    c = open_client(sock)
    c.cmd(0, size - 512, 1024)                           # read past the end
    assert c.simple() == EINVAL
    c.cmd(0, 1 << 63, 512)                               # offset far beyond
    assert c.simple() == EINVAL
    c.cmd(1, size, 512, data=b"y" * 512)                 # write past the end
    assert c.simple() == ENOSPC
    c.cmd(0, 0, 33 * MiB)                                # inside, but over the 32 MiB limit
    assert c.simple() == EINVAL
    c.cmd(0, 0, 0)                                       # empty read
    assert c.simple() == 0
    c.cmd(99, 0, 512)                                    # unknown command
    assert c.simple() == EINVAL
    c.cmd(0, 0, 512, flags=0x80)                         # unknown command flag
    assert c.simple() == EINVAL
    c.cmd(7, 0, 512)                                     # BLOCK_STATUS without a context
    assert c.simple() == EINVAL
    c.cmd(0, 0, 512)                                     # and the session still works
    assert c.simple() == 0 and c.recv(512) == bytes(512)
    c.cmd(1, 0, 0xffffffff)                              # a write payload it will not read
    assert c.simple() == EINVAL and c.closed()
    still_serves(sock, size)

    c = open_client(sock)
    c.cmd(0, 0, 512, magic=0xdeadbeef)                   # bad request magic: hang up
    assert c.closed()
    c = open_client(sock)
    c.s.sendall(struct.pack(">IHH", 0x25609513, 0, 0))   # truncated request
    c.s.shutdown(socket.SHUT_WR)
    assert c.closed()
    still_serves(sock, size)


def test_hostile_handshakes_end_cleanly(servers, tmp_path):
    image = raw_image(tmp_path / "d.raw")
    sock = tmp_path / "k.sock"
    serve(servers, tmp_path, image, "-t", "-e", "0")
    c = Client(sock)
    c.hello(flags=0)                                     # not fixed newstyle
    assert c.closed()
    c = Client(sock)
    c.hello(flags=0x80000001)                            # unknown client flag
    assert c.closed()
    c = Client(sock)
    c.hello()
    c.s.sendall(b"BADMAGIC" + struct.pack(">II", 7, 0))
    assert c.closed()
    c = Client(sock)
    c.hello()
    c.opt(7, length=0xfffffff0)                          # 4 GiB of option data announced
    assert c.reply()[1] == (1 << 31) | 9                 # NBD_REP_ERR_TOO_BIG, then hang up
    assert c.closed()
    c = Client(sock)
    c.hello()
    c.opt(0x1234)                                        # unknown option
    assert c.reply()[1] == (1 << 31) | 1                 # NBD_REP_ERR_UNSUP, and go on
    c.opt(7, struct.pack(">I", 1000) + b"x")             # name length beyond the data
    assert c.reply()[1] == (1 << 31) | 3                 # NBD_REP_ERR_INVALID
    c.opt(10, struct.pack(">II", 0, 0))                  # SET_META before structured replies
    assert c.reply()[1] == (1 << 31) | 3
    c.opt(7, struct.pack(">I", 5) + b"wrong" + struct.pack(">H", 0))
    assert c.reply()[1] == (1 << 31) | 6                 # NBD_REP_ERR_UNKNOWN
    c.opt(1, b"wrong")                                   # EXPORT_NAME of no export: hang up
    assert c.closed()
    stalled = Client(sock)                               # half an option header, then silence
    stalled.hello()
    stalled.s.sendall(b"IHAVE")
    still_serves(sock, 16 * MiB)                         # others are served meanwhile (-e 0)
    stalled.close()
    c = Client(sock)
    c.hello()
    c.opt(2)                                             # ABORT: acknowledged
    assert c.reply()[1] == 1 and c.closed()
    c = Client(sock)
    c.hello()
    c.opt(1, b"")                                        # the old way in
    size, flags = struct.unpack(">QH", c.recv(10))
    assert size == 16 * MiB and flags & 1
    c.cmd(0, 1 * MiB, 8)
    assert c.simple() == 0 and c.recv(8) == b"\x5a" * 8
    still_serves(sock, 16 * MiB)


def test_structured_reads_and_block_status(servers, tmp_path):
    image = raw_image(tmp_path / "d.raw")
    serve(servers, tmp_path, image, "-t")
    c = open_client(tmp_path / "k.sock", structured=True, meta=True)
    # qemu-img create wrote the first 4 KiB of the raw file; then a hole to 1 MiB.
    c.cmd(7, 64 << 10, 15 * MiB, flags=8)                # BLOCK_STATUS, REQ_ONE
    magic, flags, typ, handle, n = struct.unpack(">IHHQI", c.recv(20))
    assert (magic, flags & 1, typ, n) == (0x668e33ef, 1, 5, 12)
    ctx, length, state = struct.unpack(">III", c.recv(12))
    assert (length, state) == (1 * MiB - (64 << 10), 3)  # hole, zero
    c.cmd(0, 64 << 10, 3 * MiB)                          # a hole chunk, then data
    kinds = []
    while True:
        magic, flags, typ, handle, n = struct.unpack(">IHHQI", c.recv(20))
        body = c.recv(n)
        kinds.append(typ)
        if typ == 1:
            assert body[8:] == b"\x5a" * (n - 8)
        if flags & 1:
            break
    assert kinds == [2, 1]
    c.cmd(0, 16 * MiB, 1)                                # an error is one error chunk
    magic, flags, typ, handle, n = struct.unpack(">IHHQI", c.recv(20))
    assert typ == 0x8001 and struct.unpack(">I", c.recv(n)[:4])[0] == EINVAL


def test_export_name_and_a_wrong_name(servers, tmp_path):
    image = raw_image(tmp_path / "d.raw")
    _, k = serve(servers, tmp_path, image, "-t", "-x", "disk1", "-D", "first disk")
    assert "first disk" in sh("nbdinfo", k).stdout
    p = sh("nbdinfo", f"nbd+unix:///other?socket={tmp_path}/k.sock", check=False)
    assert p.returncode != 0
    p = sh(KIMG, "info", f"nbd+unix:///?socket={tmp_path}/k.sock", check=False)
    assert p.returncode == 1 and "Could not open" in p.stderr


def test_without_t_the_server_ends_with_its_client_and_with_t_it_serves_in_turn(servers,
                                                                                   tmp_path):
    image = raw_image(tmp_path / "d.raw")
    s, k = serve(servers, tmp_path, image)
    sh("nbdinfo", "--size", k)
    s.proc.wait(5)
    assert s.proc.returncode == 0
    _, k = serve(servers, tmp_path, image, "-t", name="t")
    for _ in range(3):
        assert sh("nbdinfo", "--size", k).stdout.strip() == str(16 * MiB)


def test_shared_limits_concurrent_clients(servers, tmp_path):
    image = raw_image(tmp_path / "d.raw")
    sock = tmp_path / "k.sock"
    serve(servers, tmp_path, image, "-t", "-e", "2")
    a, b = open_client(sock), open_client(sock)
    assert a.flags & (1 << 8)                            # CAN_MULTI_CONN with -e 2
    for c in (a, b):
        c.cmd(0, 1 * MiB, 512)
        assert c.simple() == 0 and c.recv(512) == b"\x5a" * 512
    third = Client(sock, timeout=0.5)
    with pytest.raises(socket.timeout):                  # waits while two are served
        third.recv(1)
    a.close()
    third.s.settimeout(5)
    third.hello()
    assert third.go() == 1
    b.close()
    third.close()


def test_default_serves_one_client_at_a_time(servers, tmp_path):
    image = raw_image(tmp_path / "d.raw")
    sock = tmp_path / "k.sock"
    serve(servers, tmp_path, image, "-t")
    a = open_client(sock)
    assert not a.flags & (1 << 8)
    b = Client(sock, timeout=0.5)
    with pytest.raises(socket.timeout):
        b.recv(1)
    a.close()
    b.s.settimeout(5)
    b.hello()
    assert b.go() == 1


def test_fork_returns_when_ready_and_writes_the_pid_file(tmp_path):
    image = raw_image(tmp_path / "d.raw")
    sock, pidf = tmp_path / "k.sock", tmp_path / "pid"
    p = subprocess.run([KNBD, "--fork", "--pid-file", pidf, "-t", "-k", sock, image],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    pid = int(pidf.read_text())
    try:
        assert os.path.exists(f"/proc/{pid}")
        # Ready on return: no waiting for the socket.
        assert sh("nbdinfo", "--size", f"nbd+unix:///?socket={sock}").stdout.strip() == \
            str(16 * MiB)
    finally:
        os.kill(pid, 15)
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}") or \
                open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.05)
    # A failing start is the parent's failure.
    p = subprocess.run([KNBD, "--fork", "-k", sock, tmp_path / "missing"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1 and "missing" in p.stderr


def test_snapshot_writes_go_to_a_temporary_overlay(servers, tmp_path):
    image = raw_image(tmp_path / "d.raw")
    before = image.read_bytes()
    s, k = serve(servers, tmp_path, image, "-s", "-t", "-f", "raw")
    sh("qemu-io", "-f", "raw", "-c", "write -P 0x99 0 1M", k)
    out = sh("qemu-io", "-f", "raw", "-c", "read -P 0x99 0 1M", "-c", "read -P 0x5a 1M 1M",
             k).stdout
    assert "Pattern verification failed" not in out
    s.stop()
    assert image.read_bytes() == before


def test_load_snapshot_serves_an_internal_snapshot_read_only(servers, tmp_path):
    img = tmp_path / "s.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", img, "4M")
    sh("qemu-io", "-c", "write -P 0x01 0 1M", img)
    sh("qemu-img", "snapshot", "-c", "snap1", img)
    sh("qemu-io", "-c", "write -P 0x02 0 1M", img)
    for arg in ("snap1", "snapshot.name=snap1", "snapshot.id=1"):
        s, k = serve(servers, tmp_path, img, "-t", "-l", arg, name=arg.replace("=", "_"))
        info = nbdinfo_json(k)["exports"][0]
        assert info["is_read_only"]
        out = sh("qemu-io", "-r", "-f", "raw", "-c", "read -P 0x01 0 1M", k).stdout
        assert "Pattern verification failed" not in out
        s.stop()
    p = subprocess.run([KNBD, "-l", "nosuch", "-k", tmp_path / "x.sock", img],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "nosuch" in p.stderr


@needs_libnbd
def test_kestrel_img_converts_to_and_from_an_export(servers, tmp_path):
    src = qcow2_chain(tmp_path)
    target = tmp_path / "t.raw"
    sh("qemu-img", "create", "-q", "-f", "raw", target, "16M")
    _, k = serve(servers, tmp_path, target, "-t", "-f", "raw")
    sh(KIMG, "convert", "-n", "-O", "raw", src, k)
    sh("qemu-img", "compare", "-F", "raw", src, target)
    out = tmp_path / "back.qcow2"
    sh(KIMG, "convert", "-f", "raw", "-O", "qcow2", k, out)
    sh("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", out, src)
    sh("qemu-img", "check", out)


def test_discard_and_detect_zeroes_modes_change_allocation(servers, tmp_path):
    def alloc_after(*opts):
        img = tmp_path / "z.qcow2"
        sh("qemu-img", "create", "-q", "-f", "qcow2", img, "4M")
        sh("qemu-io", "-c", "write -P 0x33 0 1M", img)
        s, k = serve(servers, tmp_path, img, "-t", "-f", "qcow2", *opts)
        sh("qemu-io", "-f", "raw", "-c", "discard 0 512k", "-c", "write -P 0 2M 1M", k)
        s.stop()
        return json.loads(sh("qemu-img", "map", "--output=json", img).stdout)

    def kind(m, off):
        e = next(e for e in m if e["start"] <= off < e["start"] + e["length"])
        return e["data"], e["zero"]

    m = alloc_after()                                     # --discard=ignore: trim is a no-op
    assert kind(m, 0) == (True, False) and kind(m, 2 * MiB) == (True, False)
    m = alloc_after("--discard=unmap", "--detect-zeroes=unmap")
    assert kind(m, 0) == (False, True) and kind(m, 2 * MiB) == (False, True)
    m = alloc_after("--detect-zeroes=on")
    assert kind(m, 0) == (True, False) and kind(m, 2 * MiB)[1] is True


def test_offset_exports_the_rest_of_the_image(servers, tmp_path):
    image = raw_image(tmp_path / "d.raw")
    serve(servers, tmp_path, image, "-t", "-o", "1M")
    c = open_client(tmp_path / "k.sock")
    assert c.size == 15 * MiB
    c.cmd(0, 0, 16)
    assert c.simple() == 0 and c.recv(16) == b"\x5a" * 16


def test_nocache_opens_the_image_with_o_direct(servers, tmp_path):
    image = raw_image(tmp_path / "d.raw")
    try:
        os.close(os.open(image, os.O_RDONLY | os.O_DIRECT))
    except OSError:
        pytest.skip("the test directory's file system has no O_DIRECT")

    def image_fd_flags(proc):
        for fd in os.listdir(f"/proc/{proc.pid}/fd"):
            if os.readlink(f"/proc/{proc.pid}/fd/{fd}") == str(image):
                text = open(f"/proc/{proc.pid}/fdinfo/{fd}").read()
                return int(text.split("flags:")[1].split()[0], 8)
        raise AssertionError("image not open")

    for opts, direct, dsync in ((["-n"], True, False), (["--cache=writethrough"], False, True),
                                ([], False, False)):
        s, _ = serve(servers, tmp_path, image, "-t", *opts)
        f = image_fd_flags(s.proc)
        assert (bool(f & os.O_DIRECT), bool(f & os.O_DSYNC)) == (direct, dsync), opts
        s.stop()


def test_verbose_reports_clients(tmp_path):
    image = raw_image(tmp_path / "d.raw")
    sock = tmp_path / "k.sock"
    p = subprocess.Popen([KNBD, "-v", "-k", sock, image], stderr=subprocess.PIPE, text=True)
    wait_for(sock, p)
    sh("nbdinfo", "--size", f"nbd+unix:///?socket={sock}")
    assert p.wait(5) == 0
    err = p.stderr.read()
    assert "client connected" in err and "client disconnected" in err


def test_tcp_port_and_bind(servers, tmp_path):
    image = raw_image(tmp_path / "d.raw")
    port = free_port()
    servers([str(KNBD), "-t", "-b", "127.0.0.1", "-p", str(port), str(image)], port)
    assert sh("nbdinfo", "--size", f"nbd://127.0.0.1:{port}").stdout.strip() == str(16 * MiB)


def test_tcp_replies_are_not_held_back_by_nagle(servers, tmp_path):
    # A reply is a header write and a data write: with Nagle on, the data waits for the
    # client's delayed ACK (about 40 ms), so 100 sequential 4 KiB reads took ~4 s before
    # kestrel-nbd set TCP_NODELAY as qemu-nbd does (bench/storage: nbd-kestrel from 0.44x).
    image = raw_image(tmp_path / "d.raw")
    port = free_port()
    servers([str(KNBD), "-t", "-b", "127.0.0.1", "-p", str(port), str(image)], port)
    c = open_client(("127.0.0.1", port))
    start = time.monotonic()
    for i in range(100):
        c.cmd(0, i * 4096, 4096)
        assert c.simple() == 0 and len(c.recv(4096)) == 4096
    took = time.monotonic() - start
    c.close()
    assert took < 1.5, f"100 reads took {took:.2f} s"


def test_image_opts_and_locking(servers, tmp_path):
    image = raw_image(tmp_path / "d.raw")
    _, k = serve(servers, tmp_path, f"driver=raw,file.filename={image}", "-t", "--image-opts")
    assert sh("nbdinfo", "--size", k).stdout.strip() == str(16 * MiB)
    # The image is locked for writing: a second server is refused, readers are not.
    p = sh("qemu-nbd", "-f", "raw", "-k", tmp_path / "q.sock", image, check=False)
    assert p.returncode == 1 and 'Failed to get "write" lock' in p.stderr
    sh("qemu-img", "info", "-f", "raw", image)


@pytest.mark.parametrize("opts,msg", [
    (["-c", "/dev/nbd0"], "--connect is not supported"),
    (["-d"], "--disconnect is not supported"),
    (["-B", "b0"], "--bitmap is not supported"),
    (["-A"], "--allocation-depth is not supported"),
    (["-L"], "--list is not supported"),
    (["--tls-creds", "tls0"], "No TLS credentials with id 'tls0'"),
    (["--tls-hostname", "h"], "--tls-hostname is not supported"),
    (["--tls-authz", "a0"], "--tls-authz is not supported"),
    (["-T", "nbd_*"], "--trace is not supported"),
    (["--aio=native"], "--aio is not supported"),
    (["--aio=bogus"], "invalid aio mode"),
    (["--discard=bogus"], "Invalid discard mode"),
    (["--detect-zeroes=unmap"], "discard operation to unmap"),
    (["--cache=bogus"], "Invalid cache mode"),
    (["-e", "x"], "Invalid shared device number"),
    (["-s", "-l", "a"], "-s and -l"),
    (["-k", "/tmp/x.sock", "-p", "1"], "--socket cannot be used with --port"),
    (["--object", "secret,id=s0"], "'file' or 'data' must be provided"),
    (["--frobnicate"], "unrecognized option"),
])
def test_bad_and_unimplemented_options_are_refused_by_name(tmp_path, opts, msg):
    image = tmp_path / "d.raw"
    sh("qemu-img", "create", "-q", "-f", "raw", image, "1M")
    p = subprocess.run([KNBD, *opts, "-k", tmp_path / "k.sock", image], capture_output=True,
                       text=True, timeout=10)
    if "-k" in opts:
        p = subprocess.run([KNBD, *opts, image], capture_output=True, text=True, timeout=10)
    assert p.returncode != 0 and msg in p.stderr, p.stderr
    assert not (tmp_path / "k.sock").exists()


def test_missing_image_and_version(tmp_path):
    p = subprocess.run([KNBD, "-k", tmp_path / "k.sock", tmp_path / "nope.qcow2"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "nope.qcow2" in p.stderr
    p = subprocess.run([KNBD], capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "image file" in p.stderr
    assert subprocess.run([KNBD, "-V"], capture_output=True, text=True).stdout.startswith(
        "kestrel-nbd ")
    assert "--export-name" in subprocess.run([KNBD, "--help"], capture_output=True,
                                             text=True).stdout


def test_two_clients_write_a_qcow2_export_at_once(servers, tmp_path):
    img = tmp_path / "c.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", img, "32M")
    s, k = serve(servers, tmp_path, img, "-t", "-e", "2", "-f", "qcow2")
    writers = [subprocess.Popen(["qemu-io", "-f", "raw", *sum(
        (["-c", f"write -P {0x10 + w} {(w * 16 + i) * 512}k 512k"] for i in range(16)), []), k],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in (0, 1)]
    for w in writers:
        out, err = w.communicate(timeout=60)
        assert w.returncode == 0 and "failed" not in out, out + err
    for w in (0, 1):
        out = sh("qemu-io", "-f", "raw", "-c", f"read -P {0x10 + w} {w * 8}M 8M", k).stdout
        assert "Pattern verification failed" not in out
    s.stop()
    sh("qemu-img", "check", img)
