"""The read-only formats dmg, cloop and bochs (issue 19): images built by roimages.py (and by
cloop-utils' create_compressed_fs and bximage where installed) read back through kestrel-img
exactly as through qemu-img 7.2 and as the data put in; info and map print what qemu-img
prints; every writing command is refused in qemu-img's words; hostile tables give a clear
error, bounded memory and no hang."""
import os
import resource
import shutil
import struct
import subprocess
import time

import pytest

import roimages as R
from test_img_helpers import BUILD, kimg, needs_build, needs_qemu_img, ok, qimg

pytestmark = [needs_build, needs_qemu_img]

DATA = R.pattern(1 << 20)
SANITIZED = "asan" in str(BUILD) or "san" in os.environ.get("KESTREL_BUILD", "")


def images():
    """name -> (image bytes, what a reader must see)."""
    d = DATA
    zlib_raw_zero = [[(R.UDZO, d[:262144]), (R.UDRW, d[262144:300032]),
                      (R.UDZE, bytes(65536))], [(R.UDZO, d[:131072]), (R.UDIG, bytes(4096))]]
    out = {
        "c64k.cloop": (R.cloop(d, 65536), d),
        "c512.cloop": (R.cloop(d[:65536], 512), d[:65536]),
        "codd.cloop": (R.cloop(d[:300 * 512], 16384), d[:300 * 512] + bytes(-300 * 512 % 16384)),
        "v2.bochs": (R.bochs(d), d),
        "v1.bochs": (R.bochs(d, version=1, extent=4096), d),
        "e512.bochs": (R.bochs(d[:65536], extent=512), d[:65536]),
        "big.bochs": (R.bochs(d, extent=1 << 20, seed=3), d),
    }
    for name, kw in (("xml.dmg", {}), ("rsrc.dmg", {"xml": False})):
        out[name] = R.dmg(zlib_raw_zero, **kw)
    out["one.dmg"] = R.dmg([[(R.UDZO, d)]], extra_data=False)
    return out


IMAGES = images()


@pytest.fixture(scope="module")
def imgdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ro-images")
    for name, (img, _) in IMAGES.items():
        (d / name).write_bytes(img)
    return d


def fmt_of(name):
    return name.rsplit(".", 1)[1]


def quiet(err):
    """qemu-img's stderr without the module loader's noise about dmg-bz2/lzfse."""
    return "".join(l for l in err.splitlines(True) if "module block-block-dmg" not in l)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_reads_like_qemu_img_and_the_data_put_in(imgdir, tmp_path, name):
    src = imgdir / name
    ok(kimg("convert", "-O", "raw", src, tmp_path / "k.raw"))
    ok(qimg("convert", "-O", "raw", src, tmp_path / "q.raw"))
    k = (tmp_path / "k.raw").read_bytes()
    assert k == (tmp_path / "q.raw").read_bytes()
    assert k == IMAGES[name][1]
    # qcow2 output too: the same bytes as qemu-img writes from the same source.
    ok(kimg("convert", "-O", "qcow2", src, tmp_path / "k.qcow2"))
    ok(qimg("convert", "-O", "qcow2", src, tmp_path / "q.qcow2"))
    assert (tmp_path / "k.qcow2").read_bytes() == (tmp_path / "q.qcow2").read_bytes()
    assert ok(kimg("compare", src, tmp_path / "q.raw")) == "Images are identical.\n"


@pytest.mark.parametrize("name", sorted(IMAGES))
@pytest.mark.parametrize("cmd", ["info", "map"])
@pytest.mark.parametrize("output", ["human", "json"])
def test_info_and_map_print_what_qemu_img_prints(imgdir, name, cmd, output):
    k = kimg(cmd, f"--output={output}", name, cwd=imgdir)
    q = qimg(cmd, f"--output={output}", name, cwd=imgdir)
    assert k[0] == q[0], (k, q)
    assert k[1] == q[1]
    # map's human output fails as qemu-img's does: no host offsets for these formats.
    assert k[2].replace("kestrel-img", "qemu-img") == quiet(q[2])


def test_compare_finds_the_same_mismatch(imgdir, tmp_path):
    other = bytearray(DATA)
    other[5000] ^= 0xFF
    (tmp_path / "o.raw").write_bytes(other)
    for name in ("c64k.cloop", "v2.bochs", "xml.dmg"):
        k = kimg("compare", imgdir / name, tmp_path / "o.raw")
        q = qimg("compare", imgdir / name, tmp_path / "o.raw")
        assert k[0] == q[0] == 1 and k[1] == q[1] == "Content mismatch at offset 4608!\n"


@pytest.mark.skipif(shutil.which("create_compressed_fs") is None, reason="no cloop-utils")
def test_cloop_utils_image(tmp_path):
    (tmp_path / "d.raw").write_bytes(DATA[:300000])
    subprocess.run(["create_compressed_fs", "-B", "16384", str(tmp_path / "d.raw"),
                    str(tmp_path / "c.cloop")], check=True, capture_output=True)
    ok(kimg("convert", "-O", "raw", tmp_path / "c.cloop", tmp_path / "k.raw"))
    ok(qimg("convert", "-O", "raw", tmp_path / "c.cloop", tmp_path / "q.raw"))
    k = (tmp_path / "k.raw").read_bytes()
    assert k == (tmp_path / "q.raw").read_bytes() and k[:300000] == DATA[:300000]
    assert ok(kimg("info", "c.cloop", cwd=tmp_path)) == ok(qimg("info", "c.cloop", cwd=tmp_path))


@pytest.mark.skipif(shutil.which("bximage") is None, reason="no bximage")
def test_bximage_growing_image(tmp_path):
    subprocess.run(["bximage", "-func=create", "-hd=10M", "-imgmode=growing", "-q", "b.img"],
                   cwd=tmp_path, check=True, capture_output=True)
    for output in ("human", "json"):
        assert ok(kimg("info", f"--output={output}", "b.img", cwd=tmp_path)) == \
            ok(qimg("info", f"--output={output}", "b.img", cwd=tmp_path))
    ok(kimg("convert", "-O", "raw", tmp_path / "b.img", tmp_path / "k.raw"))
    k = (tmp_path / "k.raw").read_bytes()
    assert len(k) == 10321920 and not any(k)


def test_bzip2_chunks_read_as_the_data_put_in(tmp_path):
    img, disk = R.dmg([[(R.UDBZ, DATA[:262144]), (R.UDZO, DATA[:4096]),
                        (R.UDBZ, DATA[4096:8192])]])
    (tmp_path / "bz.dmg").write_bytes(img)
    ok(kimg("convert", "-O", "raw", tmp_path / "bz.dmg", tmp_path / "k.raw"))
    assert (tmp_path / "k.raw").read_bytes() == disk
    # Debian's qemu-img 7.2 has no dmg-bz2 module: where it has one, it must agree.
    q = qimg("convert", "-O", "raw", tmp_path / "bz.dmg", tmp_path / "q.raw")
    if q[0] == 0:
        assert (tmp_path / "q.raw").read_bytes() == disk
    else:
        assert "dmg-bzip2 module is missing" in q[2]


def test_lzfse_chunks_are_refused_by_name(tmp_path):
    img, disk = R.dmg([[(R.UDZO, DATA[:8192]), (R.ULFO, DATA[8192:16384])]])
    (tmp_path / "l.dmg").write_bytes(img)
    rc, out, err = kimg("info", tmp_path / "l.dmg")
    assert rc == 0 and "lzfse compressed chunks, which Kestrel cannot read" in err
    # The zlib chunk reads; the lzfse one fails by name, never as zeroes or junk.
    rc, out, err = kimg("dd", "if=" + str(tmp_path / "l.dmg"), "of=" + str(tmp_path / "a.raw"),
                        "bs=8192", "count=1")
    assert rc == 0 and (tmp_path / "a.raw").read_bytes() == DATA[:8192]
    rc, out, err = kimg("convert", "-O", "raw", tmp_path / "l.dmg", tmp_path / "k.raw")
    assert rc == 1 and "error while reading at byte 8192: Operation not supported" in err, err
    q = qimg("convert", "-O", "raw", tmp_path / "l.dmg", tmp_path / "q.raw")
    assert q[0] == 1


@pytest.mark.parametrize("fmt", ["dmg", "cloop", "bochs"])
def test_writing_commands_are_refused_as_qemu_img_refuses_them(imgdir, tmp_path, fmt):
    name = {"dmg": "xml.dmg", "cloop": "c64k.cloop", "bochs": "v2.bochs"}[fmt]
    shutil.copy(imgdir / name, tmp_path / name)
    before = (tmp_path / name).read_bytes()
    (tmp_path / "d.raw").write_bytes(DATA)
    for cmd in (["create", "-f", fmt, "x." + fmt, "1M"],
                ["convert", "-O", fmt, "d.raw", "y." + fmt],
                ["resize", name, "2M"], ["commit", name], ["snapshot", "-c", "s", name],
                ["amend", "-o", "size=2M", name], ["check", name], ["check", "-r", "all", name],
                ["rebase", "-u", "-b", "", name]):
        k = kimg(*cmd, cwd=tmp_path)
        q = qimg(*cmd, cwd=tmp_path)
        assert k[0] == q[0] != 0, (cmd, k, q)
        assert k[2].replace("kestrel-img", "qemu-img") == quiet(q[2]), cmd
    assert (tmp_path / name).read_bytes() == before
    assert not (tmp_path / ("x." + fmt)).exists() and not (tmp_path / ("y." + fmt)).exists()


def test_image_in_use_is_locked_as_qemu_locks_it(imgdir, tmp_path):
    shutil.copy(imgdir / "c64k.cloop", tmp_path / "c.cloop")
    holder = subprocess.Popen(["qemu-io", "-f", "raw", str(tmp_path / "c.cloop")],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while qimg("info", "c.cloop", cwd=tmp_path)[0] == 0:
            assert time.monotonic() < deadline and holder.poll() is None
            time.sleep(0.05)
        k = kimg("info", "c.cloop", cwd=tmp_path)
        q = qimg("info", "c.cloop", cwd=tmp_path)
        assert k[0] == q[0] == 1
        assert k[2].replace(f" It is in use by process {holder.pid}.", "") == \
            q[2].replace("qemu-img", "kestrel-img")
        assert ok(kimg("info", "-U", "c.cloop", cwd=tmp_path)) == \
            ok(qimg("info", "-U", "c.cloop", cwd=tmp_path))
    finally:
        holder.communicate(b"", timeout=30)
