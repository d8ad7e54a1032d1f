"""Naming images as qemu-img 7.2 allows, beside qemu-img: --image-opts on every command,
json:{...} pseudo-filenames (also as stored backing names), protocol names (null-co://
and nbd implemented, nbd in test_nbd.py, iscsi:// in test_iscsi.py; the rest refused by name), --object secret and its
refusals.  Output and exit codes are compared with qemu-img's, messages with the
program name swapped; where Kestrel refuses what qemu-img has, the test says so."""
import json
import shutil
import subprocess

import pytest

from test_img_helpers import Holder, kimg, needs_build, needs_qemu_img, ok, qimg

pytestmark = [needs_build, needs_qemu_img]

FORMATS = ["raw", "qcow2"]


def same(kres, qres, check_out=True):
    """kestrel-img's result equals qemu-img's: exit code, stdout, stderr (renamed)."""
    krc, kout, kerr = kres
    qrc, qout, qerr = qres
    assert krc == qrc, f"exit {krc} != {qrc}\nkestrel: {kerr}\nqemu: {qerr}"
    if check_out:
        assert kout == qout, f"kestrel:\n{kout}\nqemu:\n{qout}"
    assert kerr == qerr.replace("qemu-img:", "kestrel-img:"), f"kestrel: {kerr}\nqemu: {qerr}"


def both(tmp_path, *args):
    """Runs one command line under both programs, in tmp_path."""
    return kimg(*args, cwd=tmp_path), qimg(*args, cwd=tmp_path)


@pytest.fixture
def images(tmp_path):
    """d.raw and d.qcow2 with the same data, and o.qcow2 over d.qcow2."""
    ok(qimg("create", "-q", "-f", "qcow2", tmp_path / "d.qcow2", "4M"))
    for off, pat in ((0, 0x11), (1 << 20, 0x22), (3 << 20, 0x33)):
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P {pat} {off} 64k",
                        str(tmp_path / "d.qcow2")], check=True, capture_output=True)
    ok(qimg("convert", "-O", "raw", tmp_path / "d.qcow2", tmp_path / "d.raw"))
    ok(qimg("create", "-q", "-f", "qcow2", "-b", "d.qcow2", "-F", "qcow2",
            tmp_path / "o.qcow2"))
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x44 2M 64k",
                    str(tmp_path / "o.qcow2")], check=True, capture_output=True)
    return tmp_path


def opts(fmt, name, extra=""):
    return f"driver={fmt},file.filename={name}" + (f",{extra}" if extra else "")


# Read-only commands: stdout must match qemu-img's byte for byte.
READERS = [
    ("info-head", ["info", "--image-opts", "{o}"]),
    ("map", ["map", "--image-opts", "{o}"]),
    ("map-json", ["map", "--output=json", "--image-opts", "{o}"]),
    ("check", ["check", "--image-opts", "{o}"]),
    ("compare", ["compare", "--image-opts", "{o}", "driver=raw,file.filename=d.raw"]),
    ("measure", ["measure", "-O", "qcow2", "--image-opts", "{o}"]),
    ("snapshot-l", ["snapshot", "-l", "--image-opts", "{o}"]),
    ("object-secret", ["info", "--object", "secret,id=s0,data=x", "--image-opts", "{o}"]),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name,cmd", READERS, ids=[r[0] for r in READERS])
def test_image_opts_readers_match_qemu(images, fmt, name, cmd):
    argv = [a.replace("{o}", opts(fmt, f"d.{fmt}")) for a in cmd]
    k, q = both(images, *argv)
    if name == "info-head":
        # The first lines name the image and its format; disk size etc. are info's own.
        k = (k[0], "".join(k[1].splitlines(True)[:3]), k[2])
        q = (q[0], "".join(q[1].splitlines(True)[:3]), q[2])
    same(k, q)


@pytest.mark.parametrize("fmt", FORMATS)
def test_image_opts_probe_and_json_info(images, fmt):
    for argv in (["info", "--output=json", "--image-opts", f"file.filename=d.{fmt}"],
                 ["info", "--output=json",
                  f'json:{{"driver":"{fmt}","file":{{"driver":"file","filename":"d.{fmt}"}}}}'],
                 ["info", "--output=json", f"json:{{'file.filename':'d.{fmt}'}}"]):
        (krc, kout, kerr), (qrc, qout, qerr) = both(images, *argv)
        assert krc == qrc == 0, (argv, kerr, qerr)
        kj, qj = json.loads(kout), json.loads(qout)
        for key in ("filename", "format", "virtual-size"):
            assert kj[key] == qj[key], (argv, key, kj[key], qj[key])


@pytest.mark.parametrize("fmt", FORMATS)
def test_image_opts_convert_and_dd_copy_the_same_data(images, fmt):
    src = opts(fmt, f"d.{fmt}")
    for prog, tag in ((kimg, "k"), (qimg, "q")):
        ok(prog("convert", "--image-opts", src, "-O", "raw", f"c.{tag}", cwd=images))
        ok(prog("dd", "--image-opts", f"if={src}", f"of=dd.{tag}", "bs=64k", "count=20",
                cwd=images))
        ok(prog("create", "-q", "-f", "raw", f"n.{tag}", "4M", cwd=images))
        ok(prog("convert", "-n", "--target-image-opts", f"d.{fmt}",
                f"driver=raw,file.filename=n.{tag}", cwd=images))
        ok(prog("convert", "-O", "raw", f'json:{{"driver":"{fmt}","file.filename":"d.{fmt}"}}',
                f"j.{tag}", cwd=images))
    data = (images / "d.raw").read_bytes()
    for name in ("c", "n", "j"):
        assert (images / f"{name}.k").read_bytes() == (images / f"{name}.q").read_bytes() == data
    assert (images / "dd.k").read_bytes() == (images / "dd.q").read_bytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_image_opts_writers_match_qemu(images, fmt):
    """resize, and for qcow2 amend, snapshot, rebase -u and commit, through --image-opts."""
    kdir, qdir = images / "k", images / "q"
    for d in (kdir, qdir):
        d.mkdir()
        for f in ("d.raw", "d.qcow2", "o.qcow2"):
            shutil.copy(images / f, d / f)
    cmds = [["resize", "--image-opts", opts(fmt, f"d.{fmt}"), "8M"]]
    if fmt == "qcow2":
        cmds += [["amend", "--image-opts", opts(fmt, "d.qcow2"), "-o", "lazy_refcounts=on"],
                 ["snapshot", "-c", "s1", "--image-opts", opts(fmt, "d.qcow2")],
                 ["commit", "--image-opts", opts(fmt, "o.qcow2")],
                 ["rebase", "-u", "-b", "", "--image-opts", opts(fmt, "o.qcow2")]]
    for cmd in cmds:
        k, q = kimg(*cmd, cwd=kdir), qimg(*cmd, cwd=qdir)
        same(k, q)
    for f in ("d." + fmt, "o.qcow2"):
        kinfo = json.loads(ok(qimg("info", "--output=json", kdir / f)))
        qinfo = json.loads(ok(qimg("info", "--output=json", qdir / f)))
        for key in ("virtual-size", "backing-filename"):
            assert kinfo.get(key) == qinfo.get(key), (f, key)
        ok(qimg("convert", "-O", "raw", kdir / f, kdir / "x.raw"))
        ok(qimg("convert", "-O", "raw", qdir / f, qdir / "x.raw"))
        assert (kdir / "x.raw").read_bytes() == (qdir / "x.raw").read_bytes(), f


# Errors that qemu-img words the same way: the text after the program name must match.
ERRORS = [
    ["info", "--image-opts", "-f", "qcow2", opts("qcow2", "d.qcow2")],
    ["info", "--image-opts", "-U", opts("qcow2", "d.qcow2", "force-share=off")],
    ["info", "--image-opts", "d.qcow2"],
    ["info", "--image-opts", "filename=d.qcow2"],
    ["info", "--image-opts", "driver=qcow2,filename=d.qcow2"],
    ["info", "--image-opts", opts("qcow2", "d.qcow2", "foo=1")],
    ["info", "--image-opts", opts("qcow2", "d.qcow2", "file.foo=1")],
    ["info", "--image-opts", opts("qcow2", "nonexistent")],
    ["info", "--image-opts", "driver=foo,file.filename=d.qcow2"],
    ["info", "--image-opts", opts("qcow2", "d.qcow2", "read-only=x")],
    ["info", "--image-opts", opts("qcow2", "d.qcow2", "file.locking=maybe")],
    ["info", "--image-opts", opts("qcow2", "d.qcow2", "backing=")],
    ["resize", "--image-opts", opts("raw", "d.raw", "read-only=on"), "8M"],
    ["convert", "--target-image-opts", "d.raw", "driver=raw,file.filename=x.raw"],
    ["convert", "-n", "--target-image-opts", "-O", "raw", "d.raw", "driver=raw,file.filename=d.raw"],
    ["compare", "--image-opts", "-f", "raw", "d.raw", "d.raw"],
    ["dd", "--image-opts", "-f", "raw", "if=driver=raw,file.filename=d.raw", "of=x.raw"],
    ["info", "json:{"],
    ["info", "json:[1]"],
    ["info", "json:"],
    ["info", "json:{}"],
    ["info", 'json:{"driver":"qcow2","file":{"filename":"d.qcow2"},"driver":"raw"}'],
    ["info", 'json:{"driver":"qcow2","file":{"filename":"d.qcow2"}} x'],
    ["info", 'json:{"a":01}'],
    ["info", 'json:{"a":"\\u12"}'],
    ["info", 'json:{"driver":"qcow2","file":"d.qcow2"}'],
    ["info", 'json:{"driver":"qcow2","file":{"filename":"d.qcow2"},"foo":1}'],
    ["info", "null-co://x"],
    ["info", "-f", "qcow2", "null-co://"],
    ["info", "foo:bar"],
    ["create", "-f", "raw", "foo:bar", "1M"],
    ["convert", "-O", "raw", "d.raw", "null-co://"],
    ["info", "--object", "foo,id=x", "d.raw"],
    ["info", "--object", "secret", "d.raw"],
    ["info", "--object", "secret,id=s0", "d.raw"],
    ["info", "--object", "secret,id=s0,data=x,file=pw", "d.raw"],
    ["info", "--object", "secret,id=s0,data=x,format=hex", "d.raw"],
    ["info", "--object", "secret,id=s0,data=x,foo=1", "d.raw"],
    ["info", "--object", "secret,id=s0,file=nonexistent", "d.raw"],
    ["info", "--object", "secret,id=0bad,data=x", "d.raw"],
    ["info", "--object", "secret,id=s0,data=x", "--object", "secret,id=s0,data=y", "d.raw"],
    ["info", "--object", "id=s0", "d.raw"],
]


@pytest.mark.parametrize("cmd", ERRORS, ids=lambda c: " ".join(c))
def test_errors_match_qemu(images, cmd):
    (images / "pw").write_text("secret")
    same(*both(images, *cmd))


# Protocols Kestrel has no driver for yet: refused before any connection, with the
# message of a qemu-img 7.2 built without that driver (Debian's, without qemu-block-extra).
@pytest.mark.parametrize("name", ["vvfat:/tmp"])
def test_unknown_protocols_as_qemu_without_the_driver(images, name):
    krc, kout, kerr = kimg("info", name, cwd=images)
    proto = name.split(":")[0]
    assert krc == 1 and kout == ""
    assert kerr == f"kestrel-img: Could not open '{name}': Unknown protocol '{proto}'\n"


@pytest.mark.parametrize("name", ["blkdebug::d.raw"])
def test_filter_protocol_names_as_qemu(images, name):
    """blkdebug (filter.h) with no rules: the image as qemu-img shows it (test_filters.py has
    the rules)."""
    for fmt in ("human", "json"):
        k = kimg("info", f"--output={fmt}", name, cwd=images)
        q = qimg("info", f"--output={fmt}", name, cwd=images)
        assert k[0] == q[0] == 0 and k[1] == q[1], (k, q)


def test_null_co_as_qemu(images):
    for argv in (["info", "null-co://"], ["info", "--output=json", "null-co://"],
                 ["map", "--output=json", "--image-opts", "driver=null-co,size=1M"],
                 ["map", "--output=json", "--image-opts", "driver=null-co,size=1M,read-zeroes=on"],
                 ["map", "--output=json", "json:{\"driver\":\"null-co\",\"read-zeroes\":true}"],
                 ["compare", "--image-opts", "driver=null-co,size=1M,read-zeroes=on",
                  "driver=raw,file.driver=null-co,file.size=1M"],
                 ["compare", "-f", "raw", "d.raw", "null-co://"],
                 ["convert", "-n", "-O", "raw", "d.qcow2", "null-co://"],
                 ["check", "null-co://"],
                 ["snapshot", "-l", "null-co://"]):
        same(*both(images, *argv))
    k, q = both(images, "info", "--image-opts", "driver=null-co,size=4096")
    assert k[0] == q[0] == 0
    assert "file format: null-co\nvirtual size: 4 KiB (4096 bytes)\n" in k[1] and \
        "file format: null-co\nvirtual size: 4 KiB (4096 bytes)\n" in q[1]
    # qemu-img aborts on a bad size (an assertion in parse_option_size); Kestrel refuses.
    krc, kout, kerr = kimg("info", "--image-opts", "driver=null-co,size=abc")
    assert krc == 1 and "Parameter 'size' expects a non-negative number below 2^64" in kerr


def test_json_backing_name_in_an_image(images):
    """A json: backing name stored by qemu-img is opened as qemu-img opens it."""
    base = '{"driver":"qcow2","file":{"driver":"file","filename":"%s"}}' % (images / "d.qcow2")
    ok(qimg("create", "-q", "-f", "qcow2", "-b", "json:" + base, "-F", "qcow2",
            images / "j.qcow2"))
    for prog, tag in ((kimg, "k"), (qimg, "q")):
        ok(prog("convert", "-O", "raw", "j.qcow2", f"j.{tag}", cwd=images))
    assert (images / "j.k").read_bytes() == (images / "j.q").read_bytes() == \
        (images / "d.raw").read_bytes()
    same(*both(images, "map", "--output=json", "j.qcow2"))
    k, q = both(images, "info", "--backing-chain", "j.qcow2")
    assert k[0] == q[0] == 0
    names = lambda out: [ln for ln in out.splitlines() if ln.startswith(("image:", "backing file:"))]
    assert names(k[1]) == names(q[1])


def test_backing_null_skips_a_missing_backing_file(images):
    ok(qimg("create", "-q", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2", "-u",
            images / "m.qcow2", "4M"))
    same(*both(images, "convert", "-O", "raw", "m.qcow2", "m.x"), check_out=False)
    for name, warn in (('json:{"driver":"qcow2","file":{"filename":"m.qcow2"},"backing":null}',
                        False), ("driver=qcow2,file.filename=m.qcow2,backing=", True)):
        args = ["--image-opts"] if name.startswith("driver=") else []
        for prog, tag in ((kimg, "k"), (qimg, "q")):
            rc, out, err = prog("convert", *args, "-O", "raw", name, f"m.{tag}", cwd=images)
            assert rc == 0, err
            assert ("deprecated" in err) == warn, err
        assert (images / "m.k").read_bytes() == (images / "m.q").read_bytes() == bytes(4 << 20)


def test_locking_off_and_force_share_pass_a_lock_holder(images):
    holder = Holder(["qemu-io", "-f", "qcow2"], images / "d.qcow2")
    try:
        k, q = both(images, "info", "--image-opts", opts("qcow2", "d.qcow2"))
        assert k[0] == q[0] == 1 and "Failed to get shared \"write\" lock" in k[2]
        for extra in ("file.locking=off", "force-share=on"):
            k, q = both(images, "info", "--image-opts", opts("qcow2", "d.qcow2", extra))
            assert k[0] == q[0] == 0, (extra, k[2], q[2])
            assert k[1].splitlines()[:3] == q[1].splitlines()[:3]
        k, q = both(images, "info", 'json:{"driver":"qcow2","file":{"filename":"d.qcow2",'
                                    '"locking":"off"}}')
        assert k[0] == q[0] == 0, (k[2], q[2])
    finally:
        holder.close()


def test_objects_kestrel_refuses_by_name(images):
    # A throttle group is taken by both (test_throttle.py: the filter that uses it).
    krc, _, kerr = kimg("info", "--object", "throttle-group,id=t0,x-bps-total=1000", "d.raw",
                        cwd=images)
    assert krc == 0, kerr
    assert qimg("info", "--object", "throttle-group,id=t0,x-bps-total=1000", "d.raw",
                cwd=images)[0] == 0
    # qcow2's encrypt.key-secret is looked up only where the image is encrypted
    # (test_img_qcow2_luks.py): on a plain image qemu-img ignores it, named or not.
    for sid in ("s0", "s1"):
        args = ["info", "--object", "secret,id=s0,data=x", "--image-opts",
                opts("qcow2", "d.qcow2", f"encrypt.key-secret={sid}")]
        assert kimg(*args, cwd=images)[0] == 0 and qimg(*args, cwd=images)[0] == 0
    krc, _, kerr = kimg("info", "--object", "secret,id=s0,data=x,keyid=k", "d.raw", cwd=images)
    assert krc == 1 and "Option 'keyid' of object 'secret' is not supported by Kestrel" in kerr
    # --object is taken by every command (the object table is shared).
    for cmd in (["create", "-q", "-f", "raw", "c.raw", "1M"], ["check", "d.qcow2"],
                ["map", "d.raw"], ["compare", "d.raw", "d.raw"], ["resize", "c.raw", "2M"],
                ["amend", "-o", "lazy_refcounts=on", "d.qcow2"], ["snapshot", "-l", "d.qcow2"],
                ["commit", "o.qcow2"], ["rebase", "-u", "-b", "d.qcow2", "-F", "qcow2", "o.qcow2"],
                ["measure", "-O", "qcow2", "d.raw"], ["bench", "-c", "1", "d.raw"],
                ["convert", "-O", "raw", "d.raw", "x.raw"], ["dd", "if=d.raw", "of=y.raw"]):
        rc, out, err = kimg(cmd[0], "--object", "secret,id=s0,data=x", *cmd[1:], cwd=images)
        assert rc == 0, (cmd, err)
        rc, out, err = kimg(cmd[0], "--object", "bogus,id=s0", *cmd[1:], cwd=images)
        assert rc == 1 and err == "kestrel-img: Parameter 'qom-type' does not accept value " \
                                  "'bogus'\n", (cmd, err)


def test_qcow2_encryption_options_check_the_secret_first(images):
    krc, _, kerr = kimg("create", "-f", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=s0",
                        "e.qcow2", "1M", cwd=images)
    qrc, _, qerr = qimg("create", "-f", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=s0",
                        "e.qcow2", "1M", cwd=images)
    assert krc == qrc == 1 and "No secret with id 's0'" in qerr
    assert kerr == "kestrel-img: e.qcow2: No secret with id 's0'\n"
    krc, _, kerr = kimg("create", "-f", "qcow2", "-o", "encrypt.key-secret=s0", "e.qcow2", "1M",
                        cwd=images)
    assert krc == 1 and kerr == "kestrel-img: e.qcow2: No secret with id 's0'\n"
    krc, _, kerr = kimg("create", "--object", "secret,id=s0,data=pw", "-f", "qcow2", "-o",
                        "encrypt.key-secret=s0", "e.qcow2", "1M", cwd=images)
    assert krc == 1 and kerr == "kestrel-img: e.qcow2: Parameter 'encrypt.format' is missing\n"
    assert not (images / "e.qcow2").exists()


def test_file_prefix_is_the_file(images):
    k, q = both(images, "info", "file:d.qcow2")
    assert k[0] == q[0] == 0
    assert k[1].splitlines()[:3] == q[1].splitlines()[:3]
    assert k[1].startswith("image: d.qcow2\n")
    for prog, tag in ((kimg, "k"), (qimg, "q")):
        ok(prog("create", "-q", "-f", "qcow2", f"file:f.{tag}", "1M", cwd=images))
        assert (images / f"f.{tag}").exists() and not (images / f"file:f.{tag}").exists()
