"""Ceph RBD disks (issue #20): images in a one-node Ceph cluster, read and written through
librbd, beside qemu-img 7.2's rbd driver on the same cluster.  The module starts the
cluster itself with Ceph's own tools: one ceph-mon on a free loopback port (msgr v2, a
generated fsid and cephx keyring in the test's directory) and one ceph-osd on memstore,
with a pool "rbd" of size 1.  Both tools reach it by the ceph.conf it writes
(rbd:rbd/IMAGE:conf=PATH, or driver=rbd,...,conf=PATH)."""
import json
import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from test_img_helpers import KIMG, free_port, make_raw, same_as_qemu_img

CEPH_TOOLS = ("ceph-mon", "ceph-osd", "ceph-authtool", "monmaptool", "ceph", "rbd")


def available():
    """(whether kestrel-img has the rbd driver and the cluster's programs are here, why not)."""
    if not KIMG.exists():
        return False, f"{KIMG} is not built"
    # No '/': the parser refuses it before librados looks for any monitor.
    p = subprocess.run([str(KIMG), "info", "rbd:nopool"], capture_output=True, text=True,
                       timeout=30)
    if "Unknown protocol" in p.stderr:
        return False, "kestrel-img built without librbd (librbd-dev, librados-dev)"
    missing = [t for t in CEPH_TOOLS if not shutil.which(t)]
    if missing:
        return False, "Ceph is not installed (ceph-mon ceph-osd ceph-common): no " + \
            " ".join(missing)
    return True, ""


_ok, _why = available()
pytestmark = pytest.mark.skipif(not _ok, reason=_why)


class Server:
    """A one-node Ceph cluster (a mon and a memstore OSD) under d, pool "rbd"."""
    name = "rbd"

    def __init__(self, d):
        self.dir = d
        self.conf = d / "ceph.conf"
        self.procs = []
        self.count = 0
        self.port = free_port()
        fsid = str(uuid.uuid4())
        (d / "run").mkdir(exist_ok=True)
        # memstore keeps the OSD's objects in its memory: quick to make and to throw away.
        self.conf.write_text(
            "[global]\n"
            f"fsid = {fsid}\nmon host = v2:127.0.0.1:{self.port}\nmon initial members = a\n"
            f"keyring = {d}/keyring\nrun dir = {d}/run\nadmin socket = {d}/run/$name.asok\n"
            f"log file = {d}/$name.log\nmon data = {d}/mon\nosd data = {d}/osd\n"
            "public addr = 127.0.0.1\nms bind ipv6 = false\n"
            "auth cluster required = cephx\nauth service required = cephx\n"
            "auth client required = cephx\nauth allow insecure global id reclaim = false\n"
            "osd pool default size = 1\nosd pool default min size = 1\n"
            "mon allow pool size one = true\nmon warn on pool no redundancy = false\n"
            "mon data avail warn = 1\nosd crush chooseleaf type = 0\n"
            "osd objectstore = memstore\nmemstore device bytes = 2147483648\n"
            "client mount timeout = 30\n")
        try:
            self._start(fsid)
        except Exception:
            self.stop()
            raise

    def _run(self, *argv, timeout=60):
        p = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode:
            raise RuntimeError(f"{' '.join(map(str, argv))}: exit {p.returncode}\n"
                               f"{p.stdout}{p.stderr}\n{self.logs()}")
        return p.stdout

    def ceph(self, *args, timeout=60):
        return self._run("ceph", "-c", self.conf, *args, timeout=timeout)

    def rbd(self, *args, timeout=60):
        return self._run("rbd", "-c", self.conf, *args, timeout=timeout)

    def logs(self):
        return "".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in
                       sorted(self.dir.glob("*.log")))

    def _daemon(self, *argv):
        # -f: in the foreground, so that stop() ends exactly what it started.
        self.procs.append(subprocess.Popen([str(a) for a in argv], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))

    def _start(self, fsid):
        d, c = self.dir, self.conf
        self._run("ceph-authtool", "--create-keyring", d / "keyring", "--gen-key", "-n", "mon.",
                  "--cap", "mon", "allow *")
        self._run("ceph-authtool", d / "keyring", "--gen-key", "-n", "client.admin",
                  "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *")
        self._run("monmaptool", "--create", "--addv", "a", f"[v2:127.0.0.1:{self.port}]",
                  "--fsid", fsid, d / "monmap")
        self._run("ceph-mon", "-c", c, "--mkfs", "-i", "a", "--monmap", d / "monmap",
                  "--keyring", d / "keyring")
        self._daemon("ceph-mon", "-f", "-c", c, "-i", "a")
        osd_uuid = str(uuid.uuid4())
        osd = self.ceph("osd", "new", osd_uuid).strip()
        (d / "osd").mkdir()
        self._run("ceph-authtool", "--create-keyring", d / "osd" / "keyring", "--gen-key",
                  "-n", f"osd.{osd}")
        self.ceph("auth", "add", f"osd.{osd}", "osd", "allow *", "mon", "allow profile osd",
                  "-i", d / "osd" / "keyring")
        self._run("ceph-osd", "-c", c, "-i", osd, "--mkfs", "--osd-uuid", osd_uuid,
                  "--keyring", d / "osd" / "keyring")
        self._daemon("ceph-osd", "-f", "-c", c, "-i", osd, "--keyring", d / "osd" / "keyring")
        self.ceph("osd", "pool", "create", "rbd", "1", "1")
        self.ceph("osd", "pool", "application", "enable", "rbd", "rbd")
        # Without a mgr there is no "pg stat": the first write waits until the PGs serve.
        self.rbd("create", "--size", "1M", "rbd/ready", timeout=120)
        self.rbd("rm", "--no-progress", "rbd/ready")
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[0]} exited {p.returncode}\n{self.logs()}")

    def url_for(self, name):
        return f"rbd:rbd/{name}:conf={self.conf}"

    def blank(self, size):
        self.count += 1
        name = f"blank{self.count}"
        self.rbd("create", "--size", f"{size}B", f"rbd/{name}")
        return self.url_for(name)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("ceph"))
    yield s
    s.stop()


def kimg(*args):
    return subprocess.run([str(KIMG), *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def qimg(*args):
    return subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def unique(name):
    return f"{name}-{uuid.uuid4().hex[:8]}"


def same_create(server, *args):
    """create (or convert) to a new image by each tool, each its own name ({} in args):
    the same exit status and output but for the name.  Returns (kestrel's, its name)."""
    k, q = unique("k"), unique("q")
    kp = kimg(*[a.format(server.url_for(k)) if isinstance(a, str) else a for a in args])
    qp = qimg(*[a.format(server.url_for(q)) if isinstance(a, str) else a for a in args])
    assert (kp.returncode, kp.stdout.replace(k, q),
            kp.stderr.replace(k, q).replace("kestrel-img:", "qemu-img:")) == \
        (qp.returncode, qp.stdout, qp.stderr), args
    return kp, k


def test_info_map_and_compare_match_qemu_img(server, tmp_path):
    src = tmp_path / "s.raw"
    make_raw(src, 12 << 20, seed=3)
    url = server.blank(12 << 20)
    ok(kimg("convert", "-n", "-f", "raw", "-O", "raw", src, url))
    same_as_qemu_img("info", "-f", "raw", url)
    same_as_qemu_img("info", "--output=json", url)
    same_as_qemu_img("map", "--output=json", "-f", "raw", url)
    assert "Images are identical." in same_as_qemu_img("compare", "-F", "raw", src, url).stdout
    # Unwritten objects are holes: map says so, as qemu-img does (fast-diff).
    assert '"data": false' in ok(kimg("map", "--output=json", "-f", "raw",
                                      server.blank(64 << 20)))


def test_create_raw_sets_size_and_object_size(server):
    k, name = same_create(server, "create", "-f", "raw", "-o", "cluster_size=65536", "{}",
                          "10M")
    assert k.returncode == 0
    kinfo = json.loads(server.rbd("info", "--format", "json", f"rbd/{name}"))
    assert kinfo["size"] == 10 << 20 and kinfo["order"] == 16
    # Exists already: librbd's answer, in qemu-img's words.
    k = same_as_qemu_img("create", "-f", "raw", server.url_for(name), "10M")
    assert k.returncode == 1 and "File exists" in k.stderr
    for bad in ("cluster_size=1000", "cluster_size=1024", "preallocation=full"):
        k, _ = same_create(server, "create", "-f", "raw", "-o", bad, "{}", "1M")
        assert k.returncode == 1
    same_as_qemu_img("create", "-f", "raw", "-o", "help", server.url_for(name))
    for fmt in ("raw", "qcow2"):
        k = same_as_qemu_img("create", "-f", fmt, f"rbd:nopool/x:conf={server.conf}", "1M")
        assert k.returncode == 1 and "error opening pool nopool" in k.stderr
    # A format over an image that exists already: refused, and the image left as it was.
    k = same_as_qemu_img("create", "-f", "qcow2", server.url_for(name), "1M")
    assert k.returncode == 1 and "File exists" in k.stderr
    assert json.loads(server.rbd("info", "--format", "json", f"rbd/{name}"))["size"] == 10 << 20
    for refused in ("password-secret=s0", "encrypt.format=luks"):
        k = kimg("create", "-f", "raw", "-o", refused, server.url_for(name + "y"), "1M")
        assert k.returncode == 1 and "not supported by Kestrel" in k.stderr


@pytest.mark.parametrize("fmt", ["qcow2", "vmdk"])
def test_formats_created_on_rbd_pass_the_other_tools_check(server, fmt):
    """A format over rbd: kestrel-img's passes qemu-img check and the reverse, and
    both make images of the same size on the cluster."""
    kp, k = same_create(server, "create", "-f", fmt, "{}", "64M")
    assert kp.returncode == 0
    q = k.replace("k-", "q-")
    ok(qimg("create", "-f", fmt, server.url_for(q), "64M"))
    size = lambda n: json.loads(server.rbd("info", "--format", "json", f"rbd/{n}"))["size"]
    assert size(k) == size(q)
    ok(qimg("check", server.url_for(k)))
    ok(kimg("check", server.url_for(q)))
    same_as_qemu_img("check", server.url_for(k))
    if fmt == "vmdk":
        # A descriptor with its extent in a second file: no single rbd image holds that.
        flat = unique("flat")
        k = kimg("create", "-f", "vmdk", "-o", "subformat=monolithicFlat", server.url_for(flat),
                 "1M")
        assert k.returncode == 1 and "more than one file is not supported" in k.stderr
        assert flat not in server.rbd("ls")
    if fmt == "qcow2":
        # (vmdk's extent is named by the rbd node alone in QEMU: not compared.)
        same_as_qemu_img("info", server.url_for(k))


def test_convert_both_ways_and_between_protocols(server, tmp_path):
    src = tmp_path / "s.raw"
    data = make_raw(src, 9 << 20, seed=9)
    target = unique("conv")
    ok(kimg("convert", "-f", "raw", "-O", "qcow2", src, server.url_for(target)))
    ok(qimg("check", server.url_for(target)))
    ok(qimg("compare", "-F", "raw", server.url_for(target), src))
    back = tmp_path / "back.raw"
    ok(kimg("convert", "-O", "raw", server.url_for(target), back))
    assert back.read_bytes() == data
    # qemu-img's image on the cluster, read by Kestrel.
    q = unique("qconv")
    ok(qimg("convert", "-f", "raw", "-O", "qcow2", src, server.url_for(q)))
    ok(kimg("compare", "-F", "raw", server.url_for(q), src))
    # Between protocols: an NBD export (qemu-nbd) into rbd and back.
    if not shutil.which("qemu-nbd"):
        pytest.skip("qemu-nbd is not installed")
    sock = tmp_path / "nbd.sock"
    nbd = subprocess.Popen(["qemu-nbd", "-f", "raw", "-k", str(sock), "-t", str(src)])
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        uri = f"nbd+unix:///?socket={sock}"
        r = unique("fromnbd")
        ok(kimg("convert", "-O", "raw", uri, server.url_for(r)))
        ok(qimg("compare", "-f", "raw", "-F", "raw", server.url_for(r), src))
        ok(kimg("convert", "-n", "-O", "raw", server.url_for(target), uri))
    finally:
        nbd.terminate()
        nbd.wait(10)
    assert src.read_bytes() == data


def test_resize_grows_and_shrinks_as_qemu_img(server):
    url = server.blank(8 << 20)
    ok(kimg("resize", "-f", "raw", url, "24M"))
    assert '"virtual-size": 25165824' in ok(qimg("info", "--output=json", url))
    k = same_as_qemu_img("resize", "-f", "raw", url, "16M")
    assert k.returncode == 1 and "--shrink" in k.stderr
    ok(kimg("resize", "-f", "raw", "--shrink", url, "16M"))
    assert '"virtual-size": 16777216' in ok(qimg("info", "--output=json", url))
    k = same_as_qemu_img("resize", "-f", "raw", "--preallocation=full", url, "32M")
    assert k.returncode == 1 and "Unsupported preallocation mode 'full'" in k.stderr
    # qcow2 over rbd grows its own way, the rbd image with it.
    q = unique("rq")
    ok(kimg("create", "-f", "qcow2", server.url_for(q), "16M"))
    ok(kimg("resize", server.url_for(q), "1G"))
    ok(qimg("check", server.url_for(q)))
    assert '"virtual-size": 1073741824' in ok(qimg("info", "--output=json", server.url_for(q)))


def test_snapshots_open_read_only(server, tmp_path):
    src = tmp_path / "s.raw"
    data = make_raw(src, 4 << 20, seed=4)
    name = unique("snap")
    ok(kimg("convert", "-f", "raw", "-O", "raw", src, server.url_for(name)))
    server.rbd("snap", "create", "--no-progress", f"rbd/{name}@s1")
    # The image changes after the snapshot; the snapshot keeps the old bytes and size.
    other = tmp_path / "o.raw"
    make_raw(other, 4 << 20, seed=5)
    ok(kimg("convert", "-n", "-f", "raw", "-O", "raw", other, server.url_for(name)))
    ok(kimg("resize", "-f", "raw", server.url_for(name), "8M"))
    snap = f"rbd:rbd/{name}@s1:conf={server.conf}"
    same_as_qemu_img("info", "-f", "raw", server.url_for(name))
    same_as_qemu_img("info", "-f", "raw", snap)
    out = tmp_path / "snap.raw"
    ok(kimg("convert", "-f", "raw", "-O", "raw", snap, out))
    assert out.read_bytes() == data
    k = same_as_qemu_img("resize", "-f", "raw", snap, "1G")
    assert k.returncode == 1 and "rbd snapshots are read-only" in k.stderr


def test_rbd_snapshots_through_kestrel_img_snapshot(server, tmp_path):
    """snapshot -c/-l/-a/-d on an rbd image are librbd's snapshots, as in qemu-img."""
    src, other = tmp_path / "s.raw", tmp_path / "o.raw"
    data = make_raw(src, 4 << 20, seed=6)
    make_raw(other, 4 << 20, seed=7)
    name = unique("ksnap")
    url = server.url_for(name)
    ok(kimg("convert", "-f", "raw", "-O", "raw", src, url))
    ok(kimg("snapshot", "-c", "one", url))
    assert "one" in server.rbd("snap", "ls", f"rbd/{name}")
    ok(kimg("convert", "-n", "-f", "raw", "-O", "raw", other, url))
    ok(qimg("snapshot", "-c", "two", url))
    for args in (["-l"], ["-c", "one"], ["-d", "nosuch"]):
        same_as_qemu_img("snapshot", *args, url)
    # (qemu-img reopens the image to apply, and prints the probe's warning twice.)
    k = kimg("snapshot", "-a", "nosuch", url)
    assert k.returncode == 1 and "Could not apply snapshot 'nosuch': Failed to load " \
        "snapshot: No such file or directory" in k.stderr
    ok(kimg("snapshot", "-a", "one", url))
    out = tmp_path / "back.raw"
    ok(qimg("convert", "-f", "raw", "-O", "raw", url, out))
    assert out.read_bytes() == data
    ok(kimg("snapshot", "-d", "one", url))
    ok(kimg("snapshot", "-d", "two", url))
    assert server.rbd("snap", "ls", f"rbd/{name}").strip() == ""


def test_bad_names_and_credentials_fail_as_qemu_img(server, tmp_path):
    c = server.conf
    cases = {
        f"rbd:nopool/x:conf={c}": "error opening pool nopool",
        f"rbd:rbd/noimage:conf={c}": "error reading header from noimage",
        f"rbd:rbd/noimage@s:conf={c}": "error reading header from noimage",
        f"rbd:rbd/ns/x:conf={c}": "namespace 'ns' does not exist",
        f"rbd:rbd/x:conf={tmp_path}/none.conf": "error reading conf file",
        f"rbd:rbd/x:conf={c}:no_such_option=1": "invalid conf option no_such_option",
        f"rbd:rbd/x:conf={c}:rbd_cache": "conf option rbd_cache has no value",
        "rbd:nopoolname": "Pool name is required",
        f"rbd:rbd/x:conf={c}:id=nobody": "error connecting: Permission denied",
        f"rbd:rbd/x:conf={c}:key=AQBnotakeyAAAAAAAAAAAAAAAAAAAAAAAAAAAA==":
            "error connecting: Permission denied",
    }
    for name, msg in cases.items():
        k = same_as_qemu_img("info", name)
        assert k.returncode == 1 and msg in k.stderr, (name, k.stderr)


def test_escapes_and_ceph_options_in_the_name(server):
    # '\:' keeps a colon in a value; a ceph option given in the name reaches librados.
    name = unique("esc")
    ok(kimg("create", "-f", "raw", server.url_for(name), "1M"))
    conf = str(server.conf).replace(":", "\\:")
    url = f"rbd:rbd/{name}:conf={conf}:rbd_cache=false:id=admin"
    same_as_qemu_img("info", "-f", "raw", url)
    k = same_as_qemu_img("info", f"rbd:rbd/{name}:conf={conf}:rbd_cache=notabool")
    assert k.returncode == 1 and "invalid conf option rbd_cache" in k.stderr


def test_blockdev_options_as_libvirt_writes_them(server, tmp_path):
    """driver=rbd with QEMU's option names: the monitor by server.N.host/port and the key
    by a secret (no conf file at all), alone and under a format; unknown ones refused."""
    name, raw = unique("opts"), unique("optsraw")
    ok(kimg("create", "-f", "qcow2", server.url_for(name), "32M"))
    # The node alone is read as raw: a whole number of sectors, which Kestrel does not
    # round up (QEMU does) where a file's length is not one.
    ok(kimg("create", "-f", "raw", server.url_for(raw), "32M"))
    key = ok(subprocess.run(["ceph-authtool", "-p", "-n", "client.admin",
                             str(server.dir / "keyring")], capture_output=True, text=True))
    secret = f"secret,id=sec0,data={key.strip()},format=base64"
    base = (f"pool=rbd,image={name},conf=/dev/null,user=admin,server.0.host=127.0.0.1,"
            f"server.0.port={server.port},key-secret=sec0")
    for opts in (f"driver=rbd,{base}".replace(name, raw),
                 "driver=qcow2," + ",".join("file." + o for o in f"driver=rbd,{base}".split(","))):
        k = same_as_qemu_img("info", "--object", secret, "--image-opts", opts)
        assert k.returncode == 0
    k = same_as_qemu_img("info", "--image-opts",
                         f"driver=rbd,pool=rbd,image={raw},conf={server.conf},"
                         "auth-client-required.0=cephx")
    assert k.returncode == 0
    # A secret nobody defined.  (A wrong key with conf=/dev/null is no test here: librados
    # retries it until client_mount_timeout, 300 s by default, in both tools alike.)
    k = same_as_qemu_img("info", "--image-opts", f"driver=rbd,{base}".replace("sec0", "none"))
    assert k.returncode == 1 and "No secret with id 'none'" in k.stderr
    k = kimg("info", "--image-opts", f"driver=rbd,pool=rbd,image={name},conf={server.conf},"
             "encrypt.format=luks")
    assert k.returncode == 1 and "'encrypt' of block protocol 'rbd' is not supported" in k.stderr
    k = kimg("info", "--image-opts", f"driver=rbd,pool=rbd,image={name},conf={server.conf},"
             "bogus=1")
    assert k.returncode == 1 and "bogus" in k.stderr
    j = json.dumps({"driver": "rbd", "pool": "rbd", "image": raw, "conf": str(server.conf)})
    same_as_qemu_img("info", "json:" + j)


def test_the_vmm_opens_rbd_drives_through_the_block_layer(server, probe):
    """-drive file=rbd:... and -blockdev driver=rbd (alone, or as file.driver under a
    format) reach the cluster as the VMM starts, before any vCPU: the cluster's own
    answers prove it, so this runs on hosts without KVM too."""
    from conftest import kestrel
    c = server.conf
    for args in (["-drive", f"file=rbd:rbd/none:conf={c},format=raw,if=none,id=n0"],
                 ["-blockdev", f"driver=rbd,pool=rbd,image=none,conf={c},node-name=n0"],
                 ["-blockdev", f"driver=qcow2,file.driver=rbd,file.pool=rbd,file.image=none,"
                               f"file.conf={c},node-name=n0"]):
        status, out, err = kestrel("-m", "64m", "-nographic", *args, "-device",
                                   "virtio-blk-pci,drive=n0", "-kernel", probe, timeout=60)
        assert status != 0 and "error reading header from none" in err, err
    status, out, err = kestrel("-m", "64m", "-nographic", "-blockdev",
                               f"driver=rbd,pool=rbd,image=x,conf={c},key-secret=s9,node-name=n0",
                               "-device", "virtio-blk-pci,drive=n0", "-kernel", probe)
    assert status != 0 and "No secret with id 's9'" in err, err


def test_help_lists_rbd_and_a_bad_name_fails_before_connecting():
    """"Supported formats:" names rbd as qemu-img's does; a name without a pool is
    refused by the parser, with qemu-img's message."""
    line = [l for l in ok(kimg("--help")).splitlines() if l.startswith("Supported formats:")]
    assert "rbd" in line[0].split()
    k = same_as_qemu_img("info", "rbd:nopool")
    assert k.returncode == 1 and "Pool name is required" in k.stderr


def test_server_interface(server, tmp_path):
    """What the bench and other tests use: blank() is zeroes of that size; url_for() creates."""
    url = server.blank(3 << 20)
    out = tmp_path / "b.raw"
    ok(kimg("convert", "-f", "raw", "-O", "raw", url, out))
    assert out.read_bytes() == bytes(3 << 20)
    ok(kimg("create", "-f", "raw", server.url_for(unique("iface")), "1M"))


@pytest.mark.guest
@pytest.mark.parametrize("vmm", ["kestrel", "qemu"])
def test_the_guest_writes_and_reads_a_disk_on_rbd(probe, server, vmm, tmp_path):
    from conftest import kestrel, need_qemu, probe_lines, qemu
    from test_virtio import SECTOR, drive, pattern
    if vmm == "qemu":
        need_qemu()
    run = kestrel if vmm == "kestrel" else qemu
    url = server.blank(64 << 20)
    for scenario in ("blk-write,pattern=9,sectors=256,offset=64",
                     "blk-read,pattern=9,sectors=256,offset=64"):
        status, out, err = run("-m", "128m", "-nographic", *drive(url), "-kernel", probe,
                               "-append", f"probe={scenario}", timeout=60)
        assert status == 0 and "probe: blk: verified" in probe_lines(out), err
    out = tmp_path / f"{vmm}.raw"
    ok(qimg("convert", "-f", "raw", "-O", "raw", url, out))
    assert out.read_bytes()[64 * SECTOR:320 * SECTOR] == pattern(9, 64 * SECTOR, 256 * SECTOR)


def test_librbd_is_loaded_only_when_an_rbd_node_opens():
    # Linked in, librados/librbd's C++ start-up ran in every kestrel-img process (0.1 s,
    # 1.4 s under ASan); rbd.c dlopens them instead, as QEMU loads block-rbd on demand.
    out = subprocess.run(["ldd", str(KIMG)], capture_output=True, text=True, check=True).stdout
    assert "librbd" not in out and "librados" not in out
