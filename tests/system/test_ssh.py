"""ssh disks (issue #20): files on an SSH server, read and written over SFTP through
libssh, beside qemu-img 7.2's ssh driver on the same server.  Each test's sshd listens on
a loopback port with its own host key and authorized key (in the test's directory), and
the client side authenticates through an ssh-agent the test starts, as QEMU's driver
requires.  Host key checking is on: by known_hosts, or by a fingerprint."""
import base64
import hashlib
import os
import shutil
import socket
import subprocess
import time

import pytest

from test_img_helpers import KIMG, free_port, same_as_qemu_img

SSHD = "/usr/sbin/sshd"


def ssh_supported():
    p = subprocess.run([str(KIMG), "info", "ssh://127.0.0.1:1/x"], capture_output=True,
                       text=True)
    return "Unknown protocol" not in p.stderr


def available():
    """The protocol-server interface (helper-storage.md): libssh, sshd, root."""
    if not ssh_supported():
        return False, "kestrel-img built without libssh"
    if not os.path.exists(SSHD) or not shutil.which("ssh-agent"):
        return False, "openssh-server/ssh-agent not installed"
    if os.geteuid() != 0:
        return False, "sshd needs root for its privilege separation"
    return True, ""


pytestmark = [
    pytest.mark.skipif(not ssh_supported(), reason="kestrel-img built without libssh"),
    pytest.mark.skipif(not os.path.exists(SSHD) or not shutil.which("ssh-agent"),
                       reason="openssh-server/ssh-agent not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="sshd needs root for its privilege separation"),
]


class Server:
    """sshd and an ssh-agent; clients need env (SSH_AUTH_SOCK), as QEMU's driver does."""
    name = "ssh"

    def __init__(self, d):
        self.dir, self.blanks = d, 0
        for name in ("hostkey", "userkey"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                           check=True)
        shutil.copy(d / "userkey.pub", d / "authorized_keys")
        self.port = free_port()
        (d / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d}/hostkey\n"
            f"AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            f"StrictModes no\nPidFile {d}/sshd.pid\nSubsystem sftp internal-sftp\n")
        os.makedirs("/run/sshd", exist_ok=True)
        self.sshd = subprocess.Popen([SSHD, "-D", "-f", str(d / "sshd_config"), "-E",
                                      str(d / "sshd.log")])
        agent = subprocess.run(["ssh-agent", "-s", "-a", str(d / "agent.sock")],
                               capture_output=True, text=True, check=True).stdout
        self.agent_pid = int(agent.split("SSH_AGENT_PID=")[1].split(";")[0])
        self.env = dict(os.environ, SSH_AUTH_SOCK=str(d / "agent.sock"))
        subprocess.run(["ssh-add", "-q", str(d / "userkey")], env=self.env, check=True)
        end = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            if time.monotonic() > end or self.sshd.poll() is not None:
                raise RuntimeError("sshd did not start: " + (d / "sshd.log").read_text())
            time.sleep(0.05)
        blob = base64.b64decode((d / "hostkey.pub").read_text().split()[1])
        self.sha256 = hashlib.sha256(blob).hexdigest()
        self.md5 = hashlib.md5(blob).hexdigest()

    def url(self, path, check=None):
        check = check or f"sha256:{self.sha256}"
        return f"ssh://root@127.0.0.1:{self.port}{path}?host_key_check={check}"

    def blank(self, size):
        self.blanks += 1
        path = self.dir / f"blank{self.blanks}.raw"
        with open(path, "wb") as f:
            f.truncate(size)
        return self.url(path)

    def url_for(self, name):
        return self.url(self.dir / name)

    def stop(self):
        if self.sshd.poll() is None:
            self.sshd.terminate()
            self.sshd.wait(10)
        if self.agent_pid:
            os.kill(self.agent_pid, 15)
            self.agent_pid = None


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    s.stop()


def run(tool, *args, env):
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, env=env)


def same(server, *args):
    return same_as_qemu_img(*args, env=server.env)


def disk(path, size=8 << 20):
    with open(path, "wb") as f:
        f.write(os.urandom(2 << 20))
        f.truncate(size)
    return path


def test_info_map_and_compare_match_qemu_img(server, tmp_path):
    d = disk(tmp_path / "d.raw")
    url = server.url(d)
    same(server, "info", url)
    same(server, "info", "--output=json", url)
    same(server, "map", "--output=json", url)
    same(server, "compare", "-f", "raw", "-F", "raw", str(d), url)
    alone = (f'json:{{"driver":"ssh","server":{{"host":"127.0.0.1","port":"{server.port}"}},'
             f'"path":"{d}","user":"root","host-key-check":{{"mode":"hash","type":"md5",'
             f'"hash":"{server.md5}"}}}}')
    assert "file format: ssh" in same(server, "info", alone).stdout


def test_host_keys_are_checked(server, tmp_path):
    d = disk(tmp_path / "d.raw")
    # No known_hosts entry for this port: refused, as QEMU refuses.
    k = same(server, "info", f"ssh://root@127.0.0.1:{server.port}{d}")
    assert k.returncode == 1 and "no host key was found in known_hosts" in k.stderr
    k = same(server, "info", server.url(d, "md5:00112233"))
    assert "does not match host_key_check" in k.stderr
    wrong = "0" * 64
    k = same(server, "info", server.url(d, f"sha256:{wrong}"))
    assert k.returncode == 1
    colons = ":".join(server.sha256[i:i + 2] for i in range(0, 64, 2)).upper()
    assert run(str(KIMG), "info", server.url(d, f"sha256:{colons}"),
               env=server.env).returncode == 0
    assert same(server, "info", server.url(d, "no")).returncode == 0


def test_writes_resize_and_qcow2_over_sftp(server, tmp_path):
    src = disk(tmp_path / "src.raw")
    target = tmp_path / "t.raw"
    target.write_bytes(b"\xff" * (8 << 20))
    k = run(str(KIMG), "convert", "-n", "-O", "raw", str(src), server.url(target),
            env=server.env)
    assert k.returncode == 0, k.stderr
    assert target.read_bytes() == src.read_bytes()
    same(server, "resize", "-f", "raw", server.url(target), "16M")
    assert target.stat().st_size == 16 << 20
    k = same(server, "resize", "-f", "raw", "--shrink", server.url(target), "4M")
    assert k.returncode == 1 and "does not support shrinking" in k.stderr
    q = tmp_path / "q.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(q), "8M"], check=True)
    k = run(str(KIMG), "convert", "-n", "-f", "raw", "-O", "qcow2", str(src), server.url(q),
            env=server.env)
    assert k.returncode == 0, k.stderr
    assert subprocess.run(["qemu-img", "check", str(q)], capture_output=True).returncode == 0
    assert subprocess.run(["qemu-img", "compare", str(src), str(q)],
                          capture_output=True).returncode == 0


def test_errors_match_qemu_img(server, tmp_path):
    d = disk(tmp_path / "d.raw")
    for url in (server.url(tmp_path / "nosuch"), "ssh://root@127.0.0.1:1/x",
                server.url(d, "bogus")):
        k = same(server, "info", url)
        assert k.returncode == 1
    env = dict(server.env, SSH_AUTH_SOCK="")
    q = run("qemu-img", "info", server.url(d), env=env)
    k = run(str(KIMG), "info", server.url(d), env=env)
    assert k.returncode == q.returncode == 1
    assert k.stderr.split(": ", 2)[2] == q.stderr.split(": ", 2)[2]
    assert "ssh-agent" in k.stderr


def test_the_server_interface_gives_new_zero_targets_and_names(server, tmp_path):
    """bench/storage's interface (helper-storage.md): blank() a new zero-filled file of
    its size, url_for() the name of one that does not exist yet; stop() idempotent."""
    a, b = server.blank(1 << 20), server.blank(2 << 20)
    assert a != b
    assert '"virtual-size": 1048576' in same(server, "info", "--output=json", a).stdout
    zero = tmp_path / "zero.raw"
    zero.write_bytes(bytes(1 << 20))
    same(server, "compare", "-f", "raw", "-F", "raw", str(zero), a)
    src = disk(tmp_path / "src.raw", 2 << 20)
    k = run(str(KIMG), "convert", "-n", "-O", "raw", str(src), b, env=server.env)
    assert k.returncode == 0, k.stderr
    same(server, "compare", "-f", "raw", "-F", "raw", str(src), b)
    new = server.url_for("new.raw")
    assert not (tmp_path / "new.raw").exists()
    q = run("qemu-img", "create", "-q", "-f", "raw", new, "1M", env=server.env)
    assert q.returncode == 0 and (tmp_path / "new.raw").stat().st_size == 1 << 20, q.stderr
    server.stop()
    server.stop()
    assert server.sshd.poll() is not None


def test_pipelined_reads_return_every_byte_and_zeroes_past_the_end(server, tmp_path):
    # Reads go out 32 x 64 KiB at a time (ssh.c read_batch): a file that ends inside a
    # chunk, several batches long, must come back byte for byte and then as zeroes.
    src = tmp_path / "odd.raw"
    data = os.urandom((5 << 20) + 4097)
    src.write_bytes(data)
    out = tmp_path / "out.raw"
    p = run(str(KIMG), "convert", "-f", "raw", "-O", "raw", server.url(src), str(out),
            env=server.env)
    assert p.returncode == 0, p.stderr
    got = out.read_bytes()
    assert got[:len(data)] == data
    assert got[len(data):] == bytes(len(got) - len(data))
