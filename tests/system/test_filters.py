"""Block filters (issue #20): blkdebug's injected errors beside qemu-img 7.2's blkdebug on
the same images and rules.  Each case runs both tools in the test's directory with the
same relative names, so their messages must match byte for byte."""
import shutil
import subprocess

import pytest

from test_img_helpers import BLOCK_IO, KIMG, both_tools, ok, qimg

pytestmark = [
    pytest.mark.skipif(not KIMG.exists(), reason=f"{KIMG} is not built"),
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed"),
]


def same(tmp, *args):
    q = subprocess.run(["qemu-img", *args], capture_output=True, text=True, cwd=tmp, timeout=60)
    k = subprocess.run([str(KIMG), *args], capture_output=True, text=True, cwd=tmp, timeout=60)
    assert (k.returncode, k.stdout, k.stderr.replace("kestrel-img:", "qemu-img:")) == \
        (q.returncode, q.stdout, q.stderr), args
    return k


@pytest.fixture
def images(tmp_path):
    ok(qimg("create", "-f", "raw", tmp_path / "src.raw", "1M"))
    ok(qimg("create", "-f", "raw", tmp_path / "dst.raw", "1M"))
    ok(qimg("create", "-f", "qcow2", tmp_path / "src.qcow2", "1M"))
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 7 0 64k", tmp_path / "src.qcow2"],
                   check=True, capture_output=True)
    with open(tmp_path / "src.raw", "r+b") as f:
        f.write(b"\x07" * 65536)
    return tmp_path


def conf(tmp, name, text):
    (tmp / name).write_text(text)
    return name


@pytest.mark.parametrize("errno", [5, 28])
def test_read_error_where_qemu_img_fails(images, errno):
    c = conf(images, "r.conf", f'[inject-error]\nevent = "read_aio"\nerrno = "{errno}"\n')
    k = same(images, "convert", "-f", "raw", "-O", "raw", f"blkdebug:{c}:src.raw", "out.raw")
    assert k.returncode == 1 and "error while reading at byte 0" in k.stderr


def test_write_error_on_target(images):
    c = conf(images, "w.conf", '[inject-error]\nevent = "write_aio"\nerrno = "5"\n')
    k = same(images, "convert", "-n", "-O", "raw", "src.raw", f"blkdebug:{c}:dst.raw")
    assert "error while writing at byte 0: Input/output error" in k.stderr


def test_qcow2_l2_load_fails_block_status(images):
    c = conf(images, "l2.conf", '[inject-error]\nevent = "l2_load"\n')
    k = same(images, "convert", "-f", "qcow2", "-O", "raw", f"blkdebug:{c}:src.qcow2", "o.raw")
    assert "error while reading block status at offset 0" in k.stderr


def test_rule_for_another_state_or_iotype_passes(images):
    """No error where the rule does not apply: the copy is the source's bytes."""
    c = conf(images, "s.conf", '[inject-error]\nevent = "read_aio"\nstate = "2"\n'
             '[inject-error]\nevent = "read_aio"\niotype = "write"\n')
    same(images, "convert", "-f", "raw", "-O", "raw", f"blkdebug:{c}:src.raw", "o.raw")
    assert (images / "o.raw").read_bytes() == (images / "src.raw").read_bytes()


def test_set_state_then_inject(images):
    """set-state moves to state 2 on the first l2_load; the error waits for the second."""
    c = conf(images, "st.conf", '[set-state]\nevent = "l2_load"\nstate = "1"\nnew_state = "2"\n'
             '[inject-error]\nevent = "read_aio"\nstate = "2"\nerrno = "28"\n')
    k = same(images, "convert", "-f", "qcow2", "-O", "raw", f"blkdebug:{c}:src.qcow2", "o.raw")
    assert "No space left on device" in k.stderr


# A sector past 0 inside the first chunk: qemu-img names the chunk's start (byte 0),
# kestrel-img's convert narrows the failed read down (byte 4096 for sector 8), so the
# comparison uses sector 0, where both name byte 0.
def test_json_inline_rules(images):
    name = ('json:{"driver":"raw","file":{"driver":"blkdebug","inject-error":[{"event":"read_aio",'
            '"errno":"28","sector":"0"}],"image":{"driver":"file","filename":"src.raw"}}}')
    k = same(images, "convert", "-O", "raw", name, "o.raw")
    assert "No space left on device" in k.stderr


def test_sector_outside_the_copied_data_passes(images):
    """A rule for a sector in the source's unallocated tail: convert never reads it."""
    name = ('json:{"driver":"raw","file":{"driver":"blkdebug","inject-error":[{"event":"read_aio",'
            '"errno":"28","sector":"1000"}],"image":{"driver":"file","filename":"src.raw"}}}')
    same(images, "convert", "-O", "raw", name, "o.raw")
    assert (images / "o.raw").read_bytes() == (images / "src.raw").read_bytes()


def test_once_lets_a_retry_pass(images):
    """The library (block-io) and qemu-io read twice: only the first read fails."""
    c = conf(images, "o.conf", '[inject-error]\nevent = "read_aio"\nonce = "on"\n')
    (images / "pattern").write_bytes(b"\x07" * 512)
    p = subprocess.run([str(BLOCK_IO), "-e", "-f", "raw", "-d", "pattern", f"blkdebug:{c}:src.raw"],
                       input="r 0 512 0\nr 0 512 0\n", capture_output=True, text=True,
                       cwd=images, timeout=30)
    assert p.returncode == 2 and p.stderr.count("Input/output error") == 1, p.stderr
    q = subprocess.run(["qemu-io", "-f", "raw", "-c", "read 0 512", "-c", "read -P 7 0 512",
                        f"blkdebug:{c}:src.raw"], capture_output=True, text=True, cwd=images)
    assert q.stdout.count("read failed: Input/output error") == 1
    assert q.stdout.count("read 512/512 bytes") == 1
    # Without once=on every later read fails too.
    c = conf(images, "a.conf", '[inject-error]\nevent = "read_aio"\n')
    p = subprocess.run([str(BLOCK_IO), "-e", "-f", "raw", "-d", "pattern", f"blkdebug:{c}:src.raw"],
                       input="r 0 512 0\nr 0 512 0\n", capture_output=True, text=True,
                       cwd=images, timeout=30)
    assert p.returncode == 2 and p.stderr.count("Input/output error") == 2, p.stderr


@pytest.mark.parametrize("text", [
    '[inject-error]\nfoo = "1"\n', '[inject-error]\nevent = read_aio\n', 'event = "read_aio"\n',
    '[bogus]\nevent = "read_aio"\n', '[inject-error]\n', '[inject-error]\nevent = "l2-load"\n',
    '[inject-error]\nevent = "read_aio"\nstate="2"\n', '[inject-error]\nevent = "read_aio"\nerrno = "1k"\n',
    '[inject-error]\nevent = "none"\n', '[set-state]\nevent = "none"\nerrno = "1"\n',
])
def test_config_errors_as_qemu_img(images, text):
    c = conf(images, "x.conf", text)
    same(images, "info", "-f", "raw", f"blkdebug:{c}:src.raw")


@pytest.mark.parametrize("name", ["blkdebug:src.raw", "blkdebug:missing.conf:src.raw",
                                  "blkdebug::missing.raw"])
def test_bad_names_as_qemu_img(images, name):
    same(images, "info", "-f", "raw", name)


def test_create_refused(images):
    q, k = both_tools("create", "-f", "raw", f"blkdebug::{images}/n.raw", "1M")
    assert q.returncode == k.returncode == 1
    assert "does not support image creation" in k.stderr


def test_limit_options_refused_by_name(images):
    name = ('json:{"driver":"raw","file":{"driver":"blkdebug","align":512,'
            '"image":{"driver":"file","filename":"src.raw"}}}')
    p = subprocess.run([str(KIMG), "info", name], capture_output=True, text=True, cwd=images)
    assert p.returncode == 1
    assert "Option 'align' of block protocol 'blkdebug' is not supported by Kestrel" in p.stderr


# quorum: three raw children holding the same 1 MiB.
QSIZE = 1 << 20


@pytest.fixture
def children(tmp_path):
    for i in range(3):
        (tmp_path / f"c{i}.raw").write_bytes(bytes([7]) * QSIZE)
    return tmp_path


def corrupt(path, byte, off=0, n=512):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(bytes([byte]) * n)


def quorum(threshold, extra=""):
    kids = ('{"driver":"raw","file":{"driver":"file","filename":"c0.raw"}},'
            '{"driver":"file","filename":"c1.raw"},"C2"')
    kids = kids.replace('"C2"', '{"driver":"raw","file":{"driver":"file","filename":"c2.raw"}}')
    return f'json:{{"driver":"quorum","children":[{kids}],"vote-threshold":{threshold}{extra}}}'


def test_quorum_majority_wins(children):
    corrupt(children / "c1.raw", 0x58)
    same(children, "convert", "-O", "raw", quorum(2), "out.raw")
    assert (children / "out.raw").read_bytes() == bytes([7]) * QSIZE
    same(children, "compare", quorum(2), "c0.raw")


def test_quorum_two_of_three_corrupted_differently_fails(children):
    corrupt(children / "c1.raw", 0x58)
    corrupt(children / "c2.raw", 0x59)
    k = same(children, "convert", "-O", "raw", quorum(2), "out.raw")
    assert k.returncode == 1
    assert "error while reading at byte 0: Input/output error" in k.stderr


def test_quorum_threshold_one_tie_goes_to_the_last_version(children):
    """Three versions, one vote each: QEMU's vote list makes the last child's data win."""
    corrupt(children / "c1.raw", 0x58)
    corrupt(children / "c2.raw", 0x59)
    same(children, "convert", "-O", "raw", quorum(1), "out.raw")
    assert (children / "out.raw").read_bytes()[:512] == b"\x59" * 512


def test_quorum_fifo_reads_the_first_child(children):
    corrupt(children / "c0.raw", 0x58)
    same(children, "convert", "-O", "raw", quorum(2, ',"read-pattern":"fifo"'), "out.raw")
    assert (children / "out.raw").read_bytes()[:512] == b"\x58" * 512


def test_quorum_rewrite_corrupted_repairs_the_minority(children):
    corrupt(children / "c1.raw", 0x58, off=8192)
    (children / "pattern").write_bytes(bytes([7]) * QSIZE)
    name = quorum(2, ',"rewrite-corrupted":true')
    # Without rewrite-corrupted, reads leave the bad child alone.
    p = subprocess.run([str(BLOCK_IO), "-d", "pattern", quorum(2)], input=f"r 0 {QSIZE} 0\n",
                       capture_output=True, text=True, cwd=children, timeout=30)
    assert p.returncode == 0, p.stderr
    assert (children / "c1.raw").read_bytes() != bytes([7]) * QSIZE
    p = subprocess.run([str(BLOCK_IO), "-d", "pattern", name], input=f"r 0 {QSIZE} 0\n",
                       capture_output=True, text=True, cwd=children, timeout=30)
    assert p.returncode == 0, p.stderr
    assert (children / "c1.raw").read_bytes() == bytes([7]) * QSIZE
    # qemu-io repairs the same way.
    corrupt(children / "c2.raw", 0x58, off=8192)
    subprocess.run(["qemu-io", "-c", f"read -P 7 0 {QSIZE}", name], check=True,
                   capture_output=True, cwd=children)
    assert (children / "c2.raw").read_bytes() == bytes([7]) * QSIZE


def test_quorum_rewrite_refused_read_only(children):
    k = same(children, "convert", "-O", "raw", quorum(2, ',"rewrite-corrupted":true'), "o.raw")
    assert "Block node is read-only" in k.stderr


def test_quorum_writes_reach_every_child(children):
    (children / "src.raw").write_bytes(bytes([9]) * QSIZE)
    opts = ",".join(f"children.{i}.driver=file,children.{i}.filename=c{i}.raw" for i in range(3))
    same(children, "convert", "-n", "--target-image-opts", "src.raw",
         f"driver=quorum,vote-threshold=3,{opts}")
    for i in range(3):
        assert (children / f"c{i}.raw").read_bytes() == bytes([9]) * QSIZE


def test_quorum_blkverify_reports_the_mismatch(children):
    corrupt(children / "c1.raw", 0x58, off=1024)
    kids = ('[{"driver":"file","filename":"c0.raw"},{"driver":"file","filename":"c1.raw"}]')
    name = f'json:{{"driver":"quorum","children":{kids},"vote-threshold":2,"blkverify":true}}'
    q, k = [subprocess.run([tool, "convert", "-O", "raw", name, "o.raw"], capture_output=True,
                           text=True, cwd=children) for tool in ("qemu-img", str(KIMG))]
    assert q.returncode == k.returncode == 1
    for p in (q, k):
        assert "contents mismatch at offset 1024" in p.stderr, p.stderr


@pytest.mark.parametrize("extra", [
    "", ',"vote-threshold":0', ',"vote-threshold":4', ',"vote-threshold":"x"',
    ',"vote-threshold":2,"read-pattern":"x"', ',"vote-threshold":2,"blkverify":true',
    ',"vote-threshold":2,"blkverify":true,"rewrite-corrupted":true', ',"vote-threshold":2,"foo":1',
])
def test_quorum_option_errors_as_qemu_img(children, extra):
    name = quorum(2).replace(',"vote-threshold":2', extra)
    assert same(children, "info", name).returncode == 1


def test_quorum_children_checks_as_qemu_img(children):
    (children / "big.raw").write_bytes(bytes(2 * QSIZE))
    for kids in ("[]", '[{"driver":"file","filename":"c0.raw"},{"driver":"file","filename":"big.raw"}]'):
        same(children, "info", f'json:{{"driver":"quorum","vote-threshold":1,"children":{kids}}}')
    # The same node by --image-opts (the image: and disk size: lines are each tool's own).
    args = ["info", "--image-opts",
            "driver=quorum,vote-threshold=1,children.0.driver=file,children.0.filename=c0.raw"]
    q, k = [subprocess.run([t, *args], capture_output=True, text=True, cwd=children)
            for t in ("qemu-img", str(KIMG))]
    assert q.returncode == k.returncode == 0
    assert k.stdout.splitlines()[1:3] == q.stdout.splitlines()[1:3] == \
        ["file format: quorum", "virtual size: 1 MiB (1048576 bytes)"]


# copy-on-read: a qcow2 overlay over a base holding data at 0 (1 MiB) and 2 MiB (64 KiB).
def cor_images(tmp):
    ok(qimg("create", "-f", "qcow2", tmp / "base.qcow2", "4M"))
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 5 0 1M", "-c", "write -P 6 2M 64k",
                    tmp / "base.qcow2"], check=True, capture_output=True)
    for top in ("top_q.qcow2", "top_k.qcow2", "top_plain.qcow2"):
        ok(qimg("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", tmp / top))


def cor(top):
    return f'json:{{"driver":"copy-on-read","file":{{"driver":"qcow2","file":{{"driver":"file","filename":"{top}"}}}}}}'


def qmap(path):
    return ok(qimg("map", "--output=json", path))


def test_cor_copies_what_it_reads_into_the_top(tmp_path):
    """Reads at 4 KiB (backing data) and 1 MiB (zeroes): the same clusters become the top's
    own in kestrel's image as in qemu-io's, data and zero clusters alike; without the filter
    the same reads leave the top empty."""
    cor_images(tmp_path)
    (tmp_path / "pattern").write_bytes(bytes([5]) * 4096 + bytes(4096))
    reqs = "r 4096 4096 0\nr 1048576 4096 4096\n"
    for name in (cor("top_k.qcow2"), "top_plain.qcow2"):
        p = subprocess.run([str(BLOCK_IO), "-d", "pattern", name], input=reqs,
                           capture_output=True, text=True, cwd=tmp_path, timeout=30)
        assert p.returncode == 0, p.stderr
    subprocess.run(["qemu-io", "-c", "read -P 5 4096 4096", "-c", "read -P 0 1M 4096",
                    cor("top_q.qcow2")], check=True, capture_output=True, cwd=tmp_path)
    got = qmap(tmp_path / "top_k.qcow2")
    assert got == qmap(tmp_path / "top_q.qcow2")
    assert '"start": 0, "length": 65536, "depth": 0' in got
    assert '"start": 1048576, "length": 65536, "depth": 0, "present": true, "zero": true' in got
    assert '"depth": 0' not in qmap(tmp_path / "top_plain.qcow2")
    qemu_check = qimg("check", tmp_path / "top_k.qcow2")
    assert qemu_check[0] == 0, qemu_check


def test_cor_refused_read_only_as_qemu_img(tmp_path):
    cor_images(tmp_path)
    for cmd in (["info"], ["convert", "-O", "raw"], ["compare"]):
        extra = {"convert": ["o.raw"], "compare": ["base.qcow2"]}.get(cmd[0], [])
        k = same(tmp_path, *cmd, cor("top_k.qcow2"), *extra)
        assert "Block node is read-only" in k.stderr


def test_cor_bottom_refused_by_name(tmp_path):
    cor_images(tmp_path)
    name = cor("top_k.qcow2")[:-1] + ',"bottom":"base"}'
    p = subprocess.run([str(BLOCK_IO), name], input="", capture_output=True, text=True,
                       cwd=tmp_path, timeout=30)
    assert p.returncode == 1 and "Option 'bottom'" in p.stderr, p.stderr


KESTREL = BLOCK_IO.parents[1] / "kestrel"


def vmm_start(args, cwd):
    """kestrel as far as it gets: here it stops at /dev/kvm, after parsing and opening the
    disks; on a KVM host it boots and is stopped after a few seconds.  (exit status or None
    when it was still running, stderr)."""
    try:
        p = subprocess.run([str(KESTREL), "-nographic", *args], capture_output=True, text=True,
                           timeout=10, cwd=cwd)
        return p.returncode, p.stderr
    except subprocess.TimeoutExpired as e:
        err = e.stderr or b""
        return None, err.decode(errors="replace") if isinstance(err, bytes) else err


@pytest.mark.skipif(not KESTREL.exists(), reason="kestrel is not built")
def test_drive_copy_on_read_options(tmp_path):
    """-drive copy-on-read=: parsed before /dev/kvm opens, so checkable on any host."""
    cor_images(tmp_path)

    def run(spec):
        return vmm_start(["-drive", spec], tmp_path)
    rc, err = run("file=top_k.qcow2,if=virtio,copy-on-read=maybe")
    assert rc not in (0, None)
    assert "Parameter 'copy-on-read' expects 'on' or 'off'" in err
    rc, err = run("file=top_k.qcow2,if=virtio,readonly=on,copy-on-read=on")
    assert "disabling copy-on-read on read-only drive" in err
    rc, err = run("file=top_k.qcow2,if=virtio,copy-on-read=on")
    assert "copy-on-read" not in err and "Could not open" not in err, err


def test_null_latency_errors(tmp_path):
    k = same(tmp_path, "info", "--image-opts", "driver=null-co,latency-ns=-1")
    assert "latency-ns is invalid" in k.stderr
    # qemu-img 7.2 aborts here ("Unexpected error in parse_option_number()"); kestrel-img says why.
    p = subprocess.run([str(KIMG), "info", "--image-opts", "driver=null-co,latency-ns=x"],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "Parameter 'latency-ns' expects a number" in p.stderr


def test_null_latency_delays_each_request(tmp_path):
    """10 sequential reads of a null-co node with 50 ms latency take at least 0.5 s, in both
    tools; without latency-ns the same run is faster by most of that (whatever the start-up
    costs, e.g. under the sanitizer)."""
    import time

    def timed(tool, latency):
        spec = "driver=null-co,size=1M" + (f",latency-ns={latency}" if latency else "")
        t0 = time.monotonic()
        subprocess.run([tool, "bench", "-c", "10", "-s", "4k", "-d", "1", "--image-opts", spec],
                       check=True, capture_output=True, timeout=60)
        return time.monotonic() - t0
    assert timed("qemu-img", 50000000) >= 0.5
    slow, fast = timed(str(KIMG), 50000000), timed(str(KIMG), 0)
    assert slow >= 0.5 and slow - fast >= 0.4, (slow, fast)


# -drive werror=/rerror= (the VMM).  Option errors come before /dev/kvm opens: they run here.
@pytest.mark.skipif(not KESTREL.exists(), reason="kestrel is not built")
@pytest.mark.parametrize("spec, message", [
    ("werror=bogus", "'bogus' invalid write error action"),
    ("rerror=enospc", "'enospc' invalid read error action"),
    ("if=floppy,werror=stop", "werror is not supported by this bus type"),
    ("if=floppy,rerror=ignore", "rerror is not supported by this bus type"),
    ("if=ide,werror=stop", "werror=stop and rerror=stop are not supported on IDE drives"),
])
def test_drive_error_policy_errors(tmp_path, spec, message):
    (tmp_path / "fd.img").write_bytes(bytes(1474560))
    p = subprocess.run([str(KESTREL), "-nographic", "-drive", f"file=fd.img,format=raw,{spec}"],
                       capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert p.returncode != 0 and message in p.stderr, p.stderr
    # QEMU 7.2 says the same for its own options (it parses before starting the guest).
    if shutil.which("qemu-system-x86_64") and "IDE" not in message:
        q = subprocess.run(["qemu-system-x86_64", "-display", "none", "-drive",
                            f"file=fd.img,format=raw,{spec}"], capture_output=True, text=True,
                           timeout=30, cwd=tmp_path)
        assert q.returncode != 0 and message in q.stderr, q.stderr


@pytest.mark.skipif(not KESTREL.exists(), reason="kestrel is not built")
def test_drive_error_policies_accepted(tmp_path):
    """Valid policies parse; the run then stops only at /dev/kvm (here) or boots."""
    (tmp_path / "d.img").write_bytes(bytes(1 << 20))
    for spec in ("if=virtio,werror=stop,rerror=stop", "if=virtio,werror=enospc,rerror=report",
                 "if=ide,werror=ignore,rerror=ignore", "if=none,id=d0,werror=report"):
        rc, err = vmm_start(["-drive", f"file=d.img,format=raw,{spec}"], tmp_path)
        assert "error action" not in err and "not supported" not in err, err
    rc, err = vmm_start(["-drive", "file=d.img,format=raw,if=none,id=d0,rerror=stop", "-device",
                         "ide-hd,drive=d0"], tmp_path)
    assert rc not in (0, None) and "not supported on IDE drives" in err


def blkdebug_vm(session, probe, tmp_path, rule, policy, scenario, vmm="kestrel"):
    """The probe on a virtio-blk disk behind blkdebug, under kestrel or QEMU 7.2 (the peer)."""
    from conftest import QEMU, need_qemu
    from qmp_client import QMP
    disk = tmp_path / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    (tmp_path / "rule.conf").write_text(rule)
    sock = tmp_path / "qmp.sock"
    if vmm == "qemu":
        need_qemu()
    argv0 = [str(KESTREL)] if vmm == "kestrel" else [*QEMU, "-M", "pc", "-no-reboot"]
    vm = session([*argv0, "-m", "128m", "-nographic", "-qmp", f"unix:{sock},server,nowait",
                  "-drive", f"file=blkdebug:{tmp_path}/rule.conf:{disk},format=raw,if=none,"
                  f"id=d0,{policy}", "-device", "virtio-blk-pci,drive=d0,serial=disk42",
                  "-kernel", probe, "-append", f"probe={scenario}"])
    return vm, QMP(sock), disk


@pytest.mark.guest
@pytest.mark.parametrize("vmm", ["kestrel", "qemu"])
def test_werror_stop_pauses_and_cont_retries_the_write(probe, session, tmp_path, vmm):
    """An injected ENOSPC on the first write: the VM stops in io-error with BLOCK_IO_ERROR on
    QMP; cont retries the write (once=on: it passes now) and the probe verifies its data.
    QEMU 7.2 runs the same scenario (its event also names the node; Kestrel has none)."""
    from test_virtio import pattern
    vm, q, disk = blkdebug_vm(session, probe, tmp_path,
                              '[inject-error]\nevent = "write_aio"\nerrno = "28"\nonce = "on"\n',
                              "werror=stop", "blk-write,pattern=7,sectors=64,offset=0", vmm)
    e = q.event("BLOCK_IO_ERROR", timeout=60)
    e["data"].pop("node-name", None)
    assert e["data"] == {"device": "d0", "operation": "write", "action": "stop",
                         "nospace": True, "reason": "No space left on device"}
    q.event("STOP")
    assert q.cmd("query-status")["return"]["status"] == "io-error"
    assert q.cmd("cont") == {"return": {}}
    q.event("RESUME")
    vm.expect(r"probe: blk: verified")
    q.cmd("quit")
    vm.wait()
    assert open(disk, "rb").read(64 * 512) == pattern(7, 0, 64 * 512)


@pytest.mark.guest
def test_werror_default_reports_eio_to_the_guest(probe, session, tmp_path):
    """werror=enospc (the default) reports errors other than ENOSPC: the guest sees the
    failed write, the VM keeps running, and BLOCK_IO_ERROR says action report."""
    vm, q, _ = blkdebug_vm(session, probe, tmp_path,
                           '[inject-error]\nevent = "write_aio"\nerrno = "5"\n',
                           "werror=enospc", "blk-write,pattern=3,expect=ioerr")
    e = q.event("BLOCK_IO_ERROR", timeout=60)
    assert e["data"]["action"] == "report" and e["data"]["nospace"] is False
    vm.expect(r"probe: blk: write refused \(ioerr\)")
    assert q.cmd("query-status")["return"]["status"] == "running"
    q.cmd("quit")
    vm.wait()


@pytest.mark.skipif(not KESTREL.exists(), reason="kestrel is not built")
def test_vmm_opens_filter_drives(children):
    """-drive file= takes the filter names (the disks open before /dev/kvm): a bad quorum is
    refused with the block layer's message, good ones get as far as the host allows."""
    kids = ",,".join(f'{{"driver":"file",,"filename":"c{i}.raw"}}' for i in range(3))

    def run(name, fmt=""):
        return vmm_start(["-drive", f"file={name},if=virtio{fmt}"], children)
    rc, err = run(f'json:{{"driver":"quorum",,"children":[{kids}],,"vote-threshold":4}}')
    assert rc not in (0, None) and "threshold may not exceed children count" in err
    for name, fmt in ((f'json:{{"driver":"quorum",,"children":[{kids}],,"vote-threshold":2}}', ""),
                      ("blkdebug:r.conf:c0.raw", ",format=raw")):
        (children / "r.conf").write_text('[inject-error]\nevent = "none"\n')
        rc, err = run(name, fmt)
        assert "-drive" not in err, err     # no message about the drive: it opened
    rc, err = run("blkdebug:missing.conf:c0.raw", ",format=raw")
    assert "Could not read blkdebug config file" in err


@pytest.mark.guest
def test_quorum_serves_the_guest_and_repairs_the_corrupted_child(probe, tmp_path):
    """The probe reads its pattern through a quorum whose second child is corrupted: the
    majority's data arrives and rewrite-corrupted puts it back into that child."""
    from conftest import kestrel
    from test_virtio import pattern
    data = pattern(7, 0, 64 * 512)
    for i in range(3):
        with open(tmp_path / f"c{i}.raw", "wb") as f:
            f.write(data)
            f.truncate(16 << 20)
    corrupt(tmp_path / "c1.raw", 0x58, off=4096)
    kids = ",,".join(f'{{"driver":"file",,"filename":"{tmp_path}/c{i}.raw"}}' for i in range(3))
    name = f'json:{{"driver":"quorum",,"children":[{kids}],,"vote-threshold":2,,"rewrite-corrupted":true}}'
    status, out, err = kestrel("-m", "128m", "-nographic", "-drive",
                               f"file={name},if=none,id=d0", "-device",
                               "virtio-blk-pci,drive=d0,serial=disk42", "-kernel", probe,
                               "-append", "probe=blk-read,pattern=7,sectors=64,offset=0",
                               timeout=60)
    assert status == 0 and "probe: blk: verified" in out, err
    assert (tmp_path / "c1.raw").read_bytes()[:64 * 512] == data
