"""The SDL window (src/ui/sdl.c) under Xvfb, over tests/display/sdl_harness (a
synthetic video device: this host has no KVM), and kestrel -machine none for the
VMM's own option and quit paths.  xwd screenshots the window as X has it, xdotool
types and clicks through XTEST as a user's X server would deliver them."""
import ctypes
import os
import queue
import re
import shutil
import struct
import subprocess
import threading
import time

import pytest

from conftest import BUILD, KESTREL

HARNESS = BUILD / "tests" / "display" / "sdl_harness"
TOOLS = ("Xvfb", "xdotool", "xwd")


def _built_in():
    try:
        return subprocess.run([str(HARNESS), "--built-in"], capture_output=True, text=True,
                              timeout=10).stdout.strip() == "yes"
    except OSError:
        return False


BUILT_IN = _built_in()
MISSING = [t for t in TOOLS if not shutil.which(t)]
needs_x = pytest.mark.skipif(not BUILT_IN or bool(MISSING),
                             reason="built without libsdl2 (-Dsdl=disabled)" if not BUILT_IN
                             else f"missing {', '.join(MISSING)} (scripts/install-deps.sh)")


GRAB = " - Press {}-G to exit grab"


def pattern(x, y, seed):
    """tests/display/sdl_harness.c's pattern."""
    return ((x * 7 + seed) & 0xff, (y * 3 + seed * 5) & 0xff, ((x ^ y) + seed) & 0xff)


@pytest.fixture(scope="module")
def xvfb():
    if not BUILT_IN or MISSING:
        pytest.skip("no SDL or X tools")
    r, w = os.pipe()
    p = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1024x768x24",
                          "-nolisten", "tcp"], pass_fds=(w,), stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        num = f.readline().strip()
    if not num:
        p.kill()
        pytest.skip("Xvfb did not start")
    env = dict(os.environ, DISPLAY=f":{num}", SDL_VIDEODRIVER="x11")
    yield env
    p.terminate()
    p.wait(10)


def x(env, *args):
    return subprocess.run(list(args), env=env, capture_output=True, timeout=10, check=True).stdout


class Harness:
    def __init__(self, env, *args):
        self.env = env
        self.p = subprocess.Popen([str(HARNESS), *args], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  bufsize=1, env=env)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()
        self.expect("READY")
        self.win = x(env, "xdotool", "search", "--sync", "--onlyvisible", "--pid",
                     str(self.p.pid)).split()[0].decode()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def drain(self, wait=0.3):
        """The lines that arrived within wait seconds."""
        end = time.monotonic() + wait
        while time.monotonic() < end:
            try:
                self.seen.append(self.lines.get(timeout=max(0.01, end - time.monotonic())))
            except queue.Empty:
                pass
        out, self.seen = self.seen, []
        return out

    def expect(self, regex, timeout=5):
        end = time.monotonic() + timeout
        while True:
            for line in self.seen:
                m = re.match(regex, line)
                if m:
                    self.seen.remove(line)
                    return m
            if time.monotonic() > end:
                raise AssertionError(f"no {regex!r} in {self.seen}")
            try:
                self.seen.append(self.lines.get(timeout=0.05))
            except queue.Empty:
                pass

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.expect(r"(OK|ERROR.*)$").group(1)

    def title(self):
        return x(self.env, "xdotool", "getwindowname", self.win).decode().strip()

    def geometry(self):
        out = x(self.env, "xdotool", "getwindowgeometry", self.win).decode()
        return tuple(map(int, re.search(r"Geometry: (\d+)x(\d+)", out).groups()))

    def keys(self, *keys):
        x(self.env, "xdotool", "windowfocus", "--sync", self.win)
        x(self.env, "xdotool", "key", "--delay", "20", *keys)

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            self.p.wait(5)


@pytest.fixture
def harness(xvfb):
    hs = []

    def start(*args):
        hs.append(Harness(xvfb, *args))
        return hs[-1]
    yield start
    for h in hs:
        if h.p.poll() is None:
            h.p.kill()
            h.p.wait()


def read_xwd(data):
    """The pixels of an xwd dump (X11 XWDFile.h: a big-endian header, the colour
    map, then the image) as rows of (r, g, b)."""
    hdr = struct.unpack(">25I", data[:100])
    hsize, fmt, depth, w, h = hdr[0], hdr[2], hdr[3], hdr[4], hdr[5]
    byte_order, bpp, bpl, ncolors = hdr[7], hdr[11], hdr[12], hdr[19]
    assert fmt == 2 and bpp == 32 and depth == 24, hdr     # ZPixmap, 32 bits a pixel
    off = hsize + ncolors * 12
    e = "<" if byte_order == 0 else ">"
    rows = []
    for y in range(h):
        px = struct.unpack_from(f"{e}{w}I", data, off + y * bpl)
        rows.append([((p >> 16) & 0xff, (p >> 8) & 0xff, p & 0xff) for p in px])
    return w, h, rows


def read_ppm(path):
    data = open(path, "rb").read()
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+255\s", data)
    w, h = int(m.group(1)), int(m.group(2))
    px = data[m.end():]
    return w, h, [[tuple(px[(y * w + i) * 3:(y * w + i) * 3 + 3]) for i in range(w)]
                  for y in range(h)]


def screenshot(h):
    return read_xwd(x(h.env, "xwd", "-silent", "-id", h.win))


def wait_for(fn, timeout=5):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.05)


@needs_x
def test_window_shows_the_surface_and_follows_resize(harness, tmp_path):
    h = harness("--name", "myos")
    assert h.title() == "QEMU (myos-0)"         # QEMU 7.2 sdl_update_caption
    for seed, size in ((1, (320, 200)), (9, (400, 300))):
        if seed != 1:
            assert h.cmd(f"resize {size[0]} {size[1]}") == "OK"
            assert h.cmd(f"pattern {seed}") == "OK"
        assert wait_for(lambda: h.geometry() == size), h.geometry()
        dump = tmp_path / f"s{seed}.ppm"

        def same():
            assert h.cmd(f"screendump {dump}") == "OK"
            return screenshot(h) == read_ppm(dump)
        assert wait_for(same)
        w, hh, rows = read_ppm(dump)
        assert (w, hh) == size
        assert rows[7][5] == pattern(5, 7, seed) and rows[-1][-1] == pattern(w - 1, hh - 1, seed)


@needs_x
def test_keys_arrive_as_qnum(harness):
    h = harness()
    # 105 is Right Control's keycode: xdotool's keysym Control_R also presses Control_L.
    h.keys("a", "Return", "105", "Up", "KP_Enter", "F11", "backslash")
    got = [l for l in h.drain(0.5) if l.startswith("KEY")]
    want = []
    for q in (0x1e, 0x1c, 0x9d, 0xc8, 0x9c, 0x57, 0x2b):
        want += [f"KEY 0x{q:02x} 1", f"KEY 0x{q:02x} 0"]
    assert got == want


@needs_x
def test_clicks_and_wheel_land_at_absolute_coordinates(harness):
    h = harness()
    x(h.env, "xdotool", "mousemove", "--window", h.win, "100", "50")
    h.drain(0.3)
    x(h.env, "xdotool", "click", "1")
    ex, ey = 100 * 0x7fff // 319, 50 * 0x7fff // 199     # core/input.c scale()
    h.expect(rf"POINTER {ex} {ey} 0 1$")
    h.expect(rf"POINTER {ex} {ey} 0 0$")
    # with a tablet the click reaches the guest and grabs the keyboard too
    assert wait_for(lambda: h.title() == "QEMU" + GRAB.format("Ctrl-Alt")), h.title()
    x(h.env, "xdotool", "click", "4")                    # wheel up: dz -1
    h.expect(rf"POINTER {ex} {ey} -1 0$")
    x(h.env, "xdotool", "mousemove", "--window", h.win, "319", "0", "click", "3")
    h.expect(r"POINTER 32767 0 0 4$")


@needs_x
@pytest.mark.parametrize("args,release,not_release,label", [
    ((), ("ctrl+alt",), ("105",), "Ctrl-Alt"),
    ((",grab-mod=lshift-lctrl-lalt",), ("ctrl+alt+shift",), ("ctrl+alt",), "Ctrl-Alt-Shift"),
    ((",grab-mod=rctrl",), ("105",), ("ctrl+alt",), "Right-Ctrl"),
])
def test_click_grabs_and_the_hot_key_releases(harness, args, release, not_release, label):
    # A relative mouse (no tablet): QEMU grabs on a click, which the guest does not see.
    h = harness("--rel", "--name", "g", *args)
    x(h.env, "xdotool", "mousemove", "--window", h.win, "50", "50")
    x(h.env, "xdotool", "windowfocus", "--sync", h.win)
    assert h.title() == "QEMU (g-0)"
    x(h.env, "xdotool", "click", "1")
    assert wait_for(lambda: h.title() == "QEMU (g-0)" + GRAB.format(label)), h.title()
    assert not [l for l in h.drain(0.3) if l.startswith("REL")]
    x(h.env, "xdotool", "mousemove_relative", "--", "5", "3")
    h.expect(r"REL 5 3 0 0$")                  # grabbed: relative motion reaches the guest
    h.keys(*not_release)
    time.sleep(0.2)
    assert h.title().endswith("exit grab")
    h.keys(*release)
    assert wait_for(lambda: h.title() == "QEMU (g-0)"), h.title()
    h.drain(0.2)
    x(h.env, "xdotool", "mousemove_relative", "--", "4", "4")
    assert not [l for l in h.drain(0.3) if l.startswith("REL")]   # released: the host's again


def close_window(env, win):
    """What a window manager does on the close button: WM_PROTOCOLS/WM_DELETE_WINDOW
    (ICCCM 4.2.8.1), sent with Xlib through ctypes (Xvfb runs no window manager)."""
    class XClientMessageEvent(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                    ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                    ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("l", ctypes.c_long * 5)]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", XClientMessageEvent), ("pad", ctypes.c_long * 24)]
    xlib = ctypes.CDLL("libX11.so.6")
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XInternAtom.restype = ctypes.c_ulong
    xlib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    xlib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                                ctypes.POINTER(XEvent)]
    xlib.XFlush.argtypes = [ctypes.c_void_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    d = xlib.XOpenDisplay(env["DISPLAY"].encode())
    assert d
    ev = XEvent()
    ev.xclient.type = 33                       # ClientMessage
    ev.xclient.window = int(win)
    ev.xclient.message_type = xlib.XInternAtom(d, b"WM_PROTOCOLS", 0)
    ev.xclient.format = 32
    ev.xclient.l[0] = xlib.XInternAtom(d, b"WM_DELETE_WINDOW", 0)
    assert xlib.XSendEvent(d, int(win), 0, 0, ctypes.byref(ev))
    xlib.XFlush(d)
    xlib.XCloseDisplay(d)


@needs_x
@pytest.mark.parametrize("args,quits", [((), True), (("--no-quit",), False),
                                        ((",window-close=off",), False)])
def test_window_close(harness, args, quits):
    h = harness(*args)
    close_window(h.env, h.win)
    lines = h.drain(0.4)
    assert ("QUIT" in lines) == quits, lines
    assert h.cmd("pattern 3") == "OK"         # either way the window's thread runs on


@needs_x
def test_full_screen(harness):
    for args in (("--full-screen",), (",full-screen=on",)):
        h = harness(*args)
        assert wait_for(lambda: h.geometry() == (1024, 768)), h.geometry()
        # the 320x200 screen scaled to the whole display: positions scale back
        x(h.env, "xdotool", "mousemove", "--window", h.win, "512", "384")
        h.expect(rf"POINTER {512 * 0x7fff // 1023} {384 * 0x7fff // 767} 0 0$")
    assert harness().geometry() == (320, 200)


@needs_x
@pytest.mark.parametrize("extra,qmp", [
    ([], {"type": "sdl"}),
    (["-no-quit", "-alt-grab", "-full-screen"],
     {"type": "sdl", "window-close": False, "grab-mod": "lshift-lctrl-lalt",
      "full-screen": True}),
    (["-ctrl-grab"], {"type": "sdl", "grab-mod": "rctrl"}),
])
def test_kestrel_display_sdl(xvfb, tmp_path, extra, qmp):
    """The VMM's path (machine none: no KVM needed): the window opens with QEMU's
    title, query-display-options says sdl, and closing the window quits as a QMP
    quit does, with SHUTDOWN reason host-ui (unless -no-quit)."""
    from qmp_client import QMP
    sock = tmp_path / "qmp.sock"
    disp = ["-sdl"] if extra else ["-display", "sdl"]
    p = subprocess.Popen([str(KESTREL), "-machine", "none", "-monitor", "none", "-name", "vm1",
                          *disp, *extra, "-qmp", f"unix:{sock},server=on,wait=off"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=xvfb)
    try:
        assert wait_for(lambda: sock.exists())
        q = QMP(sock)
        q.cmd("qmp_capabilities")
        assert q.cmd("query-display-options")["return"] == qmp
        win = x(xvfb, "xdotool", "search", "--sync", "--pid", str(p.pid)).split()[0]
        assert x(xvfb, "xdotool", "getwindowname", win).decode().strip() == "QEMU (vm1-0)"
        close_window(xvfb, win.decode())
        if "-no-quit" in extra:
            time.sleep(0.5)
            assert p.poll() is None and q.cmd("query-status")["return"]
        else:
            assert q.event("SHUTDOWN", timeout=5)["data"] == {"guest": False,
                                                              "reason": "host-ui"}
            assert p.wait(5) == 0
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait(10)


@pytest.mark.skipif(not BUILT_IN, reason="built without libsdl2 (-Dsdl=disabled)")
def test_no_x_server_is_an_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["SDL_VIDEODRIVER"] = "x11"
    r = subprocess.run([str(KESTREL), "-machine", "none", "-monitor", "none", "-sdl"],
                       capture_output=True, text=True, timeout=10, env=env)
    assert r.returncode == 1 and "-display sdl: Could not initialize SDL(" in r.stderr, r.stderr


def test_bad_options_are_refused_by_name():
    cases = [("sdl,foo=bar", "Parameter 'foo' is unexpected"),
             ("sdl,grab-mod=x", "Parameter 'grab-mod' does not accept value 'x'"),
             ("sdl,window-close=x", "Parameter 'window-close' expects 'on' or 'off'"),
             ("sdl,show-cursor=on", "Parameter 'show-cursor' is not supported"),
             ("sdl,gl=on", "Parameter 'gl' is not supported"),
             ("sdl,full-screen", "Expected '=' after parameter 'full-screen'")]
    if not BUILT_IN:
        cases = [("sdl", "Display 'sdl' is not available")]
    for arg, msg in cases:
        r = subprocess.run([str(KESTREL), "-machine", "none", "-display", arg],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and msg in r.stderr, (arg, r.stderr)
    r = subprocess.run([str(KESTREL), "-display", "help"], capture_output=True, text=True,
                       timeout=10)
    assert ("\nsdl\n" in r.stdout) == BUILT_IN, r.stdout
    if not BUILT_IN:
        r = subprocess.run([str(KESTREL), "-sdl"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and "SDL support is disabled" in r.stderr
