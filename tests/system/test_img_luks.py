"""luks images (issue 19): LUKS1 volumes made by qemu-img 7.2 read identically through
kestrel-img and the other way round, for each cipher/mode/ivgen/hash combination; create,
info, measure, resize and convert print what qemu-img prints; hostile headers get a clear
message at once (bounded work); cryptsetup interop where the host has cryptsetup."""
import os
import shutil
import subprocess
import time

import pytest

from test_img_helpers import BLOCK_IO, kimg, needs_build, needs_qemu_img, ok, poke, qimg

pytestmark = [needs_build, needs_qemu_img]

SECRET = ["--object", "secret,id=sec0,data=kestrel-pw"]
WRONG = ["--object", "secret,id=sec0,data=not-the-pw"]


def opts(path):
    return f"driver=luks,key-secret=sec0,file.filename={path}"


def jname(path):
    return 'json:{"driver":"luks","key-secret":"sec0","file":{"filename":"%s"}}' % path


def qimg_timed(*args, **kw):
    """qemu-img create/measure/convert -O luks time PBKDF2 first (0.5 s of CPU each); the
    timing fails now and then on a busy host ("Unable to get accurate CPU usage": 32768
    iterations of a fast hash can take under its 1 ms clock), so retry."""
    for _ in range(8):
        res = qimg(*args, **kw)
        if "Unable to get accurate CPU usage" not in res[2]:
            return res
        time.sleep(0.1)
    pytest.skip("qemu-img could not time PBKDF2 on this host")


def qcreate(path, extra, size="1M"):
    ok(qimg_timed("create", "-q", "-f", "luks", *SECRET, "-o",
                  "key-secret=sec0,iter-time=10" + extra, path, size))


def qio(path, *cmds):
    args = ["qemu-io", *SECRET]
    for c in cmds:
        args += ["-c", c]
    subprocess.run([*args, "--image-opts", opts(path)], check=True, capture_output=True)


def kraw(path, tmp):
    out = tmp / "k.raw"
    ok(kimg("convert", *SECRET, "--image-opts", opts(path), "-O", "raw", out))
    return out.read_bytes()


def qraw(path, tmp):
    out = tmp / "q.raw"
    ok(qimg("convert", *SECRET, "--image-opts", opts(path), "-O", "raw", out))
    return out.read_bytes()


def same_msg(k, q):
    return k.replace("kestrel-img:", "qemu-img:") == q


# Every cipher mode and IV generator QEMU 7.2 can create, each hash at least once.
# aes-192 is absent: qemu-img 7.2 aborts on its 96000-byte keyslot material
# (assertion in do_qcrypto_block_cipher_encdec); Kestrel's own round trip covers it.
COMBOS = [
    ",cipher-alg=aes-256,cipher-mode=xts,ivgen-alg=plain64,hash-alg=sha256",
    ",cipher-alg=aes-128,cipher-mode=xts,ivgen-alg=plain64,hash-alg=sha1",
    ",cipher-alg=aes-256,cipher-mode=xts,ivgen-alg=essiv,hash-alg=sha512",
    ",cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha256",
    ",cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=plain64,hash-alg=sha512",
    ",cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=plain,hash-alg=sha1",
    ",cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256,hash-alg=sha1",
    ",cipher-alg=aes-256,cipher-mode=ecb",
    ",cipher-alg=aes-128,cipher-mode=ctr,ivgen-alg=plain64",
    ",hash-alg=md5",
]


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.interop
def test_qemu_made_reads_in_kestrel(tmp_path, combo):
    img = tmp_path / "q.luks"
    qcreate(img, combo, "2M")
    qio(img, "write -P 0x5a 0 64k", "write -P 0x33 100k 3k", "write -P 0x77 2047k 1k")
    assert kraw(img, tmp_path) == qraw(img, tmp_path)
    for out in ([], ["--output=json"]):
        k = ok(kimg("info", *out, img))
        q = ok(qimg("info", *out, img))
        assert k == q


@pytest.mark.parametrize("combo", COMBOS + [",cipher-alg=aes-192,cipher-mode=xts"])
@pytest.mark.interop
def test_kestrel_made_reads_in_qemu(tmp_path, combo):
    img, src = tmp_path / "k.luks", tmp_path / "src.raw"
    src.write_bytes(os.urandom(1 << 20) + bytes(1 << 20))
    ok(kimg("create", "-q", "-f", "luks", *SECRET, "-o", "key-secret=sec0,iter-time=10" + combo,
            img, "2M"))
    ok(kimg("convert", "-n", *SECRET, "-f", "raw", src, "--target-image-opts", opts(img)))
    assert kraw(img, tmp_path) == src.read_bytes()
    if "aes-192" in combo:
        return
    ok(qimg("compare", *SECRET, "-f", "raw", src, jname(img)))
    assert ok(kimg("info", img)) == ok(qimg("info", img))


def test_convert_both_ways(tmp_path):
    src = tmp_path / "src.raw"
    # Data, then a run of zeroes: on a luks target they must be written, not skipped
    # (unwritten ciphertext decrypts to noise).
    src.write_bytes(os.urandom(600 << 10) + bytes(400 << 10) + os.urandom(24 << 10))
    ok(kimg("convert", *SECRET, "-O", "luks", "-o", "key-secret=sec0,iter-time=10", src,
            tmp_path / "k.luks"))
    ok(qimg("compare", *SECRET, "-f", "raw", src, jname(tmp_path / "k.luks")))
    ok(qimg_timed("convert", *SECRET, "-O", "luks", "-o", "key-secret=sec0,iter-time=10", src,
                  tmp_path / "q.luks"))
    ok(kimg("convert", *SECRET, jname(tmp_path / "q.luks"), "-O", "raw", tmp_path / "back.raw"))
    assert (tmp_path / "back.raw").read_bytes() == src.read_bytes()
    ok(kimg("compare", *SECRET, "-f", "raw", src, jname(tmp_path / "q.luks")))


def test_create_defaults_and_formatting_line(tmp_path):
    k = ok(kimg("create", "-f", "luks", *SECRET, "-o", "key-secret=sec0,iter-time=10",
                tmp_path / "a.luks", "1M"))
    assert k == ("Formatting '%s', fmt=luks size=1048576 key-secret=sec0 iter-time=10\n"
                 % (tmp_path / "a.luks"))
    info = ok(qimg("info", "--output=json", tmp_path / "a.luks"))
    for want in ('"cipher-alg": "aes-256"', '"cipher-mode": "xts"', '"ivgen-alg": "plain64"',
                 '"hash-alg": "sha256"', '"payload-offset": 2068480', '"virtual-size": 1048576'):
        assert want in info
    assert os.path.getsize(tmp_path / "a.luks") == 2068480 + (1 << 20)


@pytest.mark.parametrize("o", [
    "iter-time=10", "key-secret=sec0,cipher-alg=aes-999", "key-secret=sec0,ivgen-alg=foo",
    "key-secret=sec0,cipher-mode=gcm", "key-secret=sec0,hash-alg=md6", "key-secret=other",
    "key-secret=sec0,iter-time=abc", "key-secret=sec0,backing_file=x",
    "key-secret=sec0,preallocation=bogus", "key-secret=sec0,ivgen-alg=essiv,ivgen-hash-alg=sha512",
    "key-secret=sec0,iter-time=10,preallocation=full",
    "key-secret=sec0,iter-time=10,preallocation=metadata",
])
def test_create_messages_like_qemu(tmp_path, o):
    krc, kout, kerr = kimg("create", "-f", "luks", *SECRET, "-o", o, "x.luks", "1M", cwd=tmp_path)
    qrc, qout, qerr = qimg_timed("create", "-f", "luks", *SECRET, "-o", o, "x.luks", "1M",
                                 cwd=tmp_path)
    assert (krc, kout) == (qrc, qout)
    assert same_msg(kerr, qerr)
    if krc == 0:
        assert "disk size" in ok(kimg("info", tmp_path / "x.luks"))


def test_create_help_like_qemu():
    assert ok(kimg("create", "-f", "luks", "-o", "help", "x", "1M")) == \
        ok(qimg("create", "-f", "luks", "-o", "help", "x", "1M"))


def test_measure_like_qemu(tmp_path):
    # qemu-img measure -O luks times PBKDF2 too (seconds on a busy host): one call.
    (tmp_path / "s.raw").write_bytes(bytes(3 << 20))
    cmd = ["measure", *SECRET, "--output=json", "-O", "luks", "-o",
           "key-secret=sec0,cipher-alg=aes-128,cipher-mode=cbc", "-f", "raw", tmp_path / "s.raw"]
    assert ok(kimg(*cmd)) == ok(qimg_timed(*cmd))


@pytest.mark.parametrize("o", ["", ",cipher-alg=aes-192", ",cipher-alg=aes-128,cipher-mode=cbc"])
def test_measure_is_the_created_file_size(tmp_path, o):
    out = ok(kimg("measure", *SECRET, "-O", "luks", "-o", "key-secret=sec0" + o, "--size", "1M"))
    ok(kimg("create", "-q", "-f", "luks", *SECRET, "-o", "key-secret=sec0,iter-time=1" + o,
            tmp_path / "a.luks", "1M"))
    size = (tmp_path / "a.luks").stat().st_size
    assert out == f"required size: {size}\nfully allocated size: {size}\n"


@pytest.mark.parametrize("bad", ["cipher-alg=aes-999", "key-secret=nope", ""])
def test_measure_refusals_like_qemu(bad):
    cmd = ["measure", *SECRET, "-O", "luks", "--size", "1M"] + (["-o", bad] if bad else [])
    k, q = kimg(*cmd), qimg(*cmd)
    assert k[0] == q[0] == 1 and same_msg(k[2], q[2])


def test_resize_like_qemu(tmp_path):
    qcreate(tmp_path / "a.luks", "")
    qio(tmp_path / "a.luks", "write -P 0x42 0 1M")
    shutil.copy(tmp_path / "a.luks", tmp_path / "b.luks")
    ok(kimg("resize", *SECRET, "--image-opts", opts(tmp_path / "a.luks"), "3M"))
    ok(qimg("resize", *SECRET, "--image-opts", opts(tmp_path / "b.luks"), "3M"))
    assert (tmp_path / "a.luks").stat().st_size == (tmp_path / "b.luks").stat().st_size
    assert kraw(tmp_path / "a.luks", tmp_path) == qraw(tmp_path / "b.luks", tmp_path)
    k = kimg("resize", *SECRET, "--image-opts", opts(tmp_path / "a.luks"), "1M")
    q = qimg("resize", *SECRET, "--image-opts", opts(tmp_path / "b.luks"), "1M")
    assert k[0] == q[0] == 1 and same_msg(k[2], q[2])
    ok(kimg("resize", "--shrink", *SECRET, "--image-opts", opts(tmp_path / "a.luks"), "1M"))
    assert ok(kimg("info", tmp_path / "a.luks")).count("virtual size: 1 MiB") == 1


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("luks-base")
    ok(kimg("create", "-q", "-f", "luks", *SECRET, "-o", "key-secret=sec0,iter-time=10",
            d / "a.luks", "1M"))
    return d / "a.luks"


@pytest.mark.parametrize("how", ["none", "wrong", "unknown-id", "json-unknown-id"])
def test_open_refusals_like_qemu(tmp_path, base, how):
    args = {
        "none": ["convert", base, "-O", "raw", "o.raw"],
        "wrong": ["convert", *WRONG, "--image-opts", opts(base), "-O", "raw", "o.raw"],
        "unknown-id": ["convert", *SECRET, "--image-opts",
                       f"driver=luks,key-secret=sec9,file.filename={base}", "-O", "raw", "o.raw"],
        "json-unknown-id": ["convert", *SECRET, jname(base).replace("sec0", "sec9"), "-O", "raw",
                            "o.raw"],
    }[how]
    k, q = kimg(*args, cwd=tmp_path), qimg(*args, cwd=tmp_path)
    assert k[0] == q[0] == 1
    assert same_msg(k[2], q[2]), (k[2], q[2])
    assert not (tmp_path / "o.raw").exists() or how == "json-unknown-id"


def test_key_secret_refused_by_raw(tmp_path):
    (tmp_path / "r.raw").write_bytes(bytes(4096))
    cmd = ["info", *SECRET, "--image-opts", f"driver=raw,key-secret=sec0,file.filename=r.raw"]
    k, q = kimg(*cmd, cwd=tmp_path), qimg(*cmd, cwd=tmp_path)
    assert k[0] == q[0] == 1 and same_msg(k[2], q[2]), (k, q)


# (offset, bytes): hostile header fields.  QEMU's checks give its words; the keyslot
# material and payload ones are Kestrel's own (QEMU reads zeroes past the end).
DAMAGE = [
    ("stripes", 252, b"\xff\xff\xff\xff", "Keyslot 0 is corrupted (stripes -1 != 4000)"),
    ("key-offset", 248, b"\x7f\xff\xff\xff", "Keyslot 0 is overlapping with the encrypted payload"),
    ("key-offset-low", 248, b"\x00\x00\x00\x01", "Keyslot 0 is overlapping with the LUKS header"),
    ("cipher-mode", 40, b"zzz-plain64", "Cipher mode 'zzz' not supported"),
    ("hash", 72, b"md9", "Hash algorithm 'md9256' not supported"),
    ("key-bytes", 108, b"\x00\x00\x00\x07", "Algorithm 'aes' with key size 3 bytes not supported"),
    ("ivgen", 40, b"xts-plain65", "IV generator 'plain65' not supported"),
    ("af-stripe", 6000, b"\xde\xad\xbe\xef", "Invalid password, cannot unlock any keyslot"),
    ("mk-digest", 112, b"\x00\x01\x02\x03", "Invalid password, cannot unlock any keyslot"),
]


@pytest.mark.parametrize("name,off,data,msg", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_header_like_qemu(tmp_path, base, name, off, data, msg):
    img = tmp_path / "x.luks"
    shutil.copy(base, img)
    poke(img, off, data)
    cmd = ["convert", *SECRET, "--image-opts", opts(img), "-O", "raw", tmp_path / "o.raw"]
    k, q = kimg(*cmd), qimg(*cmd)
    assert k[0] == q[0] == 1
    assert k[2] == f"kestrel-img: Could not open '{opts(img)}': {msg}\n"
    assert same_msg(k[2], q[2])


# Bounded work: counts QEMU would spend hours on are refused before any PBKDF2.
@pytest.mark.parametrize("off,what", [(212, "Keyslot 0 iteration count"),
                                      (164, "LUKS master key iteration count")])
def test_absurd_iterations_refused_at_once(tmp_path, base, off, what):
    img = tmp_path / "x.luks"
    shutil.copy(base, img)
    poke(img, off, b"\xff\xff\xff\xff")
    t = time.monotonic()
    rc, out, err = kimg("convert", *SECRET, "--image-opts", opts(img), "-O", "raw",
                        tmp_path / "o.raw", timeout=20)
    assert time.monotonic() - t < 5
    assert rc == 1 and f"{what} 4294967295 is larger than Kestrel's limit 33554432" in err
    # info needs no key and shows the header as qemu-img does.
    assert ok(kimg("info", img)) == ok(qimg("info", img))


def test_truncated_header(tmp_path, base):
    for size in (6, 100, 591):
        img = tmp_path / f"t{size}.luks"
        img.write_bytes(base.read_bytes()[:size])
        rc, out, err = kimg("info", "-f", "luks", img)
        assert rc == 1
        assert f"LUKS header is truncated ({size} of 592 bytes)" in err


def test_payload_past_end(tmp_path, base):
    img = tmp_path / "x.luks"
    img.write_bytes(base.read_bytes()[:1 << 20])
    rc, out, err = kimg("info", img)
    assert rc == 1 and "LUKS payload offset 2068480 is past the end of the file" in err


def test_write_through_kestrel_keeps_header(tmp_path, base):
    """Unaligned writes (read-modify-write of partial sectors) land where qemu reads them."""
    img = tmp_path / "x.luks"
    shutil.copy(base, img)
    src = tmp_path / "p.raw"
    src.write_bytes(os.urandom(1 << 20))
    ok(kimg("convert", "-n", *SECRET, "-f", "raw", src, "--target-image-opts", opts(img)))
    ok(qimg("compare", *SECRET, "-f", "raw", src, jname(img)))
    ok(kimg("bench", *SECRET, "-w", "-c", "50", "-s", "1000", "-o", "3",
            "--image-opts", opts(img)))
    assert kraw(img, tmp_path) == qraw(img, tmp_path)


def test_lock_refuses_while_qemu_io_holds(tmp_path, base):
    img = tmp_path / "x.luks"
    shutil.copy(base, img)
    before = img.read_bytes()
    # qemu-io takes its final locks once the key is unlocked: its prompt says it is ready.
    h = subprocess.Popen(["qemu-io", *SECRET, "--image-opts", opts(img)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert h.stdout.read(9) == b"qemu-io> "
        rc, out, err = kimg("resize", *SECRET, "--image-opts", opts(img), "2M")
    finally:
        h.communicate(b"", timeout=30)
    assert rc == 1 and 'Failed to get shared "write" lock' in err, err
    assert img.read_bytes() == before


needs_cryptsetup = pytest.mark.skipif(shutil.which("cryptsetup") is None,
                                      reason="cryptsetup (cryptsetup-bin) is not installed")


def csformat(path, *args, size=4 << 20, pw=b"kestrel-pw"):
    """cryptsetup formats a plain file (no loop device, no root needed)."""
    with open(path, "wb") as f:
        f.truncate(size)
    subprocess.run(["cryptsetup", "luksFormat", "-q", "--key-file=-", *args, str(path)],
                   input=pw, check=True, capture_output=True)


# cryptsetup's own spelling of the combinations (-c cipher-mode-ivgen, -s key bits, -h hash).
CS_LUKS1 = [
    ["-c", "aes-xts-plain64", "-s", "512", "-h", "sha256"],
    ["-c", "aes-xts-plain64", "-s", "256", "-h", "sha1"],
    ["-c", "aes-cbc-essiv:sha256", "-s", "256", "-h", "sha512"],
    ["-c", "aes-cbc-plain64", "-s", "128", "-h", "sha256"],
    ["-c", "aes-cbc-essiv:sha256", "-s", "192", "-h", "sha256"],
]


@needs_cryptsetup
@pytest.mark.parametrize("args", CS_LUKS1, ids=[" ".join(a[1::2]) for a in CS_LUKS1])
def test_cryptsetup_luks1_opens_in_kestrel(tmp_path, args):
    img = tmp_path / "c.luks"
    csformat(img, "--type", "luks1", "--pbkdf-force-iterations", "1000", *args)
    # Data written through Kestrel reads back through QEMU and the other way round.
    qio_ok = "192" not in args
    if qio_ok:
        qio(img, "write -P 0x5a 0 64k", "write -P 0x11 1000k 3k")
    else:
        src = tmp_path / "p.raw"
        src.write_bytes(os.urandom(1 << 20))
        ok(kimg("convert", "-n", *SECRET, "-f", "raw", src, "--target-image-opts", opts(img)))
    data = kraw(img, tmp_path)
    payload = int(ok(kimg("info", img)).split("payload offset: ")[1].split()[0])
    assert len(data) == (4 << 20) - payload
    if qio_ok:
        assert data == qraw(img, tmp_path)
        assert ok(kimg("info", img)) == ok(qimg("info", img))
    else:
        assert data[:1 << 20] == (tmp_path / "p.raw").read_bytes()
    k = kimg("convert", *WRONG, "--image-opts", opts(img), "-O", "raw", tmp_path / "o.raw")
    assert k[0] == 1 and "Invalid password, cannot unlock any keyslot" in k[2]


@needs_cryptsetup
@pytest.mark.parametrize("combo", [c for c in COMBOS if "md5" not in c and "ecb" not in c
                                   and "ctr" not in c] + [",cipher-alg=aes-192,cipher-mode=cbc"])
def test_kestrel_made_passes_cryptsetup(tmp_path, combo):
    """cryptsetup's own code unlocks Kestrel's keyslot and reads its header; the wrong
    passphrase fails there too.  (Reading the payload through dm-crypt needs
    device-mapper, which test_cryptsetup_dm_reads_kestrel_data checks where it exists.)"""
    img = tmp_path / "k.luks"
    ok(kimg("create", "-q", "-f", "luks", *SECRET, "-o", "key-secret=sec0,iter-time=10" + combo,
            img, "1M"))
    for pw, rc in ((b"kestrel-pw", 0), (b"wrong", 2)):
        p = subprocess.run(["cryptsetup", "luksOpen", "--test-passphrase", "--key-file=-",
                            str(img)], input=pw, capture_output=True)
        assert p.returncode == rc, p.stderr
    dump = subprocess.run(["cryptsetup", "luksDump", str(img)], capture_output=True, text=True,
                          check=True).stdout
    assert "Version:       \t1" in dump and "Key Slot 0: ENABLED" in dump


def _dm_reason():
    """Why dm-crypt cannot be used here, as measured (None: it can)."""
    if shutil.which("cryptsetup") is None or shutil.which("losetup") is None:
        return "cryptsetup or losetup is not installed"
    if os.geteuid() != 0:
        return "not root: loop devices and device-mapper need root"
    if not os.path.exists("/dev/mapper/control"):
        return "no /dev/mapper/control: device-mapper is not available on this host"
    p = subprocess.run(["dmsetup", "version"], capture_output=True, text=True) \
        if shutil.which("dmsetup") else None
    if p is not None and p.returncode != 0:
        return "device-mapper is not available: " + " ".join(p.stderr.split())
    return None


@pytest.mark.skipif(_dm_reason() is not None, reason=str(_dm_reason()))
def test_cryptsetup_dm_reads_kestrel_data(tmp_path):
    img, src = tmp_path / "k.luks", tmp_path / "src.raw"
    src.write_bytes(os.urandom(1 << 20))
    ok(kimg("convert", *SECRET, "-O", "luks", "-o", "key-secret=sec0,iter-time=10", src, img))
    loop = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True,
                          check=True).stdout.strip()
    name = f"kestrel-luks-{os.getpid()}"
    try:
        p = subprocess.run(["cryptsetup", "luksOpen", "--key-file=-", loop, name],
                           input=b"kestrel-pw", capture_output=True)
        if p.returncode != 0:
            pytest.skip("cryptsetup luksOpen failed here: " + p.stderr.decode().strip())
        try:
            with open(f"/dev/mapper/{name}", "rb") as f:
                assert f.read(1 << 20) == src.read_bytes()
        finally:
            subprocess.run(["cryptsetup", "luksClose", name], check=True)
    finally:
        subprocess.run(["losetup", "-d", loop], check=True)


def plaintext(path, size):
    """Numbered sectors: any misplaced or mis-decrypted sector shows."""
    path.write_bytes(b"".join(b"kestrel sector %08d " % i + bytes(512 - 24)
                              for i in range(size // 512)))


# cryptsetup encrypts a plain file offline (reencrypt --encrypt: no dm needed), so the
# payload's plaintext is known: LUKS1 and LUKS2, both KDFs, sector sizes, IV generators.
# LUKS1 offline encryption needs device-mapper in cryptsetup 2.6, so the LUKS1 cases are
# encrypted as LUKS2 and then converted (cryptsetup convert --type luks1, offline).
CS_ENCRYPT = [
    ["--type", "luks2", "--pbkdf", "pbkdf2", "-c", "aes-xts-plain64", "-s", "256", "luks1"],
    ["--type", "luks2", "--pbkdf", "pbkdf2", "-c", "aes-cbc-essiv:sha256", "-s", "192", "-h",
     "sha1", "luks1"],
    ["--type", "luks2", "--pbkdf", "pbkdf2"],
    ["--type", "luks2", "--pbkdf", "pbkdf2", "--sector-size", "4096", "-c", "aes-cbc-plain64",
     "-s", "128"],
    ["--type", "luks2", "--pbkdf", "argon2id", "--pbkdf-memory", "32", "--sector-size", "4096"],
    ["--type", "luks2", "--pbkdf", "argon2i", "--pbkdf-memory", "64", "-c",
     "aes-cbc-essiv:sha256", "-s", "256"],
]


@needs_cryptsetup
@pytest.mark.parametrize("args", CS_ENCRYPT, ids=["-".join(a[1::2]) + a[-1][4:] * (len(a) % 2)
                                                  for a in CS_ENCRYPT])
def test_cryptsetup_encrypted_data_reads_in_kestrel(tmp_path, args):
    img, plain = tmp_path / "c.img", tmp_path / "plain"
    plaintext(plain, 16 << 20)
    shutil.copy(plain, img)
    iters = "4" if "argon2" in " ".join(args) else "1000"
    to_luks1 = args[-1] == "luks1"
    args = args[:-1] if to_luks1 else args
    subprocess.run(["cryptsetup", "reencrypt", "-q", "--encrypt", "--reduce-device-size", "8M",
                    "--pbkdf-force-iterations", iters, "--key-file=-", *args, str(img)],
                   input=b"kestrel-pw", check=True, capture_output=True)
    if to_luks1:
        subprocess.run(["cryptsetup", "convert", "-q", "--type", "luks1", str(img)], check=True,
                       capture_output=True)
        assert ok(kimg("info", img)).count("file format: luks") == 1
    rc, out, err = kimg("convert", *SECRET, "--image-opts", opts(img), "-O", "raw",
                        tmp_path / "o.raw")
    if "needs libargon2" in err:
        # Built without libargon2: refused by name, never misread.
        assert rc == 1 and "Keyslot KDF argon2" in err
        return
    assert rc == 0, err
    data = (tmp_path / "o.raw").read_bytes()
    assert data[:8 << 20] == plain.read_bytes()[:8 << 20]
    # Unaligned writes through Kestrel (read-modify-write of larger sectors) read back.
    patch = tmp_path / "patch.raw"
    patch.write_bytes(os.urandom(5000))
    ok(kimg("convert", "-n", *SECRET, "-f", "raw", patch, "--target-image-opts", opts(img)))
    data2 = kraw(img, tmp_path)
    assert data2[:5000] == patch.read_bytes() and data2[5000:8 << 20] == data[5000:8 << 20]
    if to_luks1 and "192" not in args:
        assert data2 == qraw(img, tmp_path)


@needs_cryptsetup
def test_luks2_damaged_header(tmp_path):
    img = tmp_path / "c.img"
    csformat(img, "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
             size=20 << 20)
    good = img.read_bytes()
    cases = [(4096 + 30, b"X", "LUKS2 header checksum does not match"),
             (8, b"\x00\x00\x00\x00\x7f\x00\x00\x00", "LUKS2 header size 2130706432 is invalid")]
    for off, data, msg in cases:
        img.write_bytes(good)
        poke(img, off, data)
        rc, out, err = kimg("info", "-f", "luks", img)
        assert rc == 1 and msg in err, err
    img.write_bytes(good[:8192])
    rc, out, err = kimg("info", "-f", "luks", img)
    assert rc == 1 and "LUKS2 header size 16384 is invalid" in err, err
    img.write_bytes(good[:3000])
    rc, out, err = kimg("info", "-f", "luks", img)
    assert rc == 1 and "LUKS header is truncated (3000 of 4096 bytes)" in err, err


# The VMM: -object secret and key-secret= on -drive and -blockdev.  The disks open before
# KVM is needed, so the refusals are checked on any host; reading a disk needs a guest.
KESTREL = BLOCK_IO.parent.parent / "kestrel"


def vmm(*args):
    p = subprocess.run([str(KESTREL), "-m", "128m", "-nographic", *map(str, args)],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stderr


def test_vmm_drive_refuses_wrong_key_and_keyless_formats(tmp_path, base):
    rc, err = vmm(*WRONG, "-drive", f"file={base},format=luks,key-secret=sec0,if=virtio")
    assert rc != 0 and f"-drive file={base}: Invalid password, cannot unlock any keyslot" in err
    rc, err = vmm(*SECRET, "-drive", f"file={base},format=luks,if=virtio")
    assert rc != 0 and "Parameter 'key-secret' is required for cipher" in err
    rc, err = vmm(*SECRET, "-drive", f"file={base},format=luks,key-secret=nope,if=virtio")
    assert rc != 0 and "No secret with id" in err
    (tmp_path / "r.raw").write_bytes(bytes(1 << 20))
    rc, err = vmm(*SECRET, "-drive", f"file={tmp_path / 'r.raw'},format=raw,key-secret=sec0")
    assert rc != 0 and "Block format 'raw' does not support the option 'key-secret'" in err
    rc, err = vmm(*WRONG, "-blockdev", f"driver=luks,node-name=d0,file.driver=file,"
                  f"file.filename={base},key-secret=sec0")
    assert rc != 0 and "Invalid password, cannot unlock any keyslot" in err
    # The right key gets past the disks (to KVM, or to the guest where there is one).
    rc, err = vmm(*SECRET, "-drive", f"file={base},format=luks,key-secret=sec0,if=virtio",
                  "-kernel", "/nonexistent")
    assert "keyslot" not in err and "key-secret" not in err


@pytest.mark.guest
def test_guest_reads_a_luks_disk_made_by_qemu_img(probe, tmp_path):
    from test_virtio import drive, pattern, run_probe, SECTOR
    disk = tmp_path / "disk.luks"
    qcreate(disk, "", "64M")
    raw = tmp_path / "pattern.raw"
    raw.write_bytes(pattern(7, 100 * SECTOR, 300 * SECTOR))
    subprocess.run(["qemu-io", *SECRET, "-c", f"write -s {raw} {100 * SECTOR} {300 * SECTOR}",
                    "--image-opts", opts(disk)], check=True, capture_output=True)
    status, out, err = run_probe(*SECRET, *drive(disk, "luks", extra=",key-secret=sec0"),
                                 "-kernel", probe,
                                 scenario="blk-read,pattern=7,sectors=300,offset=100")
    assert status == 0 and "probe: blk: verified" in out, err
    assert qraw(disk, tmp_path)[100 * SECTOR:400 * SECTOR] == raw.read_bytes()


NEW = ["--object", "secret,id=sec1,data=second-pw"]


@pytest.mark.parametrize("o", [
    "state=active", "state=active,new-secret=sec1,keyslot=0", "state=inactive",
    "state=inactive,keyslot=0", "state=inactive,keyslot=3", "state=inactive,old-secret=sec1",
    "state=inactive,new-secret=sec1,keyslot=1", "state=inactive,keyslot=1,old-secret=sec0",
    "state=bogus", "state=active,new-secret=sec1,keyslot=9", "state=active,new-secret=zz",
    "state=active,new-secret=sec1,old-secret=sec0", "iter-time=10", "help",
])
def test_amend_refusals_like_qemu(tmp_path, base, o):
    for name in ("k.luks", "q.luks"):
        shutil.copy(base, tmp_path / name)
    k = kimg("amend", *SECRET, *NEW, "--image-opts", opts(tmp_path / "k.luks"), "-o", o)
    q = qimg("amend", *SECRET, *NEW, "--image-opts", opts(tmp_path / "q.luks"), "-o", o)
    assert (k[0], k[1]) == (q[0], q[1]) and same_msg(k[2], q[2]), (k, q)
    assert (tmp_path / "k.luks").read_bytes() == base.read_bytes()


def test_amend_adds_and_erases_keyslots(tmp_path, base):
    img = tmp_path / "a.luks"
    shutil.copy(base, img)
    before = kraw(img, tmp_path)
    ok(kimg("amend", *SECRET, *NEW, "--image-opts", opts(img), "-o",
            "state=active,new-secret=sec1,iter-time=10"))
    info = ok(qimg("info", "--output=json", img))
    assert info.count('"active": true') == 2
    # QEMU and cryptsetup open the new keyslot; the data is the same through it.
    second = f"driver=luks,key-secret=sec1,file.filename={img}"
    ok(qimg("convert", *NEW, "--image-opts", second, "-O", "raw", tmp_path / "q.raw"))
    assert (tmp_path / "q.raw").read_bytes() == before
    if shutil.which("cryptsetup"):
        subprocess.run(["cryptsetup", "luksOpen", "--test-passphrase", "--key-file=-", str(img)],
                       input=b"second-pw", check=True, capture_output=True)
    # Erasing the first keyslot by its password leaves only the new one.
    ok(kimg("amend", *SECRET, *NEW, "--image-opts", second, "-o", "state=inactive,old-secret=sec0"))
    k = kimg("convert", *SECRET, "--image-opts", opts(img), "-O", "raw", tmp_path / "o.raw")
    assert k[0] == 1 and "Invalid password, cannot unlock any keyslot" in k[2]
    ok(kimg("convert", *NEW, "--image-opts", second, "-O", "raw", tmp_path / "k.raw"))
    assert (tmp_path / "k.raw").read_bytes() == before
    assert ok(qimg("info", "--output=json", img)).count('"active": true') == 1
