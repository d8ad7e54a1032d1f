"""A minimal QMP client over a unix socket (stdlib only), as management tools speak it."""
import json
import signal
import socket
import subprocess
import time


class QMP:
    def __init__(self, path, timeout=20):
        self.sock = socket.socket(socket.AF_UNIX)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self.greeting = self.recv()

    def recv(self):
        """The next JSON message (reply or event)."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def send_raw(self, data):
        self.sock.sendall(data)

    def reply(self):
        """Reads until a reply (return or error), keeping events aside."""
        while True:
            msg = self.recv()
            if "event" in msg:
                self.events.append(msg)
            else:
                return msg

    def cmd(self, name, /, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.send_raw(json.dumps(msg).encode())
        return self.reply()

    def event(self, name, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            if time.monotonic() > deadline:
                raise AssertionError(f"no {name} event; got {self.events}")
            msg = self.recv()
            if "event" in msg:
                self.events.append(msg)

    def close(self):
        self.sock.close()


class QMPProcess:
    """BINARY started with ARGS and -qmp on a unix socket under tmp_path (then MORE),
    its QMP capabilities negotiated; stop() quits it, killing it if it will not go."""

    def __init__(self, binary, tmp_path, name, args, more=()):
        self.sock = tmp_path / f"{name}.sock"
        argv = [str(binary), *args, "-qmp", f"unix:{self.sock},server=on,wait=off", *more]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self.qmp = QMP(self.sock, timeout=10)
        except (OSError, EOFError):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"{binary} did not start: {err.decode(errors='replace')}")
        assert "return" in self.qmp.cmd("qmp_capabilities")

    def cmd(self, name, args=None):
        return self.qmp.cmd(name, **(args or {}))

    def hmp(self, line):
        r = self.cmd("human-monitor-command", {"command-line": line})
        assert "return" in r, r
        return r["return"]

    def stop(self):
        try:
            self.qmp.cmd("quit")
        except (EOFError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
