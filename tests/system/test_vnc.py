"""The VNC server (src/ui/vnc.c) with real clients, over tests/display/vnc_harness
(a synthetic video device: this host has no KVM).  Debian's gvnccapture (gvncviewer)
and vncsnapshot connect as users' viewers do; vnc_client.py speaks raw RFB for what
viewers cannot do (hostile peers, exact event checks)."""
import os
import queue
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import BUILD, KESTREL
from vnc_client import AuthFailed, Client, png_pixels, vncpasswd_file

HARNESS = BUILD / "tests" / "display" / "vnc_harness"


def _built_in():
    try:
        return subprocess.run([str(HARNESS), "--built-in"], capture_output=True, text=True,
                              timeout=10).stdout.strip() == "yes"
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _built_in(),
                                reason="built without libvncserver (-Dvnc=disabled)")


def pattern(x, y, seed):
    """tests/display/vnc_harness.c's pattern."""
    return ((x * 7 + seed) & 0xff, (y * 3 + seed * 5) & 0xff, ((x ^ y) + seed) & 0xff)


def free_display():
    """A display number whose port 5900+D (and the next two) is free."""
    for d in range(40, 99):
        ok = True
        for k in range(3):
            s = socket.socket()
            try:
                s.bind(("0.0.0.0", 5900 + d + k))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return d
    pytest.skip("no free VNC port")


class Harness:
    def __init__(self, vnc, layout=None):
        argv = [str(HARNESS), vnc] + ([layout] if layout else [])
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()
        m = self.expect(r"LISTENING (-?\d+)")
        self.port = int(m.group(1))

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next(self, timeout=5):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if line is not None:
            self.seen.append(line)
        return line

    def expect(self, regex, timeout=5):
        deadline = time.monotonic() + timeout
        for line in self.seen:
            m = re.match(regex, line)
            if m:
                self.seen.remove(line)
                return m
        while time.monotonic() < deadline:
            line = self.next(max(0.01, deadline - time.monotonic()))
            if line is None:
                continue
            m = re.match(regex, line)
            if m:
                self.seen.remove(line)
                return m
        raise AssertionError(f"no {regex!r} in {self.seen}")

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.expect(r"(OK|ERROR.*|\{.*)$").group(1)

    def stderr(self):
        if self.p.poll() is None:
            return ""
        return self.p.stderr.read()

    def rss_kb(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                raise
        return self.p.returncode


@pytest.fixture
def harness():
    hs = []

    def start(vnc, layout=None):
        h = Harness(vnc, layout)
        hs.append(h)
        return h
    yield start
    for h in hs:
        if h.p.poll() is None:
            h.p.kill()
            h.p.wait()


def capture(port, path):
    r = subprocess.run(["gvnccapture", "-q", f"127.0.0.1::{port}" if False else
                        f"127.0.0.1:{port - 5900}", str(path)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return png_pixels(path)


def assert_pattern(w, h, rows, seed, size):
    assert (w, h) == size
    for y in range(h):
        for x in range(w):
            if rows[y][x] != pattern(x, y, seed):
                raise AssertionError(f"pixel {x},{y}: {rows[y][x]} != {pattern(x, y, seed)}")


def test_gvnccapture_sees_the_exact_pattern_and_its_changes(harness, tmp_path):
    d = free_display()
    h = harness(f"127.0.0.1:{d}")
    assert h.port == 5900 + d
    assert h.cmd("resize 200 120") == "OK"
    time.sleep(0.1)
    assert_pattern(*capture(h.port, tmp_path / "a.png"), 1, (200, 120))
    assert h.cmd("pattern 77") == "OK"
    time.sleep(0.1)
    assert_pattern(*capture(h.port, tmp_path / "b.png"), 77, (200, 120))
    # the events, with QEMU 7.2's members
    m = h.expect(r"EVENT VNC_CONNECTED (.*)")
    assert '"server":{"host":"127.0.0.1","service":"%d","family":"ipv4","websocket":false,' \
           '"auth":"none"}' % h.port in m.group(1)
    h.expect(r"EVENT VNC_INITIALIZED .*\"client\":\{\"host\":\"127.0.0.1\"")
    h.expect(r"EVENT VNC_DISCONNECTED ")
    assert h.close() == 0


def test_resize_reaches_a_client_as_desktopsize(harness):
    d = free_display()
    h = harness(f":{d}")
    c = Client(("127.0.0.1", h.port))
    assert (c.width, c.height) == (640, 480)
    c.set_encodings([0, -223])
    c.request()
    rects = c.read_update()
    assert rects[0][4] == 0
    x, y, w, hh, _, px = rects[0]
    # first row of the first raw rectangle is the pattern (BGRX little endian)
    for i in range(w):
        b, g, r, _ = px[4 * i:4 * i + 4]
        assert (r, g, b) == pattern(x + i, y, 1)
    assert h.cmd("resize 800 600") == "OK"
    deadline = time.monotonic() + 5
    while (c.width, c.height) != (800, 600) and time.monotonic() < deadline:
        c.request(incremental=True)
        c.read_update()
    assert (c.width, c.height) == (800, 600)
    c.close()


def test_screendump_ppm_is_the_surface(harness, tmp_path):
    h = harness(f":{free_display()}")
    assert h.cmd("resize 64 32") == "OK"
    assert h.cmd(f"screendump {tmp_path}/s.ppm") == "OK"
    data = open(tmp_path / "s.ppm", "rb").read()
    assert data.startswith(b"P6\n64 32\n255\n")
    px = data[len(b"P6\n64 32\n255\n"):]
    assert len(px) == 64 * 32 * 3
    assert tuple(px[3 * (5 * 64 + 9):3 * (5 * 64 + 9) + 3]) == pattern(9, 5, 1)
    assert h.cmd(f"screendump {tmp_path}/s.png png") == "OK"
    w, hh, rows = png_pixels(tmp_path / "s.png")
    assert_pattern(w, hh, rows, 1, (64, 32))
    assert h.cmd(f"screendump {tmp_path}/s.bmp bmp").startswith("ERROR")


def test_password(harness, tmp_path):
    d = free_display()
    h = harness(f":{d},password=on")
    # no password set: nobody gets in (QEMU)
    with pytest.raises(AuthFailed):
        Client(("127.0.0.1", h.port), password="")
    assert h.cmd("password s3cret") == "OK"
    with pytest.raises(AuthFailed):
        Client(("127.0.0.1", h.port), password="wrong")
    c = Client(("127.0.0.1", h.port), password="s3cret")
    assert c.types == b"\x02"
    c.close()
    # a real viewer with its password file
    vncpasswd_file("s3cret", tmp_path / "pw")
    r = subprocess.run(["vncsnapshot", "-quiet", "-passwd", str(tmp_path / "pw"),
                        f"127.0.0.1:{d}", str(tmp_path / "s.jpg")],
                       capture_output=True, timeout=15)
    assert r.returncode == 0, r.stderr
    jpg = open(tmp_path / "s.jpg", "rb").read()
    sof = jpg.index(b"\xff\xc0")
    assert struct.unpack(">HH", jpg[sof + 5:sof + 9]) == (480, 640)
    vncpasswd_file("nope", tmp_path / "bad")
    r = subprocess.run(["vncsnapshot", "-quiet", "-passwd", str(tmp_path / "bad"),
                        f"127.0.0.1:{d}", str(tmp_path / "t.jpg")],
                       capture_output=True, timeout=15)
    assert r.returncode != 0
    # clearing the password locks everybody out again
    assert h.cmd("password") == "OK"
    with pytest.raises(AuthFailed):
        Client(("127.0.0.1", h.port), password="s3cret")
    q = h.cmd("query")
    assert '"auth":"vnc"' in q


def test_password_refused_without_password_on(harness):
    h = harness(f":{free_display()}")
    assert h.cmd("password x") == "ERROR Could not set password"


def test_to_takes_the_next_free_port(harness):
    d = free_display()
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("0.0.0.0", 5900 + d))
    busy.listen()
    try:
        h = harness(f":{d},to={d + 2}")
        assert h.port == 5900 + d + 1
        Client(("127.0.0.1", h.port)).close()
        r = subprocess.run([str(HARNESS), f":{d}"], capture_output=True, text=True,
                           timeout=5, input="quit\n")
        assert r.returncode == 1
        assert f"Failed to bind socket to 0.0.0.0:{5900 + d}: Address already in use" in r.stderr
    finally:
        busy.close()


def test_unix_socket(harness, tmp_path):
    path = str(tmp_path / "vnc.sock")
    h = harness(f"unix:{path}")
    assert h.port == -1
    c = Client(path, family=socket.AF_UNIX)
    assert (c.width, c.height) == (640, 480)
    c.set_encodings([0])
    c.request(x=10, y=20, w=4, h=1)
    x, y, w, hh, enc, px = c.read_update()[0]
    b, g, r, _ = px[0:4]
    assert (r, g, b) == pattern(x, y, 1)
    q = h.cmd("query")
    # the server is the socket's path, an unnamed client peer has host ""
    assert '"family":"unix","clients":[{"family":"unix","service":"","host":"",' in q, q
    c.close()
    h.close()
    assert not os.path.exists(path)


def test_websocket_handshake(harness):
    d = free_display()
    wsport = 5900 + d + 2
    h = harness(f":{d},websocket={wsport}")
    s = socket.create_connection(("127.0.0.1", wsport), timeout=5)
    # a browser's request (libvncserver wants the Origin a browser always sends)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Protocol: binary\r\n\r\n")
    data = b""
    while b"RFB 003.008" not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 101")
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in data       # RFC 6455 section 1.3's example
    s.close()
    h.expect(r'EVENT VNC_CONNECTED .*"client":\{[^}]*"websocket":true')


def test_reverse_connects_to_a_listening_viewer(harness):
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen()
    lst.settimeout(5)
    port = lst.getsockname()[1]
    h = harness(f"127.0.0.1:{port},reverse=on")
    conn, _ = lst.accept()
    conn.settimeout(5)
    assert conn.recv(12) == b"RFB 003.008\n"
    conn.close()
    lst.close()
    h.close()


def test_keys_layouts_and_qemu_extended_key_event(harness):
    d = free_display()
    h = harness(f":{d}", "de")
    c = Client(("127.0.0.1", h.port))
    c.key(ord("z"), True)           # on a German keyboard z sits where US y is
    h.expect(r"KEY 0x15 1")
    c.key(ord("z"), False)
    h.expect(r"KEY 0x15 0")
    c.key(0xffe4, True)             # Control_R: 0xe0-prefixed
    h.expect(r"KEY 0x9d 1")
    c.set_encodings([0, -258])
    c.request(incremental=True, w=1, h=1)
    encs = []
    deadline = time.monotonic() + 5
    while -258 not in encs and time.monotonic() < deadline:
        encs += [r[4] for r in c.read_update()]
    assert -258 in encs             # the server acknowledged the extension
    c.qemu_key(0, 0x2c, True)       # raw key number: no layout involved
    h.expect(r"KEY 0x2c 1")
    c.close()


def test_pointer(harness):
    h = harness(f":{free_display()}")
    c = Client(("127.0.0.1", h.port))
    c.pointer(1, 639, 479)
    h.expect(r"POINTER 32767 32767 0 1")
    c.pointer(8, 0, 0)              # wheel up press: one step
    h.expect(r"POINTER 0 0 -1 8")
    c.close()


def test_share_policies(harness):
    h = harness(f":{free_display()}")            # allow-exclusive (QEMU's default)
    a = Client(("127.0.0.1", h.port))
    Client(("127.0.0.1", h.port), shared=False)
    a.s.settimeout(3)
    with pytest.raises((EOFError, ConnectionError)):
        a.request()
        a.read_update()
    h2 = harness(f":{free_display()},share=ignore")
    a = Client(("127.0.0.1", h2.port))
    b = Client(("127.0.0.1", h2.port), shared=False)
    for c in (a, b):    # the exclusive request is ignored: both stay
        c.set_encodings([0])
        c.request(w=1, h=1)
        assert c.read_update()[0][4] == 0


@pytest.mark.parametrize("lossy", [False, True])
def test_lossy_controls_jpeg(harness, lossy):
    h = harness(f":{free_display()}" + (",lossy=on" if lossy else ""))
    c = Client(("127.0.0.1", h.port))
    c.set_encodings([7, -23])       # tight, quality level 9
    c.request()
    x, y, w, hh, enc, _ = c.read_update()[0]
    assert enc == 7
    control = c.recv(1)[0]
    assert (control >> 4 == 9) == lossy     # 0x9_: JPEG compression (tight)
    c.close()


def test_bad_options_are_refused_by_name():
    for arg, msg in [(":1,foo=bar", "Invalid parameter 'foo'"),
                     (":1,share=bad", "unknown vnc share= option"),
                     (":1,share=force-shared", "share=force-shared is not supported"),
                     (":x", "can't convert to a number"),
                     ("unix:/tmp/x,to=3", "to= needs a TCP display"),
                     (":5,to=2", "to=2 is below the display number 5")]:
        r = subprocess.run([str(KESTREL), "-machine", "none", "-vnc", arg],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and msg in r.stderr, (arg, r.stderr)
    r = subprocess.run([str(KESTREL), "-k", "xx"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "could not read keymap file: 'xx'" in r.stderr
    r = subprocess.run([str(KESTREL), "-display", "vnc"], capture_output=True, text=True,
                       timeout=10)
    assert "VNC requires a display argument vnc=<display>" in r.stderr


def raw(port, data, read_first=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    if read_first:
        s.recv(12)
    try:
        s.sendall(data)
        s.settimeout(1)
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()


def test_hostile_peers_do_not_stop_the_server(harness, tmp_path):
    h = harness(f":{free_display()}")
    assert h.cmd("resize 120 80") == "OK"
    time.sleep(0.1)
    rss0 = h.rss_kb()
    init = b"RFB 003.008\n\x01\x01"     # version, security None, shared
    raw(h.port, b"RFB 999.999\n")
    raw(h.port, b"GARBAGE!!!!!\n" * 4)
    raw(h.port, init + struct.pack(">B3xBBBBHHHBBB3x", 0, 7, 200, 0, 1, 65535, 0, 65535,
                                   200, 201, 255))
    raw(h.port, init + struct.pack(">BxxxI", 6, 0xffffffff) + b"x" * 1000)
    raw(h.port, init + struct.pack(">BxH", 2, 65535) + b"\0\0\0\7" * 65535 + b"\xff" * 100)
    raw(h.port, init + b"\x03\x00\x00")       # truncated update request
    raw(h.port, init + b"\xff\x00")           # truncated QEMU message
    raw(h.port, init + b"\x42")               # unknown message type
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", h.port), timeout=3)
        s.close()
    # a client that never reads while the screen changes
    idle = Client(("127.0.0.1", h.port))
    idle.set_encodings([0])
    for seed in range(30):
        idle.request(incremental=True)
        h.cmd(f"pattern {seed}")
        time.sleep(0.02)
    assert h.cmd("pattern 5") == "OK"
    time.sleep(0.1)
    assert_pattern(*capture(h.port, tmp_path / "after.png"), 5, (120, 80))
    assert h.rss_kb() - rss0 < 32 * 1024
    idle.close()
    assert h.close() == 0


def test_kestrel_monitors_and_events(tmp_path):
    """The VMM's own path (machine none: no KVM needed): -vnc from the command line,
    QMP/HMP commands and events as QEMU 7.2 answers them."""
    from qmp_client import QMP
    d = free_display()
    sock = tmp_path / "qmp.sock"
    p = subprocess.Popen([str(KESTREL), "-machine", "none", "-monitor", "none", "-name", "myvm",
                          "-vnc", f":{d},password=on", "-qmp", f"unix:{sock},server=on,wait=off"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        q = QMP(sock)
        q.cmd("qmp_capabilities")
        assert q.cmd("query-vnc")["return"] == {
            "enabled": True, "auth": "vnc", "family": "ipv4", "clients": [],
            "service": str(5900 + d), "host": "0.0.0.0"}
        assert q.cmd("human-monitor-command", **{"command-line": "info vnc"})["return"] == (
            f"default:\r\n  Server: 0.0.0.0:{5900 + d} (ipv4)\r\n    Auth: vnc (Sub: none)\r\n")
        assert q.cmd("query-display-options")["return"] == {"type": "none"}
        with pytest.raises(AuthFailed):
            Client(("127.0.0.1", 5900 + d), password="pw1")
        assert q.cmd("change-vnc-password", password="pw1") == {"return": {}}
        Client(("127.0.0.1", 5900 + d), password="pw1").close()
        assert q.cmd("set_password", protocol="vnc", password="pw2") == {"return": {}}
        with pytest.raises(AuthFailed):
            Client(("127.0.0.1", 5900 + d), password="pw1")
        r = q.cmd("human-monitor-command", **{"command-line": "change vnc password pw3"})
        assert r == {"return": ""}
        c = Client(("127.0.0.1", 5900 + d), password="pw3")
        assert c.name == b"QEMU (myvm)"     # QEMU's desktop name
        info = q.cmd("human-monitor-command", **{"command-line": "info vnc"})["return"]
        assert "  Client: 127.0.0.1:" in info and "x509_dname: none" in info
        c.close()
        ev = q.event("VNC_DISCONNECTED", timeout=5)
        assert set(ev["data"]) == {"server", "client"}
        assert ev["data"]["server"]["auth"] == "vnc"
        assert q.event("VNC_CONNECTED", timeout=1)["data"]["client"]["host"] == "127.0.0.1"
        assert q.event("VNC_INITIALIZED", timeout=1)
        r = q.cmd("set_password", protocol="spice", password="x")
        assert r["error"]["desc"] == "SPICE is not in use"
        r = q.cmd("screendump", filename=str(tmp_path / "x.ppm"))
        assert r["error"]["desc"] == "There is no console to take a screendump from"
        r = q.cmd("human-monitor-command", **{"command-line": "screendump"})
        assert r["return"].startswith("screendump: filename expected")
    finally:
        p.terminate()
        p.wait(10)


def test_default_display_is_vnc_on_localhost(tmp_path):
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        busy.bind(("127.0.0.1", 5900))
        busy.listen()
    except OSError:
        pass        # already taken by someone else: to=99 moves on either way
    p = subprocess.Popen([str(KESTREL), "-machine", "none", "-monitor", "none"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        err = ""
        while "VNC server running on" not in err and time.monotonic() < deadline:
            err += p.stderr.readline()
        m = re.search(r"VNC server running on 127\.0\.0\.1:(\d+)", err)
        assert m, err
        assert int(m.group(1)) > 5900
        Client(("127.0.0.1", int(m.group(1)))).close()
    finally:
        p.terminate()
        p.wait(10)
        busy.close()
    # -nographic and -display none have no default VNC
    for opt in (["-nographic"], ["-display", "none"]):
        p = subprocess.Popen([str(KESTREL), "-machine", "none", "-monitor", "none",
                              "-serial", "none", *opt],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        p.terminate()
        _, err = p.communicate(timeout=10)
        assert "VNC server running" not in err


def test_display_vnc_is_vnc():
    d = free_display()
    p = subprocess.Popen([str(KESTREL), "-machine", "none", "-monitor", "none",
                          "-display", f"vnc=127.0.0.1:{d},password=on"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        refused = False
        while not refused and time.monotonic() < deadline:
            try:
                Client(("127.0.0.1", 5900 + d), password="x").close()
            except AuthFailed:
                refused = True  # password=on reached the server: nobody gets in yet
            except OSError:
                time.sleep(0.05)
        assert refused
    finally:
        p.terminate()
        _, err = p.communicate(timeout=10)
    assert b"VNC server running" not in err
