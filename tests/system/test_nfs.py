"""NFS disks (issue #20): files on an NFS server, read, written and created through libnfs
(NFSv3 over TCP), beside qemu-img 7.2's nfs driver on the same export.  The server is
nfs-ganesha with FSAL VFS exporting a directory of the test's, started in the foreground
on loopback ports of its own; it registers with rpcbind (libnfs finds MOUNT through the
portmapper), which is started for the module when none runs and stopped after it.
This host has no kernel nfsd (no "nfsd" in /proc/filesystems), hence ganesha."""
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from test_img_helpers import (KIMG, free_port, SANITIZER_REPORT, both_tools as both, make_raw,
                              same_as_qemu_img as same)
from test_virtio import drive, pattern, probe_lines, run_probe, SECTOR

GANESHA = shutil.which("ganesha.nfsd") or "/usr/bin/ganesha.nfsd"
RPCBIND = shutil.which("rpcbind") or "/usr/sbin/rpcbind"
FSAL_VFS = "/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so"


def available():
    """(True, "") when kestrel-img has the nfs driver and ganesha can serve here."""
    p = subprocess.run([str(KIMG), "info", "nfs:///x"], capture_output=True, text=True)
    if "Unknown protocol" in p.stderr:
        return False, "kestrel-img built without libnfs"
    if not os.path.exists(GANESHA) or not os.path.exists(FSAL_VFS):
        return False, "nfs-ganesha and nfs-ganesha-vfs are not installed"
    if not os.path.exists(RPCBIND):
        return False, "rpcbind is not installed (ganesha registers NFS and MOUNT with it)"
    if os.geteuid() != 0:
        return False, "ganesha needs root (FSAL VFS opens files by handle)"
    return True, ""


_ok, _why = available()
pytestmark = pytest.mark.skipif(not _ok, reason=_why)


def rpcbind_running():
    return subprocess.run(["rpcinfo", "-p", "127.0.0.1"], capture_output=True,
                          timeout=10).returncode == 0


CONF = """NFS_CORE_PARAM {{
  NFS_Port = {nfs}; MNT_Port = {mnt}; NLM_Port = {nlm}; Rquota_Port = {rq};
  Bind_addr = 127.0.0.1; Protocols = 3, 4; Enable_NLM = false; Enable_RQUOTA = false;
}}
NFSV4 {{ Graceless = true; RecoveryRoot = {d}/recovery; }}
EXPORT {{
  Export_Id = 1; Path = {export}; Pseudo = /export; Protocols = 3, 4;
  Access_Type = RW; Squash = No_Root_Squash; SecType = sys;
  FSAL {{ Name = VFS; }}
}}
LOG {{ Default_Log_Level = EVENT; }}
"""


class Server:
    """nfs-ganesha exporting d/export (and rpcbind when none runs); see the module text."""
    name = "nfs"

    def __init__(self, d):
        self.dir = Path(d)
        self.export = self.dir / "export"
        self.export.mkdir(parents=True, exist_ok=True)
        self.export.chmod(0o1777)  # other uids (?uid=) may create files too
        (self.dir / "recovery").mkdir(exist_ok=True)
        self.rpcbind = self.ganesha = None
        self.count = 0
        if not rpcbind_running():
            # -f: in the foreground, so that this process owns it; -w: warm start off.
            self.rpcbind = subprocess.Popen([RPCBIND, "-f", "-w"])
            self._wait(rpcbind_running, "rpcbind")
        conf = self.dir / "ganesha.conf"
        conf.write_text(CONF.format(nfs=free_port(), mnt=free_port(), nlm=free_port(),
                                    rq=free_port(), d=self.dir, export=self.export))
        self.log = self.dir / "ganesha.log"
        self.ganesha = subprocess.Popen([GANESHA, "-F", "-f", str(conf), "-L", str(self.log),
                                         "-p", str(self.dir / "ganesha.pid")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            self._wait(self._answers, "ganesha.nfsd")
        except Exception:
            self.stop()
            raise

    def _answers(self):
        if self.ganesha.poll() is not None:
            raise RuntimeError("ganesha.nfsd exited:\n" + self.log.read_text())
        probe = self.export / ".probe"
        probe.write_bytes(b"")
        r = subprocess.run([str(KIMG), "info", self.url(probe)], capture_output=True,
                           timeout=30)
        return r.returncode == 0

    def _wait(self, ready, what, timeout=20):
        end = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > end:
                log = self.log.read_text() if what != "rpcbind" and self.log.exists() else ""
                raise RuntimeError(f"{what} did not answer in {timeout} s\n{log}")
            time.sleep(0.1)

    def url(self, path, query=""):
        return f"nfs://127.0.0.1{path}{query}"

    def url_for(self, name):
        return self.url(self.export / name)

    def blank(self, size):
        self.count += 1
        path = self.export / f"blank{self.count}.raw"
        with open(path, "wb") as f:
            f.truncate(size)
        return self.url(path)

    def restart(self, down=1.0):
        """ganesha killed (SIGKILL), and started again on the same ports after down s."""
        self.ganesha.kill()
        self.ganesha.wait()
        time.sleep(down)
        self.ganesha = subprocess.Popen([GANESHA, "-F", "-f", str(self.dir / "ganesha.conf"),
                                         "-L", str(self.log), "-p",
                                         str(self.dir / "ganesha.pid")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop(self):
        for attr in ("ganesha", "rpcbind"):
            p = getattr(self, attr)
            setattr(self, attr, None)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("nfs"))
    yield s
    s.stop()


def run(tool, *args):
    p = subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True,
                       timeout=60)
    # Under the sanitizer build (KESTREL_BUILD=build-asan) a report fails the test.
    assert not SANITIZER_REPORT.search(p.stderr), p.stderr
    return p


def ok(p):
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_create_on_nfs_passes_the_other_tools_check(server):
    k_url, q_url = server.url_for("k.qcow2"), server.url_for("q.qcow2")
    q, k = both("create", "-f", "qcow2", q_url, "64M")
    ok(q)
    k = run(KIMG, "create", "-f", "qcow2", k_url, "64M")
    assert k.stdout == q.stdout.replace("q.qcow2", "k.qcow2"), (k.stdout, q.stdout)
    ok(run("qemu-img", "check", k_url))
    ok(run(KIMG, "check", q_url))
    assert (server.export / "k.qcow2").read_bytes() == (server.export / "q.qcow2").read_bytes()
    # The mode of QEMU's nfs_file_create: 0600.
    assert (server.export / "k.qcow2").stat().st_mode & 0o777 == 0o600
    same("info", k_url)
    same("info", "--output=json", q_url)
    # A backing file beside it on the export, opened over NFS too.
    top = server.url_for("top.qcow2")
    ok(run(KIMG, "create", "-q", "-f", "qcow2", "-b", "q.qcow2", "-F", "qcow2", top))
    # qemu-img 7.2 resolves a relative backing name under nfs:// as if the image were a
    # directory (".../top.qcow2/q.qcow2"), so its check opens the image without it.
    ok(run("qemu-img", "check", 'json:{"driver":"qcow2","backing":null,"file":{"driver":"nfs",'
           f'"server":{{"type":"inet","host":"127.0.0.1"}},"path":"{server.export}/top.qcow2"}}}}'))
    assert f"actual path: {q_url}" in ok(run(KIMG, "info", top))
    # A format that wants a second file (vmdk extents): refused, nothing left behind.
    k = run(KIMG, "create", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse",
            server.url_for("split.vmdk"), "8M")
    assert k.returncode == 1 and "only single-file images on nfs" in k.stderr, k.stderr
    assert not list(server.export.glob("split*"))
    # Creating again empties the file, as qemu-img does.
    ok(run(KIMG, "create", "-f", "raw", k_url, "1M"))
    assert (server.export / "k.qcow2").stat().st_size == 1 << 20
    same("info", "-f", "raw", k_url)


def test_convert_both_ways_compare_and_map_match_qemu_img(server, tmp_path):
    src = tmp_path / "src.raw"
    data = make_raw(src, 24 << 20, seed=20)
    url = server.url_for("conv.qcow2")
    ok(run(KIMG, "convert", "-f", "raw", "-O", "qcow2", src, url))
    ok(run("qemu-img", "check", url))
    same("compare", "-f", "raw", "-F", "qcow2", src, url)
    same("map", "--output=json", url)
    same("info", url)
    back = tmp_path / "back.raw"
    ok(run(KIMG, "convert", "-O", "raw", url, back))
    assert back.read_bytes() == data
    # qemu-img's image on the export, read back by kestrel-img.
    qurl = server.url_for("qconv.qcow2")
    ok(run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", src, qurl))
    ok(run(KIMG, "check", qurl))
    same("compare", url, qurl)
    # raw created on the export by convert, then written.
    rurl = server.url_for("conv.raw")
    ok(run(KIMG, "convert", "-f", "qcow2", "-O", "raw", url, rurl))
    assert (server.export / "conv.raw").read_bytes() == data
    # Into an existing target (-n): the interface's blank.
    blank = server.blank(24 << 20)
    ok(run(KIMG, "convert", "-n", "-O", "raw", url, blank))
    same("compare", "-f", "raw", "-F", "raw", src, blank)


def test_convert_from_an_nbd_export_to_nfs(server, tmp_path):
    if not shutil.which("qemu-nbd"):
        pytest.skip("qemu-nbd is not installed")
    src = tmp_path / "nbd.raw"
    data = make_raw(src, 8 << 20, seed=21)
    sock = tmp_path / "nbd.sock"
    nbd = subprocess.Popen(["qemu-nbd", "-r", "-f", "raw", "-k", str(sock), str(src)])
    try:
        end = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < end:
            time.sleep(0.05)
        url = server.url_for("fromnbd.qcow2")
        k = run(KIMG, "convert", "-f", "raw", "-O", "qcow2", f"nbd+unix:///?socket={sock}", url)
        if "Unknown protocol" in k.stderr:
            pytest.skip("kestrel-img built without libnbd")
        ok(k)
    finally:
        nbd.terminate()
        nbd.wait(10)
    ok(run("qemu-img", "check", url))
    out = tmp_path / "out.raw"
    ok(run("qemu-img", "convert", "-O", "raw", url, out))
    assert out.read_bytes() == data


def test_resize_grows_and_shrinks_as_qemu_img(server):
    raw = server.export / "grow.raw"
    raw.write_bytes(b"\x5a" * (1 << 20))
    url = server.url(raw)
    ok(run(KIMG, "resize", "-f", "raw", url, "4M"))
    assert raw.stat().st_size == 4 << 20
    same("resize", "-f", "raw", url, "2M")  # no --shrink: both refuse
    ok(run(KIMG, "resize", "-f", "raw", "--shrink", url, "512K"))
    assert raw.read_bytes() == b"\x5a" * (512 << 10)
    q = server.url_for("grow.qcow2")
    ok(run(KIMG, "create", "-q", "-f", "qcow2", q, "8M"))
    ok(run(KIMG, "resize", q, "+8M"))
    ok(run("qemu-img", "check", q))
    assert "virtual size: 16 MiB" in ok(run("qemu-img", "info", q))


def test_bad_urls_exports_and_paths_fail_as_in_qemu_img(server):
    u = server.url_for
    for name in (u("missing.qcow2"), server.url("/nonexistent/dir/x.raw"),
                 u("k.qcow2") + "?foo=1", u("k.qcow2") + "?uid=abc", u("k.qcow2") + "?uid",
                 u("k.qcow2") + "?uid=-1", u("k.qcow2") + "?page-cache=4",
                 "nfs:///x/y", "nfs://127.0.0.1", "nfs://127.0.0.1?uid=0"):
        k = same("info", name)
        assert k.returncode == 1 and k.stderr.startswith("kestrel-img: Could not open"), name
    # Creating where the directory is not exported: the mount is refused.
    k = same("create", "-f", "raw", server.url("/nonexistent/x.raw"), "1M")
    assert k.returncode == 1 and "MNT3ERR_ACCES" in k.stderr
    # The nfs protocol has no preallocation: refused before anything is written.
    for fmt, mode in (("qcow2", "full"), ("raw", "falloc")):
        k = same("create", "-f", fmt, "-o", f"preallocation={mode}", u(f"pre.{fmt}"), "1M")
        assert k.returncode == 1, k.stderr


def test_blockdev_options_as_qemu_names_them(server):
    raw = server.export / "opts.raw"
    raw.write_bytes(os.urandom(1 << 20))
    p = str(raw)
    alone = f'{{"driver":"nfs","server":{{"type":"inet","host":"127.0.0.1"}},"path":"{p}"}}'
    assert "file format: nfs" in same("info", "json:" + alone).stdout
    under = (f'{{"driver":"raw","file":{{"driver":"nfs","server":{{"type":"inet",'
             f'"host":"127.0.0.1"}},"path":"{p}","user":0,"group":0}}}}')
    same("info", "--output=json", "json:" + under)
    base = "driver=nfs,server.type=inet,server.host=127.0.0.1"
    same("info", "--image-opts", f"{base},path={p}")
    same("info", "--image-opts", f"driver=raw,file.{base.replace(',', ',file.')},file.path={p}")
    for bad in (f"driver=nfs,server.host=127.0.0.1,path={p}",
                f"driver=nfs,server.type=inet,path={p}", base,
                f"driver=nfs,server.type=unix,server.host=127.0.0.1,path={p}",
                f"{base},path={p},user=x", f"{base},path=opts.raw",
                f"{base},path={p},readahead-size=4096,cache.direct=on",
                f"{base},path={p},page-cache-size=4,cache.direct=on"):
        k = same("info", "--image-opts", bad)
        assert k.returncode == 1, bad
    # filename= takes a whole URL (fuzz_nfs_uri found a read past a short one's end).
    k = run(KIMG, "info", "--image-opts", "driver=nfs,filename=n")
    assert k.returncode == 1 and "URI scheme must be 'nfs'" in k.stderr
    k = run(KIMG, "info", "--image-opts", f"driver=nfs,filename={server.url(p)},path={p}")
    assert k.returncode == 1 and "Option path cannot be used with a filename" in k.stderr
    assert "file format: nfs" in ok(run(KIMG, "info", "--image-opts",
                                        f"driver=nfs,filename={server.url(p)}"))
    # An option QEMU's nfs has not: refused by name (QEMU's words differ: "unexpected").
    q, k = both("info", "--image-opts", f"{base},path={p},server.port=2049")
    assert q.returncode == k.returncode == 1
    assert "doesn't support the option 'server.port'" in k.stderr


def test_a_server_restart_mid_convert_loses_nothing(server, tmp_path):
    """libnfs reconnects and sends the unanswered requests again (as under qemu-img 7.2,
    which does the same): the convert finishes and the file holds every byte."""
    src = tmp_path / "restart.raw"
    src.write_bytes(os.urandom(32 << 20))
    out = server.export / "restart.raw"
    # -r: 16 MiB/s, so that the server goes away while the convert still writes.
    p = subprocess.Popen([str(KIMG), "convert", "-r", "16M", "-f", "raw", "-O", "raw",
                          str(src), server.url(out)], stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    assert p.poll() is None, "the convert finished before the restart"
    server.restart()
    assert p.wait(60) == 0, p.stderr.read()
    assert out.read_bytes() == src.read_bytes()


def test_uid_gid_debug_syncnt_and_cache_options_take_effect(server):
    # uid/gid: the AUTH_SYS credentials (RFC 5531 §A), so the server creates as them.
    url = server.url_for("owned.raw")
    ok(run(KIMG, "create", "-f", "raw", url + "?uid=1234&gid=4321", "1M"))
    st = (server.export / "owned.raw").stat()
    assert (st.st_uid, st.st_gid) == (1234, 4321)
    # ... and another uid cannot open that file (mode 0600), as with qemu-img.
    k = same("info", url + "?uid=4321")
    assert k.returncode == 1 and "ACCESS denied" in k.stderr
    # The image is named as QEMU's nfs_refresh_filename names it.
    same("info", url + "?uid=1234&gid=4321&debug=0")
    # debug: libnfs's own log, limited to level 2 as in QEMU.
    q, k = both("info", url + "?debug=9")
    assert k.stderr.replace("kestrel-img:", "qemu-img:").startswith(
        "qemu-img: warning: Limiting NFS debug level to 2\nlibnfs:2 ")
    assert "libnfs:" not in run(KIMG, "info", url).stderr
    # readahead / pagecache: clamped with QEMU's warnings.
    for query in ("?readahead=4194304", "?pagecache=9999"):
        q, k = both("info", url + query)
        assert k.returncode == 0 and q.returncode == 0
        assert k.stderr.replace("kestrel-img:", "qemu-img:") == q.stderr
    assert "Truncating" not in run(KIMG, "info", url + "?readahead=65536").stderr
    # tcp-syn-count: the socket's TCP_SYNCNT, as strace sees it.
    if shutil.which("strace"):
        t = run("strace", "-f", "-e", "trace=setsockopt", KIMG, "info", url + "?tcp-syncnt=3")
        assert "TCP_SYNCNT, [3]" in t.stderr, t.stderr


def test_the_vmm_opens_drive_urls_through_the_block_layer(server, kestrel_bin):
    """Without KVM here, the VMM still opens its drives first: the NFS open's own error
    shows that -drive file=nfs://... went through libnfs."""
    k = run(kestrel_bin, "-nographic", *drive(server.url_for("absent.raw")))
    assert k.returncode != 0 and "NFS3ERR_NOENT" in k.stderr, k.stderr
    k = run(kestrel_bin, "-nographic", *drive(server.url_for("k.qcow2") + "?foo=1"))
    assert "Unknown NFS parameter name: foo" in k.stderr
    # -blockdev with QEMU's BlockdevOptionsNfs names, alone and under a format node.
    srv = "server.type=inet,server.host=127.0.0.1"
    dev = ["-device", "virtio-blk-pci,drive=d0"]
    absent = server.export / "absent.qcow2"
    for bd in (f"driver=nfs,node-name=d0,{srv},path={absent}",
               f"driver=qcow2,node-name=d0,file.driver=nfs,file.{srv.replace(',', ',file.')},"
               f"file.path={absent}"):
        k = run(kestrel_bin, "-nographic", "-blockdev", bd, *dev)
        assert k.returncode != 0 and "NFS3ERR_NOENT" in k.stderr, k.stderr
    k = run(kestrel_bin, "-nographic", "-blockdev",
            f"driver=nfs,node-name=d0,{srv},path={absent},readahead-size=4096,cache.direct=on",
            *dev)
    assert "Cannot enable NFS readahead if cache.direct = on" in k.stderr, k.stderr
    k = run(kestrel_bin, "-nographic", "-blockdev", f"driver=nfs,node-name=d0,server.type=inet,"
            f"path={absent}", *dev)
    assert "Parameter 'server.host' is missing" in k.stderr, k.stderr


@pytest.mark.guest
def test_the_guest_writes_and_reads_a_disk_on_nfs(server, probe):
    url = server.blank(64 << 20)
    path = server.export / url.rsplit("/", 1)[1]
    status, out, err = run_probe(*drive(url), "-kernel", probe,
                                 scenario="blk-write,pattern=11,sectors=256,offset=64")
    assert status == 0 and "probe: blk: verified" in probe_lines(out), err
    assert path.read_bytes()[64 * SECTOR:320 * SECTOR] == pattern(11, 64 * SECTOR, 256 * SECTOR)
    status, out, err = run_probe(*drive(url), "-kernel", probe,
                                 scenario="blk-read,pattern=11,sectors=256,offset=64")
    assert status == 0 and "probe: blk: verified" in out, err
    # The same disk as a -blockdev node with QEMU's option names.
    status, out, err = run_probe("-blockdev", f"driver=nfs,node-name=d0,server.type=inet,"
                                 f"server.host=127.0.0.1,path={path}", "-device",
                                 "virtio-blk-pci,drive=d0", "-kernel", probe,
                                 scenario="blk-read,pattern=11,sectors=256,offset=64")
    assert status == 0 and "probe: blk: verified" in out, err


@pytest.mark.guest
@pytest.mark.qemu
def test_the_guest_writes_a_disk_on_nfs_under_qemu(server, probe):
    from conftest import need_qemu, qemu
    need_qemu()
    url = server.blank(64 << 20)
    path = server.export / url.rsplit("/", 1)[1]
    status, out, err = qemu("-M", "pc", "-m", "128m", "-nographic", "-no-reboot", *drive(url),
                            "-kernel", probe, "-append",
                            "probe=blk-write,pattern=12,sectors=256,offset=64")
    assert status == 0 and "probe: blk: verified" in out, out + err
    assert path.read_bytes()[64 * SECTOR:320 * SECTOR] == pattern(12, 64 * SECTOR, 256 * SECTOR)
