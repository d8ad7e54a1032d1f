"""NBD disks (issue #20): kestrel-img and the VMM open exports on real NBD servers
(qemu-nbd 7.2 and nbdkit), started by each test on a Unix socket in its own directory
or on a loopback port, and stopped by it.  Every answer is compared with qemu-img 7.2's
on the same export: info, map, convert, compare, and the messages of bad names."""
import os
import shutil
import socket
import subprocess
import time

import pytest

from test_virtio import drive, pattern, probe_lines, run_probe, SECTOR
from test_img_helpers import KIMG, free_port, same_as_qemu_img as same

pytestmark = pytest.mark.skipif(not shutil.which("qemu-nbd"), reason="qemu-nbd is not installed")


def nbd_supported():
    """kestrel-img built with libnbd knows the nbd protocol."""
    p = subprocess.run([str(KIMG), "info", "nbd+unix:///x?socket=/nonexistent"],
                       capture_output=True, text=True)
    return "Unknown protocol" not in p.stderr


needs_libnbd = pytest.mark.skipif(not nbd_supported(), reason="kestrel-img built without libnbd")


def wait_for(path_or_port, proc, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()}")
        if isinstance(path_or_port, int):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", path_or_port)) == 0:
                    return
        elif path_or_port.exists():
            return
        time.sleep(0.05)
    raise RuntimeError("NBD server did not come up")


class Process:
    """A qemu-nbd (or nbdkit) process serving one export; stopped by the test."""

    def __init__(self, argv, where):
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(where, self.proc)
        except BaseException:
            self.stop()     # a server that did not come up (or ^C meanwhile) is not left
            raise

    def stop(self):
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def available():
    """The protocol-server interface (helper-storage.md): qemu-nbd and libnbd."""
    if not shutil.which("qemu-nbd"):
        return False, "qemu-nbd is not installed"
    if not nbd_supported():
        return False, "kestrel-img built without libnbd"
    return True, ""


class Server:
    """The protocol-server interface bench/storage uses (helper-storage.md): every
    blank() is a new sparse file in d served by its own qemu-nbd on a loopback port."""
    name = "nbd"

    def __init__(self, d):
        self.dir, self.procs = d, []

    def argv(self, path, port):
        return ["qemu-nbd", "-t", "-f", "raw", "-x", "exp", "-b", "127.0.0.1", "-p",
                str(port), str(path)]

    def blank(self, size):
        path = self.dir / f"blank{len(self.procs)}.raw"
        with open(path, "wb") as f:
            f.truncate(size)
        port = free_port()
        self.procs.append(Process(self.argv(path, port), port))
        return f"nbd://127.0.0.1:{port}/exp"

    def url_for(self, name):
        return None         # an NBD export cannot be created through the protocol

    def stop(self):
        for p in self.procs:
            p.stop()


class KestrelServer(Server):
    """The same with kestrel-nbd (qemu-nbd's command line) as the server."""
    name = "nbd-kestrel"
    binary = KIMG.parent.parent / "nbd" / "kestrel-nbd"

    @staticmethod
    def available():
        ok, why = available()
        if ok and not KestrelServer.binary.exists():
            return False, f"{KestrelServer.binary} is not built"
        return ok, why

    def argv(self, path, port):
        return [str(self.binary), *super().argv(path, port)[1:]]


@pytest.fixture
def servers():
    started = []

    def start(argv, where):
        s = Process(argv, where)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def qemu_nbd_unix(servers, tmp_path, image, fmt="raw", export="exp", extra=()):
    sock = tmp_path / f"{export}.sock"
    servers(["qemu-nbd", "-t", "-f", fmt, "-x", export, "-k", str(sock), *extra, str(image)],
            sock)
    return f"nbd+unix:///{export}?socket={sock}"


def qemu_nbd_tcp(servers, image, fmt="raw", export="exp", extra=()):
    port = free_port()
    servers(["qemu-nbd", "-t", "-f", fmt, "-x", export, "-b", "127.0.0.1", "-p", str(port),
             *extra, str(image)], port)
    return port


def mixed_raw(path, size=64 << 20):
    """Data, written zeroes and holes: map has something to say."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(path), str(size)], check=True)
    subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 3M", "-c",
                    "write -z 8M 1M", "-c", "write -P 0x11 20M 64k", str(path)],
                   check=True, capture_output=True)
    return path


@needs_libnbd
def test_info_and_map_of_a_raw_export_match_qemu_img(servers, tmp_path):
    uri = qemu_nbd_unix(servers, tmp_path, mixed_raw(tmp_path / "d.raw"))
    for args in (["info", uri], ["info", "--output=json", uri], ["map", uri],
                 ["map", "--output=json", uri]):
        out = same(*args).stdout
    assert '"data": true' in out and '"zero": true' in out     # the export's allocation


@needs_libnbd
def test_a_qcow2_image_over_nbd_is_probed_and_read_as_qemu_img_does(servers, tmp_path):
    img = tmp_path / "d.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(mixed_raw(tmp_path / "s.raw")),
                    str(img)], check=True)
    uri = qemu_nbd_unix(servers, tmp_path, img)      # the qcow2 file's bytes, served raw
    out = same("info", uri).stdout
    assert "file format: qcow2" in out and "disk size: unavailable" in out
    same("map", "--output=json", uri)
    same("compare", uri, str(tmp_path / "s.raw"))
    out_raw = tmp_path / "out.raw"
    subprocess.run([str(KIMG), "convert", "-O", "raw", uri, str(out_raw)], check=True)
    assert open(out_raw, "rb").read() == open(tmp_path / "s.raw", "rb").read()


@needs_libnbd
def test_every_spelling_of_an_address_names_the_export_as_qemu_img_does(servers, tmp_path):
    img = mixed_raw(tmp_path / "d.raw")
    port = qemu_nbd_tcp(servers, img, export="e")
    uri = qemu_nbd_unix(servers, tmp_path, img, export="u", extra=["-r"])
    sock = uri.split("socket=")[1]
    for name in (f"nbd://127.0.0.1:{port}/e", f"nbd+tcp://127.0.0.1:{port}/e",
                 f"nbd:127.0.0.1:{port}:exportname=e", uri, f"nbd:unix:{sock}:exportname=u"):
        k = same("info", "--output=json", name)
        assert f'"virtual-size": {64 << 20}' in k.stdout


@needs_libnbd
def test_convert_writes_into_an_export_and_reads_it_back(servers, tmp_path):
    src = mixed_raw(tmp_path / "src.raw")
    target = tmp_path / "t.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(target), "64M"], check=True)
    subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0xff 0 64M", str(target)],
                   check=True, capture_output=True)
    uri = qemu_nbd_unix(servers, tmp_path, target)
    k = subprocess.run([str(KIMG), "convert", "-n", "-O", "raw", str(src), uri],
                       capture_output=True, text=True)
    assert k.returncode == 0, k.stderr
    # The server's file now holds the source, zeroes included where the target had 0xff.
    assert open(target, "rb").read() == open(src, "rb").read()
    same("compare", "-f", "raw", "-F", "raw", str(src), uri)


@needs_libnbd
def test_a_qcow2_image_on_nbdkit_memory_takes_writes(servers, tmp_path):
    """nbdkit's memory plugin: a server that is not QEMU's; qcow2 made on it by
    qemu-img, written through kestrel-img, read back by qemu-img."""
    if not shutil.which("nbdkit"):
        pytest.skip("nbdkit is not installed")
    sock = tmp_path / "m.sock"
    servers(["nbdkit", "-f", "-U", str(sock), "memory", "size=64M"], sock)
    uri = f"nbd+unix:///?socket={sock}"
    img = tmp_path / "i.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "32M"], check=True)
    subprocess.run(["qemu-img", "dd", "-f", "raw", "-O", "raw", f"if={img}", f"of={uri}",
                    "bs=64k"], check=True, capture_output=True)
    src = mixed_raw(tmp_path / "s.raw", 32 << 20)
    k = subprocess.run([str(KIMG), "convert", "-n", "-f", "raw", "-O", "qcow2", str(src), uri],
                       capture_output=True, text=True)
    assert k.returncode == 0, k.stderr
    q = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(src), uri],
                       capture_output=True, text=True)
    assert q.returncode == 0, q.stdout + q.stderr
    q = subprocess.run(["qemu-img", "check", "-f", "qcow2", uri], capture_output=True, text=True)
    assert q.returncode == 0, q.stdout + q.stderr


@needs_libnbd
def test_bad_addresses_get_qemu_img_s_messages(servers, tmp_path):
    img = mixed_raw(tmp_path / "d.raw")
    port = qemu_nbd_tcp(servers, img, export="e")
    closed = free_port()
    for name in (f"nbd://127.0.0.1:{port}/nosuch", f"nbd://127.0.0.1:{closed}/e",
                 f"nbd+unix:///e?socket={tmp_path}/none.sock"):
        k = same("info", name)
        assert k.returncode == 1 and "Could not open" in k.stderr


@needs_libnbd
def test_exports_cannot_be_created_or_resized(servers, tmp_path):
    uri = qemu_nbd_unix(servers, tmp_path, mixed_raw(tmp_path / "d.raw"))
    k = subprocess.run([str(KIMG), "resize", "-f", "raw", uri, "128M"], capture_output=True,
                       text=True)
    q = subprocess.run(["qemu-img", "resize", "-f", "raw", uri, "128M"], capture_output=True,
                       text=True)
    assert (k.returncode, k.stderr.split(": ", 1)[1]) == (q.returncode,
                                                          q.stderr.split(": ", 1)[1])
    k = subprocess.run([str(KIMG), "create", "-f", "raw", uri, "1M"], capture_output=True,
                       text=True)
    assert k.returncode == 1 and "Protocol driver 'nbd' does not support image creation" \
        in k.stderr
    assert (tmp_path / "d.raw").stat().st_size == 64 << 20


@needs_libnbd
def test_a_read_only_export_refuses_writers_and_serves_readers(servers, tmp_path):
    img = mixed_raw(tmp_path / "d.raw")
    uri = qemu_nbd_unix(servers, tmp_path, img, extra=["-r"])
    src = mixed_raw(tmp_path / "s.raw")
    k = subprocess.run([str(KIMG), "convert", "-n", "-O", "raw", str(src), uri],
                       capture_output=True, text=True)
    assert k.returncode == 1 and "read-only" in k.stderr
    k = subprocess.run([str(KIMG), "compare", uri, str(img)], capture_output=True, text=True)
    assert k.returncode == 0, k.stderr


@needs_libnbd
@pytest.mark.guest
def test_the_guest_writes_and_reads_a_disk_on_an_nbd_export(probe, servers, tmp_path):
    disk = tmp_path / "disk.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(disk), "64M"], check=True)
    uri = qemu_nbd_unix(servers, tmp_path, disk)
    status, out, err = run_probe(*drive(uri), "-kernel", probe,
                                 scenario="blk-write,pattern=9,sectors=256,offset=64")
    assert status == 0 and "probe: blk: verified" in probe_lines(out), err
    data = open(disk, "rb").read()
    assert data[64 * SECTOR:320 * SECTOR] == pattern(9, 64 * SECTOR, 256 * SECTOR)
    status, out, err = run_probe(*drive(uri), "-kernel", probe,
                                 scenario="blk-read,pattern=9,sectors=256,offset=64")
    assert status == 0 and "probe: blk: verified" in out, err


@needs_libnbd
def test_blockdev_options_name_an_export_as_libvirt_writes_them(servers, tmp_path):
    """QEMU's BlockdevOptionsNbd (server.type/host/port/path, export) in json: names and
    --image-opts, alone (format "nbd") and under a format; unknown options refused."""
    img = tmp_path / "d.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(mixed_raw(tmp_path / "s.raw")),
                    str(img)], check=True)
    uri = qemu_nbd_unix(servers, tmp_path, img, export="t")
    sock = uri.split("socket=")[1]
    port = qemu_nbd_tcp(servers, img, export="t")
    alone = f'{{"driver":"nbd","server":{{"type":"unix","path":"{sock}"}},"export":"t"}}'
    under = ('{"driver":"qcow2","file":{"driver":"nbd","server":{"type":"inet",'
             f'"host":"127.0.0.1","port":"{port}"}},"export":"t"}}}}')
    assert "file format: nbd" in same("info", "json:" + alone).stdout
    assert '"format": "qcow2"' in same("info", "--output=json", "json:" + under).stdout
    same("info", "--image-opts", f"driver=nbd,server.type=unix,server.path={sock},export=t")
    k = same("info", "--image-opts",
             f"driver=nbd,server.type=unix,server.path={sock},export=t,bogus=1")
    assert k.returncode == 1 and "doesn't support the option 'bogus'" in k.stderr


@needs_libnbd
@pytest.mark.parametrize("cls", [Server, KestrelServer], ids=["qemu-nbd", "kestrel-nbd"])
def test_the_server_interface_serves_new_zero_filled_exports(cls, tmp_path):
    """bench/storage's interface (helper-storage.md): every blank() is a new export of
    its size, zero-filled and writable; NBD cannot create (url_for is None)."""
    ok, why = getattr(cls, "available", available)()
    if not ok:
        pytest.skip(why)
    srv = cls(tmp_path)
    try:
        a, b = srv.blank(1 << 20), srv.blank(2 << 20)
        assert a != b and srv.url_for("new.raw") is None
        assert '"virtual-size": 1048576' in same("info", "--output=json", a).stdout
        same("compare", "-f", "raw", "-F", "raw", str(raw_zero(tmp_path / "z.raw", 1 << 20)),
             a)
        src = tmp_path / "s.raw"
        src.write_bytes(os.urandom(2 << 20))
        k = subprocess.run([str(KIMG), "convert", "-n", "-f", "raw", "-O", "raw", str(src), b],
                           capture_output=True, text=True)
        assert k.returncode == 0, k.stderr
        same("compare", "-f", "raw", "-F", "raw", str(src), b)
    finally:
        srv.stop()
    srv.stop()                  # idempotent: a finalizer may stop it again
    assert all(p.proc.poll() is not None for p in srv.procs)


def raw_zero(path, size):
    with open(path, "wb") as f:
        f.truncate(size)
    return path
