"""Create options beside qemu-img 7.2: -o help/? listings, size spellings and
their errors, -o value errors, the Formatting line, preallocation layouts,
extent_size_hint, and formats qemu-img knows that Kestrel refuses by name.
Outputs are compared byte for byte, only the program name normalised."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from test_img_helpers import (KIMG, kimg, make_raw, needs_build, needs_qemu_img, ok, qimg,
                              read_raw_via_qemu)

pytestmark = [needs_build, needs_qemu_img]

PROG = re.compile(r"^(qemu-img|kestrel-img): ", re.M)
# LeakSanitizer cannot run under ptrace: the strace tests of a sanitizer build go without it.
STRACE_ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")


def norm(res):
    rc, out, err = res
    return rc, PROG.sub("PROG: ", out), PROG.sub("PROG: ", err)


def both(tmp_path, *args):
    """The same command through both programs, each in its own copy of the inputs."""
    results = []
    base = tempfile.mkdtemp(dir=tmp_path)
    for name, fn in (("k", kimg), ("q", qimg)):
        d = os.path.join(base, name)
        os.mkdir(d)
        d = type(tmp_path)(d)
        make_raw(d / "a.raw", 1 << 20, seed=1)
        ok(qimg("create", "-q", "-f", "qcow2", d / "a.qcow2", "1M"))
        results.append(norm(fn(*args, cwd=d)))
    return results


def same(tmp_path, *args):
    k, q = both(tmp_path, *args)
    assert k == q, f"{args}\nkestrel-img: {k}\nqemu-img:    {q}"
    return k


HELP_CASES = [
    ["create", "-f", "raw", "-o", "help"],
    ["create", "-f", "qcow2", "-o", "help"],
    ["create", "-o", "help"],
    ["create", "-f", "raw", "-o", "help", "x.img"],
    ["create", "-f", "qcow2", "-o", "?", "x.img"],
    ["create", "-f", "qcow2", "-o", "cluster_size=4k,help"],
    ["create", "-f", "raw", "-o", "help", "-o", "help"],
    ["create", "-f", "bochs", "-o", "help"],
    ["create", "-f", "nosuchfmt", "-o", "help"],
    ["convert", "-O", "qcow2", "-o", "help"],
    ["convert", "-O", "qcow2", "-o", "help", "a.raw", "y.qcow2"],
    ["convert", "-O", "raw", "-o", "?", "a.raw"],
    ["amend", "-f", "qcow2", "-o", "help"],
    ["amend", "-o", "help", "a.qcow2"],
    ["amend", "-o", "size=2M,?", "a.qcow2"],
    ["amend", "-o", "help"],
    ["amend", "-f", "raw", "-o", "help"],
    ["amend", "-f", "raw", "-o", "help", "a.raw"],
    ["measure", "-O", "qcow2", "-o", "help", "a.raw"],
    ["measure", "-O", "qcow2", "-o", "help", "--size", "1M"],
]


@pytest.mark.parametrize("args", HELP_CASES, ids=[" ".join(a) for a in HELP_CASES])
def test_option_help_like_qemu(tmp_path, args):
    rc, out, err = same(tmp_path, *args)
    if rc == 0:
        assert out.startswith(("Supported", "Amend options"))


def test_help_lists_every_qcow2_option(tmp_path):
    out = ok(kimg("create", "-f", "qcow2", "-o", "help", tmp_path / "x"))
    names = [l.split("=")[0].strip() for l in out.splitlines()[1:] if l.strip()]
    assert names == sorted(names)
    for n in ("compression_type", "data_file", "data_file_raw", "extended_l2",
              "extent_size_hint", "nocow", "preallocation", "encrypt.format"):
        assert n in names


SIZES = ["1024", "1024.0", "0.5G", "1.5k", "1.k", "1.", ".5G", "1.5", "1b", "1B", "0.5b",
         "1e3", "1.5e3k", "0x100", "0x1k", "0x", "00x10", "0x1.5k", "1K", "1m", "1g", "1t",
         "1p", "8E", "16E", "15.9E", " +5", " -5", "5 ", "1.1234567891G", "0.00048828125k",
         "0.9999999999999999999999k", "1kk", "1KiB", "", "abc", "1,5k",
         "9223372036854775808", "99999999999999999999", "99999999999999999999x",
         "0x10000000000000000"]


@pytest.mark.parametrize("size", SIZES, ids=[repr(s) for s in SIZES])
def test_size_spellings_like_qemu(tmp_path, size):
    same(tmp_path, "create", "-f", "raw", "x.img", size)


@pytest.mark.parametrize("size", ["1.5", "99E", "8E", "0", "1.0", "+1.5k", "2M", "1,5k", "~0.5k",
                                  "-0.5k", "-2M"])
def test_resize_size_spellings_like_qemu(tmp_path, size):
    same(tmp_path, "resize", "-f", "raw", "a.raw", size)
    same(tmp_path, "resize", "--shrink", "-f", "raw", "a.raw", size)
    same(tmp_path, "resize", "-f", "raw", "--preallocation=falloc", "a.raw", size)


@pytest.mark.parametrize("size", ["1.5", "99E", "8E", "1.5G", "0x1k"])
def test_measure_size_spellings_like_qemu(tmp_path, size):
    same(tmp_path, "measure", "--size", size)


O_CASES = [
    ("qcow2", "compat=0.42"), ("qcow2", "compat=v3"), ("qcow2", "compat="),
    ("qcow2", "cluster_size=1.5k"), ("qcow2", "cluster_size=abc"),
    ("qcow2", "cluster_size=16E"), ("qcow2", "cluster_size=0"), ("qcow2", "cluster_size=4M"),
    ("qcow2", "cluster_size=0x1000"), ("qcow2", "cluster_size=-1"),
    ("qcow2", "cluster_size=0.5k"), ("qcow2", "refcount_bits=0x10"),
    ("qcow2", "refcount_bits=16k"), ("qcow2", "refcount_bits=3"), ("qcow2", "refcount_bits=0"),
    ("qcow2", "refcount_bits=abc"), ("qcow2", "refcount_bits=99999999999999999999"),
    ("qcow2", "lazy_refcounts=y"), ("qcow2", "lazy_refcounts=maybe"), ("qcow2", "lazy_refcounts"),
    ("qcow2", "compression_type=lz4"), ("qcow2", "compression_type=zstd"),
    ("qcow2", "preallocation=bogus"), ("raw", "preallocation=metadata"),
    ("raw", "preallocation=bogus"), ("qcow2", "size=2M"), ("qcow2", "size=1.5"),
    ("qcow2", "foo=bar"), ("raw", "foo=bar"), ("raw", "cluster_size=64k"),
    ("qcow2", "extent_size_hint=1M"), ("raw", "extent_size_hint=1M"),
    ("raw", "extent_size_hint=1.5"), ("raw", "extent_size_hint=5G"), ("raw", "extent_size_hint=0"),
    ("qcow2", "nocow=on"), ("raw", "nocow=maybe"), ("raw", "size"), ("qcow2", "encryption=off"),
    ("qcow2", "backing_file=a,,b.raw,backing_fmt=raw"), ("qcow2", "backing_file=a.raw"),
    ("qcow2", "compat=0.10,compression_type=zstd"),
]


@pytest.mark.parametrize("fmt,opts", O_CASES, ids=[f"{f}-{o}" for f, o in O_CASES])
def test_o_values_like_qemu(tmp_path, fmt, opts):
    same(tmp_path, "create", "-f", fmt, "-o", opts, "x.img", "1M")


@pytest.mark.parametrize("opts", ["cluster_size=4k", "compression_type=zstd", "preallocation=full",
                                  "extended_l2=on", "size=1.5", "size=99E", "compat=0.42",
                                  "lazy_refcounts=maybe", "nocow=on", "", "foo=1"])
def test_amend_values_like_qemu(tmp_path, opts):
    same(tmp_path, "amend", "-o", opts, "a.qcow2")


CM_CASES = [(c, o) for c in ("convert", "measure") for o in ("compat=0.42", "foo=1",
                                                               "cluster_size=1.5")] + \
    [("measure", o) for o in ("help", "cluster_size=1000", "cluster_size=4M", "refcount_bits=3",
                              "compat=0.10,refcount_bits=8", "compat=v2", "compat=0.10",
                              "preallocation=bogus", "preallocation=full",
                              "compression_type=lz4", "extended_l2=on,cluster_size=4k",
                              "lazy_refcounts=on,compat=0.10", "extent_size_hint=1M")]


@pytest.mark.parametrize("cmd,opts", CM_CASES, ids=[f"{c}-{o}" for c, o in CM_CASES])
def test_convert_measure_values_like_qemu(tmp_path, cmd, opts):
    tail = ["a.raw", "y.qcow2"] if cmd == "convert" else ["a.raw"]
    same(tmp_path, cmd, "-O", "qcow2", "-o", opts, *tail)


def test_hex_suffix_warns_like_qemu(tmp_path):
    rc, out, err = same(tmp_path, "create", "-f", "raw", "-o", "size=0x1k", "x.img")
    assert rc == 0 and "deprecated: 0x1k" in err


@pytest.mark.parametrize("fmt", ["bochs", "cloop", "dmg", "nosuchfmt"])
def test_other_formats_refused_by_name(tmp_path, fmt):
    rc, out, err = kimg("create", "-f", fmt, tmp_path / "x", "1M")
    assert rc == 1 and f"'{fmt}'" in err
    rc, out, err = kimg("convert", "-O", fmt, tmp_path / "x", tmp_path / "y")
    assert rc == 1 and f"'{fmt}'" in err
    make_raw(tmp_path / "a.raw", 65536, seed=2)
    rc, out, err = kimg("info", "-f", fmt, tmp_path / "a.raw")
    assert rc == 1
    if fmt == "nosuchfmt":
        assert "Unknown driver 'nosuchfmt'" in err
    elif fmt in ("bochs", "cloop", "dmg"):
        # Read-only drivers now: they judge the file as qemu-img's do.
        qerr = qimg("info", "-f", fmt, tmp_path / "a.raw")[2]
        assert err in qerr.replace("qemu-img", "kestrel-img")    # (qemu-img: + dmg modules)
    else:
        assert f"Image format '{fmt}' is not supported by Kestrel" in err
    # qemu-img cannot create the read-only formats: the same words here.
    if fmt in ("bochs", "cloop", "dmg", "nosuchfmt"):
        same(tmp_path, "create", "-f", fmt, "x", "1M")


def allocated(path):
    return os.stat(path).st_blocks * 512


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
@pytest.mark.parametrize("mode", ["off", "falloc", "full"])
def test_preallocation_layout_like_qemu(tmp_path, fmt, mode):
    size = 24 << 20
    k, q = tmp_path / "k.img", tmp_path / "q.img"
    opts = ["-f", fmt, "-o", f"preallocation={mode}"]
    kr, qr = norm(kimg("create", *opts, k, str(size))), norm(qimg("create", *opts, q, str(size)))
    assert kr[0] == qr[0] == 0 and kr[1].replace("k.img", "q.img") == qr[1]
    if (fmt, mode) != ("qcow2", "off"):
        # (qemu-img ends a fresh qcow2 file inside its L1 cluster; Kestrel pads it.)
        assert k.stat().st_size == q.stat().st_size
    # The host file is as allocated as qemu-img's (within one 64 KiB cluster of metadata).
    assert abs(allocated(k) - allocated(q)) <= 65536, (allocated(k), allocated(q))
    if mode != "off":
        assert allocated(k) >= size
    assert ok(kimg("map", "--output=json", "-f", fmt, k)) == \
        ok(qimg("map", "--output=json", "-f", fmt, q))
    assert read_raw_via_qemu(k, tmp_path) == bytes(size)


@pytest.mark.parametrize("mode", ["falloc", "full"])
def test_resize_preallocation_like_qemu(tmp_path, mode):
    for fmt in ("raw", "qcow2"):
        k, q = tmp_path / f"k.{fmt}", tmp_path / f"q.{fmt}"
        ok(qimg("create", "-q", "-f", fmt, k, "1M"))
        ok(qimg("create", "-q", "-f", fmt, q, "1M"))
        ok(kimg("resize", "-f", fmt, f"--preallocation={mode}", k, "+16M"))
        ok(qimg("resize", "-f", fmt, f"--preallocation={mode}", q, "+16M"))
        assert allocated(k) >= 16 << 20
        assert abs(allocated(k) - allocated(q)) <= 65536 * 2, (fmt, allocated(k), allocated(q))
        assert ok(kimg("map", "--output=json", "-f", fmt, k)) == \
            ok(qimg("map", "--output=json", "-f", fmt, q))


def tmpfs_dir():
    """A tmpfs directory: tmpfs refuses FS_IOC_FSSETXATTR's extent size hint."""
    for d in ("/dev/shm", "/run/user/%d" % os.getuid()):
        try:
            if os.path.isdir(d) and os.access(d, os.W_OK) and \
                    subprocess.run(["stat", "-f", "-c", "%T", d], capture_output=True,
                                   text=True).stdout.strip() == "tmpfs":
                return d
        except OSError:
            pass
    return None


@pytest.mark.parametrize("opts", [[], ["-o", "extent_size_hint=1M"], ["-o", "extent_size_hint=2M"],
                                  ["-o", "extent_size_hint=0"]])
def test_extent_size_hint_refused_like_qemu(tmp_path, opts):
    d = tmpfs_dir()
    if d is None:
        pytest.skip("no writable tmpfs here")
    results = []
    for prog, name in ((kimg, "k"), (qimg, "q")):
        path = os.path.join(d, f"kestrel-esh-{os.getpid()}-{name}.img")
        try:
            results.append(norm(prog("create", "-f", "raw", *opts, path, "1M")))
        finally:
            if os.path.exists(path):
                os.unlink(path)
    k, q = results
    assert k[0] == q[0] and k[2] == q[2] and k[1].replace("-k.img", "-q.img") == q[1]
    # Only a hint asked for is worth a warning; the 1 MiB default fails silently.
    assert ("Failed to set extent size hint" in k[2]) == \
        (opts != [] and opts[-1] != "extent_size_hint=0")


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_extent_size_hint_reaches_the_file_system(tmp_path, fmt):
    def ioctls(*opts):
        p = subprocess.run(["strace", "-f", "-e", "trace=ioctl", str(KIMG), "create", "-q", "-f",
                            fmt, *opts, str(tmp_path / "x"), "1M"], capture_output=True, text=True,
                           env=STRACE_ENV)
        assert p.returncode == 0, p.stderr
        return [l for l in p.stderr.splitlines() if "FS_IOC_FSSETXATTR" in l]

    assert any("fsx_extsize=1048576" in l for l in ioctls())
    assert any("fsx_extsize=4194304" in l for l in ioctls("-o", "extent_size_hint=4M"))
    assert ioctls("-o", "extent_size_hint=0") == []


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_nocow_asks_the_file_system(tmp_path):
    """nocow=on: FS_NOCOW_FL through FS_IOC_SETFLAGS (btrfs keeps it, others refuse; QEMU
    ignores the refusal too); without it, no such call."""
    def setflags(*opts):
        p = subprocess.run(["strace", "-f", "-e", "trace=ioctl", str(KIMG), "create", "-q", "-f",
                            "raw", *opts, str(tmp_path / "x"), "1M"], capture_output=True,
                           text=True, env=STRACE_ENV)
        assert p.returncode == 0, p.stderr
        return [l for l in p.stderr.splitlines() if "FS_IOC_SETFLAGS" in l]

    assert any("FS_NOCOW_FL" in l for l in setflags("-o", "nocow=on"))
    assert setflags("-o", "nocow=off") == [] and setflags() == []


@pytest.mark.parametrize("opts,size", [
    ("preallocation=falloc", "24M"), ("preallocation=full", "3M"),
    ("preallocation=falloc,cluster_size=4k", "4M"),
    # These need refcount blocks beyond the first: placed before the new table, as QEMU does.
    ("preallocation=full,cluster_size=512,refcount_bits=1", "3M"),
    ("preallocation=falloc,cluster_size=4k,refcount_bits=64", "40M"),
    ("preallocation=falloc,cluster_size=1k,refcount_bits=2", "20M"),
])
def test_qcow2_preallocation_bytes_like_qemu(tmp_path, opts, size):
    """QEMU's qcow2_co_truncate layout: new refcount table, data run, then L2 tables."""
    k, q = tmp_path / "k.qcow2", tmp_path / "q.qcow2"
    ok(kimg("create", "-q", "-f", "qcow2", "-o", opts, k, size))
    ok(qimg("create", "-q", "-f", "qcow2", "-o", opts, q, size))
    assert k.read_bytes() == q.read_bytes()
    ok(qimg("check", k))


@pytest.mark.parametrize("opts", ["preallocation=falloc", "preallocation=full,cluster_size=4k"])
def test_qcow2_preallocation_of_used_image_like_qemu(tmp_path, opts):
    """Growing an image with data: the new table after the last used cluster."""
    for name, prog in (("k", kimg), ("q", qimg)):
        img = tmp_path / f"{name}.qcow2"
        ok(qimg("create", "-q", "-f", "qcow2", img, "4M"))
        ok(run_qemu_io(img, "write -P 0x5a 64k 192k"))
        mode = opts.split(",")[0].split("=")[1]
        ok(prog("resize", "-f", "qcow2", f"--preallocation={mode}", img, "+5M"))
    kb, qb = (tmp_path / "k.qcow2").read_bytes(), (tmp_path / "q.qcow2").read_bytes()
    assert kb == qb
    ok(qimg("check", tmp_path / "k.qcow2"))


def run_qemu_io(img, cmd):
    p = subprocess.run(["qemu-io", "-f", "qcow2", "-c", cmd, str(img)], capture_output=True,
                       text=True)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("extra", [["-c"], ["-S", "0"], ["-S", "4k"], ["--salvage"], []])
def test_convert_copy_offloading_refusals_like_qemu(tmp_path, extra):
    fmt = "qcow2" if extra == ["-c"] else "raw"
    same(tmp_path, "convert", "-C", *extra, "-f", "raw", "-O", fmt, "a.raw", "d")


def dense_and_sparse(tmp_path):
    """A file whose data holds zero runs (read as data), and one with holes."""
    dense = tmp_path / "dense.raw"
    buf = bytearray(4 << 20)
    for off in range(0, len(buf), 196608):
        buf[off:off + 4096] = bytes(range(1, 256)) * 16 + b"\x01" * 16
    dense.write_bytes(bytes(buf))
    sparse = tmp_path / "sparse.raw"
    make_raw(sparse, 4 << 20, seed=5, regions=6)
    return dense, sparse


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_convert_copy_offloading_layout_like_qemu(tmp_path, fmt):
    """-C copies data ranges whole (no zero detection inside them), holes stay holes."""
    for src in dense_and_sparse(tmp_path):
        outs = []
        for name, prog in (("k", kimg), ("q", qimg)):
            dst = tmp_path / f"{src.stem}.{name}.{fmt}"
            ok(prog("convert", "-C", "-f", "raw", "-O", fmt, src, dst))
            outs.append(ok(qimg("map", "--output=json", "-f", fmt, dst)))
            ok(qimg("compare", "-f", "raw", "-F", fmt, src, dst))
        # Into qcow2, a cluster holding any data is copied whole, as qemu-img copies it.
        assert outs[0] == outs[1], src
    # Without -C, zero detection makes the dense file's zero runs holes: -C changed something.
    plain = tmp_path / "plain.raw"
    ok(kimg("convert", "-f", "raw", "-O", "raw", tmp_path / "dense.raw", plain))
    assert ok(qimg("map", "--output=json", "-f", "raw", plain)) != outs[0] or fmt != "raw"


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_convert_copy_offloading_uses_copy_file_range(tmp_path):
    dense, _ = dense_and_sparse(tmp_path)

    def calls(*opts):
        p = subprocess.run(["strace", "-f", "-e", "trace=copy_file_range", str(KIMG), "convert",
                            *opts, "-f", "raw", "-O", "raw", str(dense), str(tmp_path / "o.raw")],
                           capture_output=True, text=True, env=STRACE_ENV)
        assert p.returncode == 0, p.stderr
        return sum("copy_file_range(" in l and "= -1" not in l for l in p.stderr.splitlines())

    assert calls("-C") >= 1
    assert calls() == 0
    assert (tmp_path / "o.raw").read_bytes() == dense.read_bytes()


def test_zstd_compressed_clusters_both_ways(tmp_path):
    """compression_type=zstd (incompatible bit 3, header byte 104): each reads the other's."""
    src = tmp_path / "src.raw"
    src.write_bytes(b"".join(b"kestrel %08d zstd cluster line\n" % i for i in range(100000))
                    [:3 << 20])
    k, q = tmp_path / "k.qcow2", tmp_path / "q.qcow2"
    ok(kimg("convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", src, k))
    ok(qimg("convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", src, q))
    for img in (k, q):
        data = img.read_bytes()
        assert data[104] == 1 and int.from_bytes(data[72:80], "big") & 8
        assert '"compression-type": "zstd"' in ok(qimg("info", "--output=json", img))
        ok(qimg("compare", "-f", "raw", "-F", "qcow2", src, img))
        ok(kimg("compare", "-f", "raw", "-F", "qcow2", src, img))
        assert "100.00% compressed clusters" in ok(qimg("check", img))
