"""Kestrel's NBD client against a hostile server (issue #20, "Faults"): a scripted server
here does a real fixed-newstyle handshake, then answers each request wrongly in one way:
a wrong export, a size past 2^63, short reads, oversized chunks and simple replies, the
connection cut mid-reply, a reply to a request never sent, error chunks.  kestrel-img must
end with a clear error in bounded time (never a crash, a hang, or an image written from
bytes the server never sent); qemu-img 7.2 is asked the same where it has a view."""
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from test_img_helpers import KIMG, SANITIZER_REPORT
from test_nbd import needs_libnbd

pytestmark = needs_libnbd

REPLY_MAGIC = 0x3e889045565a9
MiB = 1 << 20


def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def chunk(cookie, typ, payload, flags=1):
    """A structured reply chunk (proto.md "Structured reply chunk message")."""
    return struct.pack(">IHHQI", 0x668e33ef, flags, typ, cookie, len(payload)) + payload


def simple(cookie, data=b"", err=0):
    return struct.pack(">IIQ", 0x67446698, err, cookie) + data


def data_chunk(c, cookie, off, data, flags=1):
    c.sendall(chunk(cookie, 1, struct.pack(">Q", off) + data, flags))


def status_all_data(c, cookie, ln):
    c.sendall(chunk(cookie, 5, struct.pack(">III", 1, ln, 0)))


class FakeServer:
    """Serves on a Unix socket: a real handshake (structured replies, base:allocation),
    then reply(conn, type, cookie, offset, length) answers each request."""

    def __init__(self, path, reply, size=MiB, export=b""):
        self.path, self.reply, self.size, self.export = path, reply, size, export
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(path))
        self.listener.listen(4)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def option_reply(self, c, opt, typ, data=b""):
        c.sendall(struct.pack(">QIII", REPLY_MAGIC, opt, typ, len(data)) + data)

    def serve(self, c):
        try:
            if self.handshake(c):
                self.transmit(c)
        except (EOFError, OSError):
            pass
        finally:
            c.close()

    def handshake(self, c):
        c.sendall(b"NBDMAGIC" + b"IHAVEOPT" + struct.pack(">H", 3))
        recvn(c, 4)
        while True:
            _, opt, ln = struct.unpack(">QII", recvn(c, 16))
            data = recvn(c, ln)
            if opt == 8:                                    # STRUCTURED_REPLY
                self.option_reply(c, opt, 1)
            elif opt in (9, 10):                            # LIST/SET_META_CONTEXT
                self.option_reply(c, opt, 4, struct.pack(">I", 1) + b"base:allocation")
                self.option_reply(c, opt, 1)
            elif opt in (6, 7):                             # INFO, GO
                nl = struct.unpack(">I", data[:4])[0]
                if data[4:4 + nl] != self.export:
                    self.option_reply(c, opt, 0x80000006, b"no such export")
                    continue
                self.option_reply(c, opt, 3, struct.pack(">HQH", 0, self.size, 0x1 | 0x4 | 0x80))
                self.option_reply(c, opt, 1)
                if opt == 7:
                    return True
            elif opt == 2:                                  # ABORT
                self.option_reply(c, opt, 1)
                return False
            else:
                self.option_reply(c, opt, 0x80000001)

    def transmit(self, c):
        while True:
            _, _, typ, cookie, off, ln = struct.unpack(">IHHQQI", recvn(c, 28))
            if typ == 1:
                recvn(c, ln)
            if typ == 2:
                return
            if typ == 7:
                status_all_data(c, cookie, ln)
            else:
                self.reply(c, typ, cookie, off, ln)

    def close(self):
        self.listener.close()


@pytest.fixture
def fake(tmp_path):
    made = []

    def start(reply, **kw):
        s = FakeServer(tmp_path / f"f{len(made)}.sock", reply, **kw)
        made.append(s)
        return f"nbd+unix:///{kw.get('export', b'').decode()}?socket={s.path}"
    yield start
    for s in made:
        s.close()


def run(prog, *args):
    t = time.monotonic()
    p = subprocess.run([str(prog), *map(str, args)], capture_output=True, text=True, timeout=30)
    assert time.monotonic() - t < 20, f"{prog} took too long against the server"
    assert not SANITIZER_REPORT.search(p.stderr), p.stderr
    return p


def good(c, typ, cookie, off, ln):
    data_chunk(c, cookie, off, bytes([0xaa]) * ln)


HOSTILE = {
    # Half of what was asked, then DONE: the rest was never sent.
    "short-read": lambda c, t, k, o, n: data_chunk(c, k, o, b"\xaa" * (n // 2)),
    # More bytes than the request's length, in one chunk.
    "oversized-chunk": lambda c, t, k, o, n: data_chunk(c, k, o, b"\xaa" * (n + 4096)),
    # A simple reply with data, forbidden after structured replies, and too long.
    "oversized-simple": lambda c, t, k, o, n: c.sendall(simple(k, b"\xaa" * (n + 100))),
    # A third of the data, then the connection goes.
    "cut-mid-reply": lambda c, t, k, o, n: (c.sendall(chunk(k, 1, struct.pack(">Q", o)
                                                            + b"\xaa" * n)[:n // 3]),
                                            c.shutdown(socket.SHUT_RDWR)),
    # An answer to a request never sent.
    "wrong-cookie": lambda c, t, k, o, n: data_chunk(c, k + 1000, o, b"\xaa" * n),
    # Data placed outside the request.
    "offset-outside": lambda c, t, k, o, n: data_chunk(c, k, o + MiB, b"\xaa" * n),
    # The server's error, with its message.
    "error-chunk": lambda c, t, k, o, n: c.sendall(chunk(k, 32769, struct.pack(">IH", 5, 4)
                                                         + b"boom")),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_read_replies_end_in_a_clear_error(fake, tmp_path, name):
    uri = fake(HOSTILE[name])
    out = tmp_path / "out.raw"
    p = run(KIMG, "convert", "-f", "raw", "-O", "raw", uri, out)
    assert p.returncode == 1, f"{name}: kestrel-img accepted the reply"
    assert "error while reading" in p.stderr, p.stderr
    # Probing reads through the same path: the same clear end.
    p = run(KIMG, "info", uri)
    assert p.returncode == 1 and "Could not read image" in p.stderr, p.stderr


def test_the_fake_server_serves_well_when_it_answers_well(fake, tmp_path):
    """The control: the same server, answering properly, is read by both programs."""
    uri = fake(good)
    for prog in (KIMG, "qemu-img"):
        out = tmp_path / f"{os.path.basename(str(prog))}.raw"
        assert run(prog, "convert", "-f", "raw", "-O", "raw", uri, out).returncode == 0
        assert out.read_bytes() == b"\xaa" * MiB


def test_a_wrong_export_name_gets_qemu_img_s_message(fake):
    uri = fake(good, export=b"right").replace("/right?", "/wrong?")
    for prog in (KIMG, "qemu-img"):
        p = run(prog, "info", uri)
        assert p.returncode == 1 and "Requested export not available" in p.stderr, p.stderr


def test_an_export_size_past_2_63_is_refused(fake):
    p = run(KIMG, "info", fake(good, size=(1 << 63) + 5))
    assert p.returncode == 1 and "more than 2^63 - 1 bytes" in p.stderr, p.stderr


def test_a_server_that_closes_after_the_handshake(fake, tmp_path):
    def hang_up(c, t, k, o, n):
        c.shutdown(socket.SHUT_RDWR)
    p = run(KIMG, "convert", "-f", "raw", "-O", "raw", fake(hang_up), tmp_path / "o.raw")
    assert p.returncode == 1 and "error while reading" in p.stderr, p.stderr
