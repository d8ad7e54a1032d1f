"""Network namespaces for the network tests: each test makes its own, with names unique to
the test, and removes it (and with it every bridge and TAP inside) when done. Nothing
outside the namespace and loopback is ever touched."""
import os
import subprocess
import uuid


def sh(*argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, check=check)


class Netns:
    def __init__(self):
        self.name = f"knet-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        sh("ip", "netns", "add", self.name)
        self.run("ip", "link", "set", "lo", "up")

    def argv(self, *argv):
        return ["ip", "netns", "exec", self.name, *map(str, argv)]

    def run(self, *argv, check=True, timeout=30):
        return subprocess.run(self.argv(*argv), capture_output=True, text=True, check=check,
                              timeout=timeout)

    def bridge(self, name, addr):
        """A Linux bridge with addr (CIDR) on it, up."""
        self.run("ip", "link", "add", name, "type", "bridge")
        self.run("ip", "addr", "add", addr, "dev", name)
        self.run("ip", "link", "set", name, "up")

    def bridge_with_scripts(self, tmp_path, addr):
        """A fresh bridge with addr on it and the ifup/ifdown scripts that put a
        TAP on it (bridge_scripts): (bridge, up, down, log)."""
        br = unique("kbr")
        self.bridge(br, addr)
        return (br, *bridge_scripts(tmp_path, br))

    def has_link(self, name):
        return self.run("ip", "link", "show", name, check=False).returncode == 0

    def close(self):
        sh("ip", "netns", "del", self.name, check=False)


def unique(prefix):
    """An interface name (at most 15 characters) no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def write_script(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def bridge_scripts(tmp_path, bridge):
    """QEMU-style ifup/ifdown scripts that put $1 on bridge and log what they did."""
    log = tmp_path / "scripts.log"
    up = write_script(tmp_path / "ifup", f'echo "up $1" >> {log}\n'
                      f'ip link set "$1" master {bridge} && ip link set "$1" up\n')
    down = write_script(tmp_path / "ifdown", f'echo "down $1" >> {log}\n'
                        f'ip link set "$1" nomaster\n')
    return up, down, log
