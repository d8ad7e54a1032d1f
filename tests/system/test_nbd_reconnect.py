"""NBD reconnection (issue #20, "Faults"): QEMU's reconnect-delay and open-timeout on
Kestrel's NBD client.  qemu-nbd is killed while kestrel-img converts from it (slowed by
-r so that the kill lands mid-copy) and restarted on the same socket: within
reconnect-delay the convert completes with every byte right; without the server's
return, or without reconnect-delay, it ends with a clear error in bounded time.
open-timeout lets the first connection wait for a server that is still starting."""
import os
import shutil
import subprocess
import threading
import time

import pytest

from test_img_helpers import KIMG, SANITIZER_REPORT
from test_nbd import needs_libnbd

pytestmark = [needs_libnbd,
              pytest.mark.skipif(not shutil.which("qemu-nbd"), reason="qemu-nbd is needed")]

MiB = 1 << 20


def random_image(path, size):
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    return path


class QemuNbd:
    def __init__(self, image, sock):
        self.image, self.sock, self.proc = image, sock, None

    def start(self):
        if self.sock.exists():
            self.sock.unlink()
        self.proc = subprocess.Popen(["qemu-nbd", "-t", "-f", "raw", "-k", str(self.sock),
                                      str(self.image)], stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while not self.sock.exists():
            assert time.monotonic() < end and self.proc.poll() is None, "qemu-nbd did not start"
            time.sleep(0.02)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server(tmp_path):
    s = QemuNbd(random_image(tmp_path / "src.raw", 24 * MiB), tmp_path / "s.sock")
    yield s
    s.kill()


def nbd_opts(sock, **kw):
    return ",".join([f"driver=nbd,server.type=unix,server.path={sock}"]
                    + [f"{k.replace('_', '-')}={v}" for k, v in kw.items()])


def convert(opts, out, rate="8M", timeout=60):
    """kestrel-img convert from the export, throttled (-r) to last about 3 s."""
    return subprocess.Popen([str(KIMG), "convert", "-r", rate, "-O", "raw", "--image-opts",
                             opts, str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(p, timeout=60):
    out, err = p.communicate(timeout=timeout)
    assert not SANITIZER_REPORT.search(err), err
    return p.returncode, err


def test_the_server_back_within_reconnect_delay_completes_the_convert(server, tmp_path):
    server.start()
    out = tmp_path / "out.raw"
    p = convert(nbd_opts(server.sock, reconnect_delay=15), out)
    time.sleep(0.8)
    assert p.poll() is None, "the convert ended before the server went away"
    server.kill()
    time.sleep(1.5)
    server.start()
    rc, err = finish(p)
    assert rc == 0, err
    assert out.read_bytes() == server.image.read_bytes()


def test_without_reconnect_delay_a_lost_server_fails_the_convert(server, tmp_path):
    server.start()
    p = convert(nbd_opts(server.sock), tmp_path / "out.raw")
    time.sleep(0.8)
    assert p.poll() is None
    server.kill()
    t = time.monotonic()
    rc, err = finish(p, timeout=20)
    assert rc == 1 and "error while reading" in err, err
    assert time.monotonic() - t < 10


def test_a_server_gone_longer_than_reconnect_delay_ends_in_an_error(server, tmp_path):
    server.start()
    p = convert(nbd_opts(server.sock, reconnect_delay=2), tmp_path / "out.raw")
    time.sleep(0.8)
    assert p.poll() is None
    server.kill()
    t = time.monotonic()
    rc, err = finish(p, timeout=30)
    waited = time.monotonic() - t
    assert rc == 1 and "error while reading" in err, err
    # It waited for the server (about 2 s), and not much longer.
    assert 1.5 < waited < 10, waited


def test_open_timeout_waits_for_a_server_that_is_still_starting(server, tmp_path):
    starter = threading.Timer(1.0, server.start)
    starter.start()
    try:
        p = subprocess.run([str(KIMG), "info", "--image-opts",
                            nbd_opts(server.sock, open_timeout=10)],
                           capture_output=True, text=True, timeout=30)
    finally:
        starter.join()
    assert p.returncode == 0 and "24 MiB" in p.stdout, p.stderr
    server.kill()
    # Without open-timeout the first try is the only one, as in QEMU (default 0).
    p = subprocess.run([str(KIMG), "info", "--image-opts", nbd_opts(server.sock)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "Failed to connect" in p.stderr, p.stderr
    t = time.monotonic()
    p = subprocess.run([str(KIMG), "info", "--image-opts", nbd_opts(server.sock, open_timeout=1)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "Failed to connect" in p.stderr
    assert 0.9 < time.monotonic() - t < 8


@pytest.mark.parametrize("opt,val,msg", [
    ("reconnect-delay", "-1", "Parameter 'reconnect-delay' expects uint32_t"),
    ("open-timeout", "soon", "Parameter 'open-timeout' expects uint32_t"),
])
def test_bad_values_are_refused(tmp_path, opt, val, msg):
    p = subprocess.run([str(KIMG), "info", "--image-opts",
                        f"driver=nbd,server.type=unix,server.path={tmp_path}/x,{opt}={val}"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and msg in p.stderr, p.stderr
