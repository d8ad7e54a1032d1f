"""gluster disks (issue #20): files on a GlusterFS volume through libgfapi, beside qemu-img
7.2's gluster driver on the same volume.  The module starts one glusterd with its own
working and run directories and a one-brick volume on a directory of the test's, and
stops them at the end.

Two things of glusterd's cannot be moved: its port (the brick processes it spawns fetch
their volume file from port 24007 of the brick's host, whatever port glusterd listens on:
measured, the brick exits "disconnected from remote-host"), and the brick's socket and
log directories (/var/run/gluster, /var/log/glusterfs/bricks).  So each Server takes a
loopback address of its own, 127.0.0.N (N >= 2), binds glusterd to N:24007 and names
its brick N:/dir: servers of several modules or processes (the storage bench) run side
by side.  The gluster CLI refuses 127.0.0.1 as a brick host anyway ("Please provide a
valid hostname/ip other than localhost, 127.0.0.1 or loopback address").

libgfapi 10.3's glfs_fini waits 10 s before it tears a connection down, so each qemu-img
command on the volume takes 10 s; the tests run the two tools, and independent commands,
side by side."""
import concurrent.futures
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from test_img_helpers import KIMG, make_raw

GLUSTERD = "/usr/sbin/glusterd"
GLUSTERD_PORT = 24007
VOLUME = "V"
LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [0-9:.]+ \+0000\] ")


def kimg_has_gluster():
    p = subprocess.run([str(KIMG), "info", "gluster:///"], capture_output=True, text=True)
    return "Unknown protocol" not in p.stderr


def port_busy(port, host="127.0.0.1"):
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def free_loopback():
    """A loopback address whose port 24007 nobody holds, or None."""
    for n in range(2, 255):
        host = f"127.0.0.{n}"
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, GLUSTERD_PORT))
                return host
            except OSError:
                continue
    return None


def available():
    """(bool, reason): kestrel-img has the driver and glusterd can run here."""
    if not KIMG.exists():
        return False, f"{KIMG} is not built"
    if not kimg_has_gluster():
        return False, "kestrel-img built without libgfapi (glusterfs-api)"
    if not os.path.exists(GLUSTERD) or not shutil.which("gluster"):
        return False, "glusterfs-server is not installed"
    if os.geteuid() != 0:
        return False, "glusterd and its bricks need root (trusted.* xattrs on the brick)"
    if free_loopback() is None:
        return False, f"port {GLUSTERD_PORT} is held on every loopback address (a glusterd " \
            "bound to 0.0.0.0?): bricks need that port on their host"
    return True, ""


_ok, _why = available()
pytestmark = pytest.mark.skipif(not _ok, reason=_why)


class Server:
    """A glusterd on 127.0.0.N:24007 serving one volume, V, of one brick under d."""
    name = "gluster"

    def __init__(self, d):
        self.dir = Path(d)
        self.glusterd = None
        self.stopped = False
        for sub in ("wd", "run", "log", "brick"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.host = free_loopback()
        if not self.host:
            raise RuntimeError(f"port {GLUSTERD_PORT} is taken on every loopback address")
        self.sock = self.dir / "run" / "glusterd.socket"
        vol = self.dir / "glusterd.vol"
        vol.write_text(
            "volume management\n    type mgmt/glusterd\n"
            f"    option working-directory {self.dir}/wd\n"
            f"    option run-directory {self.dir}/run\n"
            f"    option glusterd-sockfile {self.sock}\n"
            "    option transport-type socket\n"
            f"    option transport.socket.listen-port {GLUSTERD_PORT}\n"
            f"    option transport.socket.bind-address {self.host}\n"
            "    option transport.address-family inet\n    option ping-timeout 0\n"
            "    option event-threads 1\nend-volume\n")
        self.log = self.dir / "log" / "glusterd.log"
        self.glusterd = subprocess.Popen(
            [GLUSTERD, "-N", "-f", str(vol), "-l", str(self.log), "-p",
             str(self.dir / "run" / "glusterd.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            self._wait()
            brick = f"{self.host}:{self.dir}/brick"
            self.cli("volume", "create", VOLUME, brick, "force")
            self.cli("volume", "start", VOLUME)
        except Exception:
            self.stop()
            raise

    def _wait(self):
        end = time.monotonic() + 20
        while not (self.sock.exists() and port_busy(GLUSTERD_PORT, self.host)):
            if time.monotonic() > end or self.glusterd.poll() is not None:
                raise RuntimeError("glusterd did not start:\n" + self._logs())
            time.sleep(0.05)

    def _logs(self):
        text = self.log.read_text() if self.log.exists() else "(no log)"
        for f in Path("/var/log/glusterfs/bricks").glob("*.log"):
            if str(self.dir).strip("/").replace("/", "-") in f.name:
                text += f"\n--- {f}\n" + f.read_text()[-4000:]
        return text[-8000:]

    def cli(self, *args):
        p = subprocess.run(["gluster", "--mode=script", f"--glusterd-sock={self.sock}",
                            f"--log-file={self.dir}/log/cli.log", *args],
                           capture_output=True, text=True, timeout=60)
        if p.returncode:
            raise RuntimeError(f"gluster {' '.join(args)}: {p.stdout}{p.stderr}\n" +
                               self._logs())
        return p.stdout

    def url_for(self, name):
        return f"gluster://{self.host}/{VOLUME}/{name}"

    def blank(self, size):
        """A new zero-filled raw file of size bytes on the volume, and its URL."""
        self.n = getattr(self, "n", 0) + 1
        url = self.url_for(f"blank{self.n}.raw")
        p = subprocess.run([str(KIMG), "create", "-q", "-f", "raw", url, str(size)],
                           capture_output=True, text=True, timeout=60)
        if p.returncode:
            raise RuntimeError(f"could not create {url}: {p.stderr}")
        return url

    def brick_file(self, name):
        return self.dir / "brick" / name

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        # The brick processes glusterd started (their pid files are in our run dir), and
        # what they leave in the global directories: their socket and log.
        for pidfile in (self.dir / "run").glob("vols/*/*.pid"):
            try:
                pid = int(pidfile.read_text().strip())
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                os.kill(pid, 15)
            except (ValueError, OSError):
                continue
            end = time.monotonic() + 10
            while Path(f"/proc/{pid}").exists() and time.monotonic() < end:
                time.sleep(0.05)
            for flag in (b"-S", b"-l"):
                if flag in argv and argv.index(flag) + 1 < len(argv):
                    Path(argv[argv.index(flag) + 1].decode()).unlink(missing_ok=True)
        if self.glusterd and self.glusterd.poll() is None:
            self.glusterd.terminate()
            try:
                self.glusterd.wait(10)
            except subprocess.TimeoutExpired:
                self.glusterd.kill()
                self.glusterd.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("gluster"))
    yield s
    s.stop()


def tool(argv0, *args):
    return subprocess.Popen([argv0, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def result(p):
    out, err = p.communicate(timeout=120)
    # libgfapi's own log lines (timestamps) go to stderr in both tools: not compared.
    err = "".join(l for l in err.splitlines(True) if not LOG_LINE.match(l))
    return p.returncode, out, err


def both(*commands):
    """Each command (an argument tuple) through qemu-img and kestrel-img, all at once:
    [(qemu, kestrel)] of (status, stdout, stderr)."""
    procs = [(tool("qemu-img", *c), tool(str(KIMG), *c)) for c in commands]
    return [(result(q), result(k)) for q, k in procs]


def same(*commands, skip_image_line=False):
    """Both tools answer every command alike (stderr with the program's name)."""
    answers = both(*commands)
    for c, (q, k) in zip(commands, answers):
        k = (k[0], k[1], k[2].replace("kestrel-img:", "qemu-img:"))
        if skip_image_line:
            q = (q[0], re.sub(r"^image: .*\n", "", q[1]), q[2])
            k = (k[0], re.sub(r"^image: .*\n", "", k[1]), k[2])
        assert k == q, c
    return [k for _, k in answers]


def kimg(*args):
    return result(tool(str(KIMG), *args))


def qimg(*args):
    return result(tool("qemu-img", *args))


def test_create_convert_check_compare_map_beside_qemu_img(server, tmp_path):
    """Each tool creates and converts onto the volume at once (qemu-img takes 10-30 s a
    command there); then every image is checked, compared and mapped by both tools."""
    src = tmp_path / "src.raw"
    data = make_raw(src, 8 << 20, seed=20)
    k_url, q_url = server.url_for("k.qcow2"), server.url_for("q.qcow2")
    kc_url, qc_url = server.url_for("kc.qcow2"), server.url_for("qc.qcow2")
    raw_url = server.url_for("kc.raw")
    # qemu-img writes its data into an image kestrel-img made (convert -n: one open of
    # the volume, 10 s, where -O without -n takes three).
    assert kimg("create", "-q", "-f", "qcow2", qc_url, "8M")[0] == 0
    with concurrent.futures.ThreadPoolExecutor() as ex:
        made = list(ex.map(lambda a: result(tool(*a)), [
            (str(KIMG), "create", "-f", "qcow2", k_url, "64M"),
            ("qemu-img", "create", "-f", "qcow2", q_url, "64M"),
            (str(KIMG), "convert", "-O", "qcow2", src, kc_url),
            (str(KIMG), "convert", "-O", "raw", src, raw_url),
            ("qemu-img", "convert", "-n", "-O", "qcow2", src, qc_url)]))
    assert [m[0] for m in made] == [0] * 5, made
    assert made[0][1] == made[1][1].replace("q.qcow2", "k.qcow2")     # "Formatting ..."
    # Whole sectors, as QEMU's driver writes: qemu-img reads nothing short.
    assert server.brick_file("k.qcow2").stat().st_size == \
        server.brick_file("q.qcow2").stat().st_size
    assert server.brick_file("kc.raw").read_bytes() == data
    checks = same(("check", k_url), ("check", q_url), ("check", kc_url), ("check", qc_url),
                  ("info", k_url), ("info", "--output=json", kc_url),
                  ("compare", src, kc_url), ("compare", src, qc_url),
                  ("map", "--output=json", kc_url), ("map", "--output=json", "-f", "raw", raw_url))
    assert all(c[1].startswith("No errors were found") for c in checks[:4])
    assert all(c[1] == "Images are identical.\n" for c in checks[6:8])
    # Back out of the volume, from the image the other tool wrote.
    back = tmp_path / "back.raw"
    assert kimg("convert", "-O", "raw", qc_url, back)[0] == 0
    assert back.read_bytes() == data


def test_convert_from_an_nbd_export_onto_the_volume(server, tmp_path):
    if "Unknown protocol" in kimg("info", "nbd+unix:///x?socket=/nonexistent")[2]:
        pytest.skip("kestrel-img built without libnbd")
    src = tmp_path / "src.raw"
    data = make_raw(src, 4 << 20, seed=7)
    sock = tmp_path / "nbd.sock"
    nbd = subprocess.Popen(["qemu-nbd", "-f", "raw", "-k", str(sock), "--persistent", str(src)])
    try:
        end = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < end:
            time.sleep(0.05)
        url = server.url_for("from-nbd.qcow2")
        st = kimg("convert", "-O", "qcow2", f"nbd+unix:///?socket={sock}", url)
        assert st[0] == 0, st
    finally:
        nbd.terminate()
        nbd.wait(10)
    # One brick holds the file as it is: qemu-img reads it there (no 10 s on the volume).
    q = qimg("compare", src, server.brick_file("from-nbd.qcow2"))
    assert q[0] == 0, q
    assert kimg("convert", "-O", "raw", url, tmp_path / "o.raw")[0] == 0
    assert (tmp_path / "o.raw").read_bytes() == data


def test_resize_grows_raw_and_qcow2_files_on_the_volume(server):
    raw_url = server.blank(4 << 20)
    assert server.brick_file(raw_url.rsplit("/", 1)[1]).stat().st_size == 4 << 20
    q_url = server.url_for("grow.qcow2")
    assert kimg("create", "-q", "-f", "qcow2", q_url, "16M")[0] == 0
    assert kimg("resize", "-f", "raw", raw_url, "12M")[0] == 0
    assert kimg("resize", q_url, "+16M")[0] == 0
    assert server.brick_file(raw_url.rsplit("/", 1)[1]).stat().st_size == 12 << 20
    q = qimg("info", server.brick_file("grow.qcow2"))
    assert "virtual size: 32 MiB" in q[1], q
    assert qimg("check", server.brick_file("grow.qcow2"))[0] == 0
    k = kimg("resize", "-f", "raw", "--shrink", raw_url, "8M")
    assert k[0] == 0, k
    assert server.brick_file(raw_url.rsplit("/", 1)[1]).stat().st_size == 8 << 20


def test_blank_is_a_zeroed_target_both_tools_write(server, tmp_path):
    src = tmp_path / "s.raw"
    data = make_raw(src, 2 << 20, seed=3)
    url = server.blank(2 << 20)
    assert server.brick_file(url.rsplit("/", 1)[1]).read_bytes() == bytes(2 << 20)
    assert kimg("convert", "-n", "-O", "raw", src, url)[0] == 0
    assert server.brick_file(url.rsplit("/", 1)[1]).read_bytes() == data


def test_names_and_errors_as_qemu_img_takes_them(server):
    """URLs, --image-opts and json: forms, server fallback and bad names: both tools
    answer alike (one batch, side by side)."""
    url = server.url_for("n.qcow2")
    assert kimg("create", "-q", "-f", "qcow2", url, "2M")[0] == 0
    # A backing file named relative to an image on the volume is on the volume too.
    overlay = server.url_for("n-overlay.qcow2")
    assert kimg("create", "-q", "-f", "qcow2", "-b", "n.qcow2", "-F", "qcow2", overlay)[0] == 0
    inet = f"server.0.type=inet,server.0.host={server.host},server.0.port=24007"
    under = ("driver=qcow2,file.driver=gluster,file.volume=V,file.path=n.qcow2,"
             + ",".join("file." + kv for kv in inet.split(",")))
    # server.0 answers nothing: server.1 is the one that serves the volume file.
    fallback = ("driver=qcow2,file.driver=gluster,file.volume=V,file.path=n.qcow2,"
                "file.server.0.type=inet,file.server.0.host=127.0.0.1,file.server.0.port=1,"
                f"file.server.1.type=inet,file.server.1.host={server.host},"
                "file.server.1.port=24007")
    js = ('json:{"driver":"gluster","volume":"V","path":"n.qcow2","server":'
          f'[{{"type":"inet","host":"{server.host}","port":"24007"}}]}}')
    good = [("info", "--image-opts", under), ("info", "--image-opts", fallback),
            ("info", f"gluster+unix:///V/n.qcow2?socket={server.sock}"), ("info", js),
            ("info", url.replace("gluster://", "gluster+rdma://")),
            ("info", url.replace("gluster://", "gluster+tcp://")),
            ("info", "--backing-chain", overlay)]
    bad = [("info", f"gluster://{server.host}/W/n.qcow2"),      # no such volume
           ("info", server.url_for("nosuch")),                  # no such file
           ("info", "gluster://127.0.0.1:1/V/n.qcow2"),         # nobody at that port
           ("info", "gluster://127.0.0.1/V"),                   # no path
           ("info", "gluster://127.0.0.1/"),
           ("info", "gluster+unix:///V/n.qcow2"),               # unix needs socket=
           ("info", "gluster+unix://127.0.0.1/V/n.qcow2?socket=/x"),  # and no host
           ("info", f"{url}?socket=/x"),                        # tcp takes no query
           ("info", "gluster+foo://h/V/x"),
           ("info", "--image-opts", "driver=gluster,volume=V,path=x")]
    answers = same(*good, *bad, skip_image_line=True)
    assert all(a[0] == 0 for a in answers[:len(good)])
    assert all("virtual size: 2 MiB" in a[1] for i, a in enumerate(answers[:len(good)])
               if i != 3)
    assert "file format: gluster" in answers[3][1]     # driver=gluster alone: the bytes
    assert "rdma feature is not supported, falling back to tcp" in answers[4][2]
    errs = answers[len(good):]
    assert all(a[0] == 1 for a in errs)
    assert "Gluster connection for volume W, path n.qcow2 failed to connect" in errs[0][2]
    assert f"hint: failed on host {server.host} and port 24007" in errs[0][2]
    assert "No such file or directory" in errs[1][2]
    assert "invalid URI gluster://127.0.0.1/V\nUsage: file=gluster" in errs[3][2]
    assert "Unknown protocol 'gluster+foo'" in errs[8][2]
    assert "Parameter 'server' is missing" in errs[9][2]
    # What Kestrel does not implement is refused by name.
    k = kimg("info", "--image-opts", f"driver=gluster,volume=V,path=n.qcow2,{inet},"
             "server.0.to=24010")
    assert k[0] == 1 and "Option 'server.0.to' of block protocol 'gluster' is not " \
        "supported by Kestrel" in k[2]
    k = kimg("info", "--image-opts", "driver=gluster,volume=V,path=n.qcow2,"
             "server.0.type=inet,server.0.host=127.0.0.1,server.0.port=99999")
    assert k[0] == 1 and "'99999' is not a valid port number" in k[2]
    k = kimg("info", "--image-opts", f"driver=gluster,volume=V,path=n.qcow2,{inet},bogus=1")
    assert k[0] == 1 and "doesn't support the option 'bogus'" in k[2]


def test_debug_and_logfile_steer_libgfapi_s_log(server, tmp_path):
    url = server.url_for("log.qcow2")
    assert kimg("create", "-q", "-f", "qcow2", url, "1M")[0] == 0
    base = ("driver=gluster,volume=V,path=log.qcow2,server.0.type=inet,"
            f"server.0.host={server.host},server.0.port=24007")
    loud, quiet = tmp_path / "loud.log", tmp_path / "quiet.log"
    assert kimg("info", "--image-opts", f"{base},debug=9,logfile={loud}")[0] == 0
    assert kimg("info", "--image-opts", f"{base},debug=0,logfile={quiet}")[0] == 0
    assert " D [" in loud.read_text()          # debug 9: libgfapi's DEBUG and TRACE lines
    assert " D [" not in (quiet.read_text() if quiet.exists() else "")
    k = kimg("info", "--image-opts", f"{base},debug=x")
    assert k[0] == 1 and "Parameter 'debug' expects a number" in k[2]


def test_the_vmm_opens_drives_on_the_volume(server):
    """kestrel -drive file=gluster://... and -blockdev driver=gluster (dotted, and JSON with
    libvirt's server array) go through the same block layer: a missing file is refused
    by it before anything else happens; an existing one opens."""
    kestrel = KIMG.parents[1] / "kestrel"
    name = server.url_for("nosuch.raw")
    inet = f"server.0.type=inet,server.0.host={server.host},server.0.port=24007"
    js = ('{"driver":"qcow2","node-name":"q0","file":{"driver":"gluster","volume":"V",'
          f'"path":"nosuch.raw","server":[{{"type":"inet","host":"{server.host}",'
          '"port":"24007"}]}}')
    for args, drv in (([ "-drive", f"file={name},if=none,id=d0"], "d0"),
                      (["-blockdev", f"driver=gluster,node-name=g0,volume=V,path=nosuch.raw,"
                        f"{inet}"], "g0"),
                      (["-blockdev", js], "q0")):
        p = subprocess.run([str(kestrel), "-nographic", *args, "-device",
                            f"virtio-blk-pci,drive={drv}"], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode != 0
        assert "No such file or directory" in p.stderr, (args, p.stderr)
        assert f"Could not open 'gluster://{server.host}" in p.stderr, (args, p.stderr)
    url = server.blank(1 << 20)
    path = url.rsplit("/", 1)[1]
    p = subprocess.run([str(kestrel), "-nographic", "-blockdev",
                        f"driver=gluster,node-name=g0,volume=V,path={path},{inet}",
                        "-device", "virtio-blk-pci,drive=g0", "-kernel", "/nonexistent"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "gluster" not in p.stderr.replace(url, ""), p.stderr


@pytest.mark.guest
def test_the_guest_writes_and_reads_a_disk_on_the_volume(probe, server):
    from test_virtio import drive, pattern, probe_lines, run_probe, SECTOR
    url = server.blank(64 << 20)
    status, out, err = run_probe(*drive(url), "-kernel", probe,
                                 scenario="blk-write,pattern=9,sectors=256,offset=64")
    assert status == 0 and "probe: blk: verified" in probe_lines(out), err
    data = server.brick_file(url.rsplit("/", 1)[1]).read_bytes()
    assert data[64 * SECTOR:320 * SECTOR] == pattern(9, 64 * SECTOR, 256 * SECTOR)
    status, out, err = run_probe(*drive(url), "-kernel", probe,
                                 scenario="blk-read,pattern=9,sectors=256,offset=64")
    assert status == 0 and "probe: blk: verified" in out, err


@pytest.mark.guest
@pytest.mark.qemu
def test_the_guest_under_qemu_writes_a_disk_on_the_volume(probe, server):
    from conftest import need_qemu, qemu
    from test_virtio import QEMU_BASE, drive, pattern, SECTOR
    need_qemu()
    url = server.blank(64 << 20)
    status, out, err = qemu(*QEMU_BASE, *drive(url), "-kernel", probe, "-append",
                            "probe=blk-write,pattern=5,sectors=128,offset=8")
    assert status == 0 and "probe: blk: verified" in out, out + err
    data = server.brick_file(url.rsplit("/", 1)[1]).read_bytes()
    assert data[8 * SECTOR:136 * SECTOR] == pattern(5, 8 * SECTOR, 128 * SECTOR)


def test_help_lists_gluster_as_qemu_img_with_the_driver_does():
    line = [l for l in kimg("--help")[1].splitlines() if l.startswith("Supported formats:")]
    assert "gluster" in line[0].split()


def test_create_preallocation_and_file_options(server):
    """preallocation reaches the brick's file; the file protocol's options are refused
    (QEMU's gluster create takes size and preallocation only)."""
    sizes = {}
    for mode in ("off", "falloc", "full"):
        url = server.url_for(f"pre-{mode}.raw")
        k = kimg("create", "-q", "-f", "raw", "-o", f"preallocation={mode}", url, "4M")
        assert k[0] == 0, k
        st = server.brick_file(f"pre-{mode}.raw").stat()
        assert st.st_size == 4 << 20
        sizes[mode] = st.st_blocks * 512
    assert sizes["off"] < 1 << 20 and sizes["falloc"] >= 4 << 20 and sizes["full"] >= 4 << 20
    k = kimg("create", "-q", "-f", "qcow2", "-o", "extent_size_hint=1M",
             server.url_for("hint.qcow2"), "4M")
    assert k[0] == 1 and "Invalid parameter 'extent_size_hint'" in k[2]
    assert not server.brick_file("hint.qcow2").exists()


def test_create_refuses_formats_of_several_files(server, tmp_path):
    """A format that writes a second file (vmdk's extents) cannot be one file on the
    volume: refused by name (create_stage.c, as on nfs and rbd), nothing made there, and
    no scratch file left in $TMPDIR."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    k = subprocess.run([str(KIMG), "create", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse",
                        server.url_for("split.vmdk"), "8M"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert k.returncode == 1 and "more than one file is not supported by Kestrel on " \
        "gluster volumes" in k.stderr, k.stderr
    assert not server.brick_file("split.vmdk").exists()
    assert list(tmp_path.iterdir()) == []
