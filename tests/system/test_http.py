"""http(s) disks (issue #20): read-only images on a web server through libcurl, compared
with qemu-img 7.2's curl driver on the same loopback server (tests/system/httprange.py,
started and stopped by each test): info, map, compare, convert, the refusals, and the
options readahead=, timeout=, sslverify=, cookie= each seen changing what happens."""
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_img_helpers import KIMG, both_tools as both, same_as_qemu_img as same

HERE = Path(__file__).resolve().parent


def curl_supported():
    p = subprocess.run([str(KIMG), "info", "http://127.0.0.1:1/x"], capture_output=True,
                       text=True)
    return "Unknown protocol" not in p.stderr


def qemu_has_curl():
    p = subprocess.run(["qemu-img", "info", "http://127.0.0.1:1/x"], capture_output=True,
                       text=True)
    return "Unknown protocol" not in p.stderr


pytestmark = [pytest.mark.skipif(not curl_supported(), reason="kestrel-img built without libcurl"),
              pytest.mark.skipif(not qemu_has_curl(),
                                 reason="qemu-img has no curl driver (qemu-block-extra)")]


class Web:
    def __init__(self, directory, *extra):
        portfile = directory / f"port.{time.monotonic_ns()}"
        self.proc = subprocess.Popen([sys.executable, str(HERE / "httprange.py"), str(directory),
                                      str(portfile), *map(str, extra)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + 20
        while not portfile.exists():
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"web server did not start: {self.proc.stderr.read()}")
            time.sleep(0.05)
        self.port = int(portfile.read_text())

    def url(self, name, scheme="http"):
        return f"{scheme}://127.0.0.1:{self.port}/{name}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def available():
    """The protocol-server interface (helper-storage.md): libcurl on both sides."""
    if not curl_supported():
        return False, "kestrel-img built without libcurl"
    if not qemu_has_curl():
        return False, "qemu-img has no curl driver (qemu-block-extra)"
    return True, ""


class Server(Web):
    """The protocol-server interface: httprange.py serving d.  The protocol is read-only,
    so blank() is a zero file nobody can write through it, and put() (bench/storage)
    publishes a copy of a local image instead."""
    name = "http"
    readonly = True

    def __init__(self, d):
        super().__init__(d)
        self.dir, self.files = d, 0

    def blank(self, size):
        self.files += 1
        path = self.dir / f"blank{self.files}.raw"
        with open(path, "wb") as f:
            f.truncate(size)
        return self.url(path.name)

    def url_for(self, name):
        return None         # http cannot create

    def put(self, src):
        self.files += 1
        name = f"put{self.files}{Path(src).suffix}"
        shutil.copyfile(src, self.dir / name)
        return self.url(name)

    def stop(self):
        if self.proc.poll() is None:
            super().stop()


@pytest.fixture
def web(tmp_path):
    started = []

    def start(*extra):
        w = Web(tmp_path, *extra)
        started.append(w)
        return w
    yield start
    for w in started:
        w.stop()


@pytest.fixture
def images(tmp_path):
    raw = tmp_path / "d.raw"
    with open(raw, "wb") as f:
        f.write(bytes(range(256)) * 4096 * 3)      # 3 MiB of a pattern
        f.truncate(16 << 20)
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(tmp_path / "d.qcow2")],
                   check=True)
    return tmp_path


def test_info_map_compare_and_convert_match_qemu_img(web, images):
    w = web()
    for name in ("d.raw", "d.qcow2"):
        same("info", w.url(name))
        same("info", "--output=json", w.url(name))
        same("map", "--output=json", w.url(name))
        same("compare", w.url(name), str(images / "d.raw"))
    out = images / "out.raw"
    k = subprocess.run([str(KIMG), "convert", "-O", "raw", w.url("d.qcow2"), str(out)],
                       capture_output=True, text=True)
    assert k.returncode == 0, k.stderr
    assert out.read_bytes() == (images / "d.raw").read_bytes()
    alone = f'json:{{"driver":"http","url":"{w.url("d.raw")}"}}'
    assert "file format: http" in same("info", alone).stdout


def test_refusals_match_qemu_img(web, images):
    w = web()
    for args in (["info", w.url("nosuch")], ["info", "http://127.0.0.1:1/x"],
                 ["convert", "-n", "-O", "raw", str(images / "d.raw"), w.url("d.raw")],
                 ["info", "--image-opts", f"driver=http,url={w.url('d.raw')},username=u"]):
        k = both(*args)[1]
        assert k.returncode == 1 and k.stderr.startswith("kestrel-img: "), args
    same("info", w.url("nosuch"))
    same("convert", "-n", "-O", "raw", str(images / "d.raw"), w.url("d.raw"))
    no_ranges = web("--no-ranges")
    same("info", no_ranges.url("d.raw"))
    k = both("info", "--image-opts", f"driver=http,url={w.url('d.raw')},username=u")[1]
    assert "Option 'username' of block protocol 'http' is not supported by Kestrel" in k.stderr


def requests(log):
    return [l for l in log.read_text().splitlines() if l.startswith("GET")]


def test_readahead_sets_how_much_each_request_fetches(web, images):
    log = images / "requests.log"
    w = web("--log", log)
    for readahead, most in (("65536", 48), ("1048576", 3)):
        log.write_text("")
        k = subprocess.run([str(KIMG), "dd", "--image-opts", "-O", "raw", "bs=4k", "count=512",
                            f"if=driver=raw,file.driver=http,file.url={w.url('d.raw')},"
                            f"file.readahead={readahead}", f"of={images / 'o.raw'}"],
                           capture_output=True, text=True)
        assert k.returncode == 0, k.stderr
        got = requests(log)
        assert 0 < len(got) <= most, (readahead, got)
        assert (images / "o.raw").read_bytes() == (images / "d.raw").read_bytes()[:2 << 20]
    assert len(requests(log)) <= 3


def test_timeout_ends_a_request_the_server_sits_on(web, images):
    w = web("--delay", "3")
    opts = f"driver=raw,file.driver=http,file.url={w.url('d.raw')}"
    t = time.monotonic()
    k = subprocess.run([str(KIMG), "convert", "--image-opts", opts + ",file.timeout=1", "-O",
                        "raw", str(images / "o.raw")], capture_output=True, text=True)
    assert k.returncode == 1 and time.monotonic() - t < 10, k.stderr
    k = subprocess.run([str(KIMG), "info", "--image-opts", opts + ",file.timeout=10"],
                       capture_output=True, text=True)
    assert k.returncode == 0, k.stderr


def test_cookie_is_sent(web, images):
    log = images / "requests.log"
    w = web("--log", log)
    k = subprocess.run([str(KIMG), "info", "--image-opts",
                        f"driver=http,url={w.url('d.raw')},cookie=session=42"],
                       capture_output=True, text=True)
    assert k.returncode == 0, k.stderr
    assert any(l.endswith(" session=42") for l in log.read_text().splitlines())


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl is not installed")
def test_https_verifies_the_certificate_unless_sslverify_off(web, images):
    cert, key = images / "cert.pem", images / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    w = web("--tls", cert, key)
    url = w.url("d.qcow2", "https")
    q, k = both("info", url)
    assert k.returncode == q.returncode == 1
    assert "certificate" in k.stderr
    opts = f"driver=qcow2,file.driver=https,file.url={url},file.sslverify=off"
    q, k = both("info", "--image-opts", opts)
    # QEMU names a node opened with non-default options by a json: name; Kestrel keeps the
    # URL (docs/kestrel-img.1, http): the rest of the output is the same.
    assert k.returncode == q.returncode == 0, k.stderr
    assert k.stdout.split("\n", 1)[1] == q.stdout.split("\n", 1)[1]


def test_the_server_interface_publishes_images_read_only(images):
    """bench/storage's interface (helper-storage.md): put() serves a copy of a local image,
    blank() a new zero file of its size; http cannot create (url_for is None), nor be
    written; stop() idempotent."""
    srv = Server(images)
    try:
        url = srv.put(images / "d.qcow2")
        assert url.endswith(".qcow2") and url != srv.put(images / "d.qcow2")
        same("compare", url, str(images / "d.raw"))
        blank = srv.blank(1 << 20)
        assert '"virtual-size": 1048576' in same("info", "--output=json", blank).stdout
        assert srv.url_for("new.raw") is None and srv.readonly
        k = both("convert", "-n", "-O", "raw", str(images / "d.raw"), blank)[1]
        assert k.returncode == 1
    finally:
        srv.stop()
    srv.stop()
    assert srv.proc.poll() is not None
