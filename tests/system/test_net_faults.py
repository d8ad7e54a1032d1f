"""Link cuts (issue #20, "Faults"): an NBD server and an iSCSI target run inside a network
namespace the test makes (loopback only, nothing leaves it); kestrel-img, and qemu-img 7.2
beside it, copy onto them from inside it while nft drop rules cut the link and are taken
away again.  Kinds of cut:

- a short one: TCP's retransmissions ride it out, the copy finishes intact;
- one the server gives the connection up in (its socket is destroyed while packets are
  dropped, as a server whose TCP timed out): with reconnect-delay the client connects
  again and finishes, every acknowledged write intact; without it, a clear error;
- one where the connection is lost and new connections go unanswered (SYNs dropped):
  no attempt may outlast reconnect-delay or open-timeout (connect() alone would wait for
  the kernel's SYN retries, about two minutes)."""
import os
import re
import shutil
import subprocess
import time

import pytest

from netns import Netns
from test_img_helpers import KIMG, SANITIZER_REPORT

PORT = 10809
MiB = 1 << 20


def available():
    if os.geteuid() != 0:
        return False, "network namespaces and nft rules need root"
    if not shutil.which("nft"):
        return False, "nft is not installed (package nftables, scripts/install-deps.sh)"
    if not shutil.which("ss"):
        return False, "ss is not installed (package iproute2)"
    if not shutil.which("qemu-nbd"):
        return False, "qemu-nbd is not installed"
    if not KIMG.exists():
        return False, f"{KIMG} is not built"
    p = subprocess.run([str(KIMG), "info", "nbd://127.0.0.1:1/x"], capture_output=True,
                       text=True)
    if "Unknown protocol" in p.stderr:
        return False, "kestrel-img built without libnbd"
    return True, ""


_ok, _why = available()
pytestmark = pytest.mark.skipif(not _ok, reason=_why)


class Link:
    """The namespace's loopback as the path to a server on PORT, cut and restored by nft."""

    def __init__(self, ns, port=PORT):
        self.ns, self.port = ns, port
        ns.run("nft", "add", "table", "inet", "cut")
        ns.run("nft", "add", "chain", "inet", "cut", "in",
               "{ type filter hook input priority 0; policy accept; }")

    def drop(self):
        """Every packet to or from the server is dropped."""
        self.ns.run("nft", "add", "rule", "inet", "cut", "in", "tcp", "dport", self.port,
                    "drop")
        self.ns.run("nft", "add", "rule", "inet", "cut", "in", "tcp", "sport", self.port,
                    "drop")

    def drop_new(self):
        """Only new connections (SYN without ACK) go unanswered."""
        self.ns.run("nft", "add", "rule", "inet", "cut", "in", "tcp", "dport", self.port,
                    "tcp", "flags", "&", "(syn|ack)", "==", "syn", "drop")

    def restore_but_drop_new(self):
        """restore() and drop_new() in one nft transaction: no window in which a new
        connection could get through between the two."""
        script = (f"flush chain inet cut in\n"
                  f"add rule inet cut in tcp dport {self.port} tcp flags & (syn|ack) == syn "
                  f"drop\n")
        subprocess.run(self.ns.argv("nft", "-f", "-"), input=script, text=True, check=True,
                       capture_output=True, timeout=30)

    def restore(self):
        self.ns.run("nft", "flush", "chain", "inet", "cut", "in")

    def server_gives_up(self):
        """The server's end of each connection destroyed (its RST is dropped by the cut)."""
        self.ns.run("ss", "-K", "-tn", "state", "established", f"( sport = :{self.port} )")
        left = self.ns.run("ss", "-Htn", "state", "established",
                           f"( sport = :{self.port} )").stdout
        if left.strip():
            pytest.skip("ss -K cannot destroy sockets here (kernel without "
                        "CONFIG_INET_DIAG_DESTROY): " + left)


@pytest.fixture
def ns():
    n = Netns()
    yield n
    n.close()


def wait_port(ns, port, proc):
    end = time.monotonic() + 10
    while f":{port} " not in ns.run("ss", "-Hltn").stdout:
        assert proc.poll() is None and time.monotonic() < end, "the server did not listen"
        time.sleep(0.02)


@pytest.fixture
def nbd(ns, tmp_path):
    """qemu-nbd in the namespace, writable, on a sparse 8 MiB file: (link, target file)."""
    target = tmp_path / "target.raw"
    with open(target, "wb") as f:
        f.truncate(8 * MiB)
    p = subprocess.Popen(ns.argv("qemu-nbd", "-t", "-f", "raw", "-b", "127.0.0.1", "-p",
                                 PORT, target), stderr=subprocess.DEVNULL)
    wait_port(ns, PORT, p)
    yield Link(ns), target
    p.kill()
    p.wait()


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "src.raw"
    path.write_bytes(os.urandom(8 * MiB))
    return path


def nbd_opts(pfx="", **kw):
    return ",".join([f"{pfx}driver=nbd,{pfx}server.type=inet,{pfx}server.host=127.0.0.1,"
                     f"{pfx}server.port={PORT}"] +
                    [f"{pfx}{k.replace('_', '-')}={v}" for k, v in kw.items()])


def start_convert(ns, tool, src, **kw):
    """tool converts src onto the export at 4 MiB/s (about two seconds), from the namespace."""
    argv = ns.argv(tool, "convert", "-n", "-r", "4M", "-f", "raw", src,
                   "--target-image-opts", "driver=raw," + nbd_opts("file.", **kw))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def wait_for_writes(path, proc):
    """Until the server has written into the file: the copy is under way."""
    end = time.monotonic() + 20
    while os.stat(path).st_blocks == 0:
        assert proc.poll() is None and time.monotonic() < end, "the copy never wrote"
        time.sleep(0.005)


def intact_before_the_error(err, src, target):
    """The bytes before the write that failed are the source's (each was acknowledged)."""
    m = re.search(r"error while writing at byte (\d+)", err)
    assert m, err
    n = int(m.group(1))
    assert n > 0 and target.read_bytes()[:n] == src.read_bytes()[:n]


def finish(p, timeout=40):
    t = time.monotonic()
    out, err = p.communicate(timeout=timeout)
    assert not SANITIZER_REPORT.search(err), err
    return p.returncode, err, time.monotonic() - t


def identical(a, b):
    r = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", a, b],
                       capture_output=True, text=True, timeout=30)
    return r.returncode == 0 and r.stdout == "Images are identical.\n"


def cut_mid_copy(link, p, target, server_gives_up=False, hold=1.0):
    """Once the copy P is writing to TARGET: cut the link (and let the server drop its
    connections), hold the cut for HOLD seconds with the copy still running, restore the
    link and wait for the copy: finish()'s (rc, err, waited)."""
    wait_for_writes(target, p)
    link.drop()
    if server_gives_up:
        link.server_gives_up()
    time.sleep(hold)
    assert p.poll() is None, "the copy ended during the cut"
    link.restore()
    return finish(p)


def cut_into_a_dead_link(link, p, target):
    """The connections are lost and new ones go unanswered: finish()'s result."""
    wait_for_writes(target, p)
    link.drop()
    link.server_gives_up()
    link.restore_but_drop_new()
    assert p.poll() is None, "the copy ended before the cut"
    return finish(p)


def ridden_out(result, src, target):
    rc, err, _ = result
    assert rc == 0, err
    assert identical(src, target)


TOOLS = [pytest.param(str(KIMG), id="kestrel-img"), pytest.param("qemu-img", id="qemu-img")]


@pytest.mark.parametrize("tool", TOOLS)
def test_a_short_cut_is_ridden_out(ns, nbd, src, tool):
    """Packets dropped for a second: TCP retransmits, nothing needs to reconnect
    (no reconnect-delay), the copy finishes with every byte."""
    link, target = nbd
    ridden_out(cut_mid_copy(link, start_convert(ns, tool, src), target), src, target)


@pytest.mark.parametrize("tool", TOOLS)
def test_a_connection_lost_in_a_cut_is_made_again_within_reconnect_delay(ns, nbd, src, tool):
    """The server drops the connection while the link is down; once it is back the next
    request meets a reset, the client connects again, sends the lost requests again and
    finishes: the export equals the source."""
    link, target = nbd
    p = start_convert(ns, tool, src, reconnect_delay=10)
    ridden_out(cut_mid_copy(link, p, target, server_gives_up=True), src, target)


@pytest.mark.parametrize("tool", TOOLS)
def test_without_reconnect_delay_a_connection_lost_in_a_cut_fails_clearly(ns, nbd, src, tool):
    link, target = nbd
    p = start_convert(ns, tool, src)
    rc, err, waited = cut_mid_copy(link, p, target, server_gives_up=True, hold=0.5)
    assert rc == 1 and "error while writing" in err, err
    assert waited < 10
    intact_before_the_error(err, src, target)
    if tool == str(KIMG):
        assert "Connection reset by peer" in err, err


@pytest.mark.parametrize("tool", TOOLS)
def test_reconnection_into_a_dead_link_gives_up_at_reconnect_delay(ns, nbd, src, tool):
    """The connection is lost and new ones go unanswered: each attempt is cut short when
    reconnect-delay (2 s) runs out, then the write fails.  Before Kestrel bounded its
    attempts, connect() waited for the kernel's SYN retries (about two minutes)."""
    link, target = nbd
    p = start_convert(ns, tool, src, reconnect_delay=2)
    rc, err, waited = cut_into_a_dead_link(link, p, target)
    assert rc == 1 and "error while writing" in err, err
    assert 1.5 < waited < 10, waited
    intact_before_the_error(err, src, target)


def test_open_timeout_bounds_a_connect_into_a_dead_link(ns, nbd):
    """As qemu-img 7.2: open-timeout=1 ends the first connection's wait after a second
    with QEMU's message (kestrel-img waited about two minutes before)."""
    link, _ = nbd
    link.drop_new()
    for tool in ("qemu-img", str(KIMG)):
        t = time.monotonic()
        r = ns.run(tool, "info", "--image-opts", nbd_opts(open_timeout=1), check=False,
                   timeout=60)
        waited = time.monotonic() - t
        assert r.returncode == 1, r.stderr
        assert "Connection attempt cancelled by timeout" in r.stderr, r.stderr
        assert 0.8 < waited < 5, (tool, waited)
    link.restore()
    r = ns.run(str(KIMG), "info", "--image-opts", nbd_opts(open_timeout=2), check=False)
    assert r.returncode == 0 and "virtual size: 8 MiB" in r.stdout, r.stderr


# iSCSI: tgtd in the namespace (its control socket is a file, reached from outside it).
ISCSI_PORT = 3260


def iscsi_available():
    from test_iscsi import available as iscsi_ok
    return iscsi_ok()


@pytest.fixture
def lun(ns, tmp_path):
    """A tgtd target in the namespace with one 8 MiB LUN: (link, its file, its URL)."""
    from test_iscsi import Server, TGTD
    ok, why = iscsi_available()
    if not ok:
        pytest.skip(why)

    class NsServer(Server):
        def start(self):
            self.port = ISCSI_PORT
            self.log = open(self.dir / "tgtd.log", "ab")
            self.proc = subprocess.Popen(ns.argv(TGTD, "-f", "--iscsi",
                                                 f"portal=127.0.0.1:{self.port}", "-C",
                                                 self.ctl), stdout=self.log, stderr=self.log)
            wait_port(ns, self.port, self.proc)

        def stop(self):
            # The LUN files are written: no need for tgtd's slow orderly shutdown.
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self.proc:
                self.log.close()
            self.proc = None

    s = NsServer(tmp_path)
    try:
        url = s.blank(8 * MiB)
        yield Link(ns, ISCSI_PORT), s.files[url], url
    finally:
        s.stop()


def start_iscsi_convert(ns, tool, src, url, timeout=None):
    opts = ["--target-image-opts", "driver=raw,file." + image_opts(url, timeout)] \
        if timeout else ["-O", "raw", url]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    return subprocess.Popen(ns.argv(tool, "convert", "-n", "-r", "4M", "-f", "raw", src,
                                    *opts), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def image_opts(url, timeout):
    portal, iqn, lun = url[len("iscsi://"):].split("/")
    return (f"driver=iscsi,file.transport=tcp,file.portal={portal},file.target={iqn},"
            f"file.lun={lun},file.timeout={timeout}")


@pytest.mark.parametrize("tool", TOOLS)
def test_an_iscsi_session_rides_out_a_short_cut(ns, lun, src, tool):
    link, target, url = lun
    ridden_out(cut_mid_copy(link, start_iscsi_convert(ns, tool, src, url), target), src, target)


@pytest.mark.parametrize("tool", TOOLS)
def test_an_iscsi_session_lost_in_a_cut_is_logged_into_again(ns, lun, src, tool):
    """libiscsi logs in again (RFC 7143 6.2) once the link is back, the commands the target
    lost are sent again, and the LUN equals the source."""
    link, target, url = lun
    p = start_iscsi_convert(ns, tool, src, url)
    ridden_out(cut_mid_copy(link, p, target, server_gives_up=True), src, target)


def test_an_iscsi_session_that_cannot_come_back_fails_at_timeout(ns, lun, src):
    """The session is lost and new logins go unanswered: with timeout=2 the write fails
    after about that long, with the bytes before it intact."""
    link, target, url = lun
    p = start_iscsi_convert(ns, str(KIMG), src, url, timeout=2)
    rc, err, waited = cut_into_a_dead_link(link, p, target)
    assert rc == 1 and "error while writing" in err, err
    assert waited < 12, waited
    intact_before_the_error(err, src, target)
