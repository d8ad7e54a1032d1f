"""A small RFB client (RFC 6143) for test_vnc.py: handshake, VNC auth, raw
updates, input events, and the raw bytes hostile tests need."""
import socket
import struct
import zlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def des_encrypt(password, data):
    """VNC authentication (RFB 7.2.2): DES with the password's bits mirrored per byte."""
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in password.encode()[:8].ljust(8, b"\0"))
    enc = Cipher(algorithms.TripleDES(key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def vncpasswd_file(password, path):
    """The obfuscated password file vncsnapshot -passwd reads (vncauth.c's fixed key)."""
    fixed = bytes([23, 82, 107, 6, 35, 78, 88, 7])
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in fixed)
    enc = Cipher(algorithms.TripleDES(key), modes.ECB()).encryptor()
    with open(path, "wb") as f:
        f.write(enc.update(password.encode()[:8].ljust(8, b"\0")) + enc.finalize())


class AuthFailed(Exception):
    pass


class Client:
    def __init__(self, addr, password=None, shared=True, family=socket.AF_INET, timeout=5):
        self.s = socket.socket(family, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(addr)
        self.version = self.recv(12)
        self.s.sendall(b"RFB 003.008\n")
        n = self.recv(1)[0]
        if n == 0:
            raise AuthFailed(self.recv(struct.unpack(">I", self.recv(4))[0]).decode())
        self.types = self.recv(n)
        if 2 in self.types:
            self.s.sendall(b"\x02")
            challenge = self.recv(16)
            self.s.sendall(des_encrypt(password or "", challenge))
        else:
            self.s.sendall(b"\x01")
        result = struct.unpack(">I", self.recv(4))[0]
        if result != 0:
            raise AuthFailed(self.recv(struct.unpack(">I", self.recv(4))[0]).decode())
        self.s.sendall(bytes([1 if shared else 0]))
        self.width, self.height = struct.unpack(">HH", self.recv(4))
        self.recv(16)   # pixel format
        self.name = self.recv(struct.unpack(">I", self.recv(4))[0])
        # 32 bpp, little endian, true colour, red at 16 as the server's surface
        self.s.sendall(struct.pack(">B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255,
                                   16, 8, 0))

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"server closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def set_encodings(self, encs):
        self.s.sendall(struct.pack(">BxH", 2, len(encs)) + b"".join(
            struct.pack(">i", e) for e in encs))

    def request(self, incremental=False, x=0, y=0, w=None, h=None):
        self.s.sendall(struct.pack(">BBHHHH", 3, int(incremental), x, y,
                                   w if w is not None else self.width,
                                   h if h is not None else self.height))

    def read_update(self):
        """One FramebufferUpdate: a list of (x, y, w, h, encoding, payload)."""
        while True:
            t = self.recv(1)[0]
            if t == 0:
                break
            if t == 2:          # Bell
                continue
            if t == 3:          # ServerCutText
                self.recv(3)
                self.recv(struct.unpack(">I", self.recv(4))[0])
                continue
            raise AssertionError(f"unexpected server message {t}")
        self.recv(1)
        n = struct.unpack(">H", self.recv(2))[0]
        rects = []
        for _ in range(n):
            x, y, w, h, enc = struct.unpack(">HHHHi", self.recv(12))
            payload = b""
            if enc == 0:
                payload = self.recv(w * h * 4)
            elif enc == -223:   # DesktopSize
                self.width, self.height = w, h
            elif enc not in (-258, -257):
                # other encodings: the caller reads the payload itself
                rects.append((x, y, w, h, enc, None))
                return rects
            rects.append((x, y, w, h, enc, payload))
        return rects

    def key(self, keysym, down):
        self.s.sendall(struct.pack(">BBxxI", 4, int(down), keysym))

    def qemu_key(self, keysym, qnum, down):
        self.s.sendall(struct.pack(">BBHII", 255, 0, int(down), keysym, qnum))

    def pointer(self, mask, x, y):
        self.s.sendall(struct.pack(">BBHH", 5, mask, x, y))

    def close(self):
        self.s.close()


def png_pixels(path):
    """(width, height, rows of (r, g, b)) of an 8-bit RGB/RGBA PNG (gvnccapture's)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = 4 if ctype == 6 else 3
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xff
            elif f == 2:
                line[i] = (line[i] + b) & 0xff
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xff
        rows.append(bytes(line))
        prev = line
    return w, h, [[tuple(r[x * bpp:x * bpp + 3]) for x in range(w)] for r in rows]
