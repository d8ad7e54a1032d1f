"""The GDB stub (src/gdb, issue 23) driven by real gdb.

Most tests point gdb at tests/gdb/fake_target.c: the real stub, socket and
protocol over synthetic vCPUs and guest memory with page tables (4K pages
at VA 0x1000 -> PA 0x101000, a 2M page at VA 0x200000 -> PA 0x400000, a 1G
page at VA 0x40000000 -> PA 0, a higher-half page), so everything but KVM
runs here.  The fake logs each target call the stub makes; the tests read
that log to see what reached the "machine".  The guest tests at the end run
the real VMM (kestrel -s -S) and skip without /dev/kvm.
"""
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import BUILD, KESTREL, PROBE

FAKE = BUILD / "tests" / "gdb" / "fake_gdb_target"
GDB = shutil.which("gdb") or "/usr/bin/gdb"

pytestmark = pytest.mark.skipif(not os.path.exists(GDB), reason="gdb is not installed")


class Fake:
    def __init__(self, tmp_path, spec="tcp::0", cpus=2):
        self.log = tmp_path / "fake.log"
        self.proc = subprocess.Popen([str(FAKE), spec, str(self.log), str(cpus)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("port "), self.proc.stderr.read()
        self.port = int(line.split()[1])
        self.target = f"127.0.0.1:{self.port}" if spec.startswith("tcp") else spec.split(",")[0]

    def lines(self):
        return self.log.read_text().splitlines()

    def wait(self, timeout=10):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def fake(tmp_path):
    made = []

    def start(**kw):
        f = Fake(tmp_path, **kw)
        made.append(f)
        return f

    yield start
    for f in made:
        f.stop()


def gdb(target, *cmds, elf=None, timeout=30):
    argv = [GDB, "-nx", "-batch", "-ex", "set confirm off", "-ex", "set pagination off"]
    if elf:
        argv.append(str(elf))
    argv += ["-ex", f"target remote {target}"]
    for c in cmds:
        argv += ["-ex", c]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return p.stdout + p.stderr


def reg_value(out, name):
    m = re.search(rf"^{name}\s+(0x[0-9a-f]+)", out, re.M)
    assert m, f"{name} not in:\n{out}"
    return int(m.group(1), 16)


def test_info_registers_has_qemus_x86_64_set(fake):
    f = fake()
    out = gdb(f.target, "info registers", "info all-registers", "detach")
    # Synthetic vCPU 0: gpr[i] = 0x1000 + i, rip 0x10000, long mode paging.
    assert reg_value(out, "rax") == 0x1000
    assert reg_value(out, "r15") == 0x100f
    assert reg_value(out, "rip") == 0x10000
    assert reg_value(out, "cs") == 0x10
    assert reg_value(out, "fs_base") == 0x7f0000001000
    assert reg_value(out, "gs_base") == 0xffff888000000000
    assert reg_value(out, "k_gs_base") == 0x1234
    assert reg_value(out, "cr0") == 0x80050033
    assert reg_value(out, "cr3") == 0x1000
    assert reg_value(out, "efer") == 0x500
    assert reg_value(out, "fctrl") == 0x37f
    assert reg_value(out, "mxcsr") == 0x1f80
    for name in ("st7", "xmm15", "cr8", "fop"):
        assert re.search(rf"^{name}\s", out, re.M), name
    assert "eflags         0x202               [ IF ]" in out


def test_memory_reads_walk_4k_2m_1g_pages(fake):
    f = fake()
    out = gdb(f.target, "x/8xb 0x1000", "x/8xb 0x200123", "x/8xb 0x40600000",
              "x/s 0xffffffff80000000", "x/1xb 0x800000", "detach")
    assert "0x1000:\t0x11\t0x22\t0x33\t0x44\t0x55\t0x66\t0x77\t0x88" in out
    assert "0x200123:\t0xa0\t0xa1\t0xa2\t0xa3\t0xa4\t0xa5\t0xa6\t0xa7" in out
    assert "0x40600000:\t0xb0\t0xb1\t0xb2\t0xb3\t0xb4\t0xb5\t0xb6\t0xb7" in out
    assert '0xffffffff80000000:\t"kernel"' in out
    # VA 0x800000 has no PD entry: an error, not a read of PA 0x800000.
    assert "Cannot access memory at address 0x800000" in out


def test_memory_write_goes_through_the_page_tables(fake):
    f = fake()
    out = gdb(f.target, "set var *(unsigned int *)0x20000 = 0x55667788",
              "set var *(unsigned char *)0x200130 = 0xee", "x/4xb 0x20000", "x/1xb 0x200130",
              "detach")
    assert "0x20000:\t0x88\t0x77\t0x66\t0x55" in out
    assert "0x200130:\t0xee" in out
    log = f.lines()
    # VA 0x20000 is PA 0x120000 (4K page), VA 0x200130 is PA 0x400130 (2M page).
    assert "write_phys 0x120000 88776655" in log
    assert "write_phys 0x400130 ee" in log


def test_register_write(fake):
    f = fake()
    out = gdb(f.target, "set $rax = 0x77", "set $r9 = 0x99", "p/x $rax", "p/x $r9", "detach")
    assert "$1 = 0x77" in out and "$2 = 0x99" in out
    assert any(l.startswith("set_regs cpu=0") and "rax=0x77" in l for l in f.lines())


def test_software_breakpoint_patches_and_restores_int3(fake):
    f = fake()
    # The fake continues the last vCPU (rip 0x10100) through nops into the int3.
    out = gdb(f.target, "break *0x10140", "continue", "p/x $pc", "info threads", "detach")
    assert "Thread 2 hit Breakpoint 1, 0x0000000000010140" in out
    assert "$1 = 0x10140" in out
    log = f.lines()
    # VA 0x10140 is PA 0x110140: int3 written, the nop put back on removal.
    assert log.index("write_phys 0x110140 cc") < log.index("resume step=-1")
    assert "write_phys 0x110140 90" in log[log.index("resume step=-1"):]
    assert any(l.startswith("set_debug sw_bp=1") for l in log)


def test_hbreak_and_watch_use_debug_registers(fake):
    f = fake()
    out = gdb(f.target, "hbreak *0x10180", "continue", "p/x $pc", "delete",
              "watch *(int *)0x20000", "continue", "delete", "detach")
    assert "Thread 2 hit Breakpoint 1, 0x0000000000010180" in out
    assert "Hardware watchpoint 2: *(int *)0x20000" in out
    assert "Old value = 0\nNew value = 1" in out
    log = f.lines()
    # Z1: DR0 = address, DR7 G0 with R/W 00; Z2 len 4: G0, R/W 01, LEN 11 (SDM 18.2.4).
    assert "set_debug sw_bp=0 dr7=0x2 dr0=0x10180 dr1=0" in log
    assert "set_debug sw_bp=0 dr7=0xd0002 dr0=0x20000 dr1=0" in log
    assert "guest_write 0x20000 01" in log


def test_stepi_and_threads(fake):
    f = fake(cpus=3)
    out = gdb(f.target, "info threads", "thread 3", "p/x $pc", "stepi", "p/x $pc",
              "thread 1", "p/x $pc", "detach")
    assert re.search(r"\* 1\s+Thread 1 \(CPU#0", out)
    assert re.search(r"  3\s+Thread 3 \(CPU#2", out)
    assert "$1 = 0x10200" in out and "$2 = 0x10201" in out and "$3 = 0x10000" in out
    assert "resume step=2" in f.lines()


def test_monitor_passes_the_line_to_the_monitor(fake):
    f = fake()
    out = gdb(f.target, "monitor info registers", "monitor nosuch", "detach")
    assert "RAX=0000000000001000 RIP=0000000000010000 CR3=0000000000001000" in out
    assert "unknown command: 'nosuch'" in out
    assert "monitor info registers" in f.lines()


def test_detach_lets_the_machine_run_on(fake):
    f = fake()
    out = gdb(f.target, "break *0x10150", "detach")
    assert "Detaching from program" in out or "detached" in out
    assert f.wait() == 0
    log = f.lines()
    assert log[-2:] == ["detach kill=0", "exit"]


def test_kill(fake):
    f = fake()
    gdb(f.target, "kill")
    assert f.wait() == 0
    assert "detach kill=1" in f.lines()


def test_poweroff_is_an_exit_stop_reply(fake):
    f = fake()
    out = gdb(f.target, "set $pc = 0x30000", "continue")
    assert "[Inferior 1 (Remote target) exited normally]" in out


def test_unix_socket(fake, tmp_path):
    path = tmp_path / "gdb.sock"
    f = fake(spec=f"unix:{path},server")
    out = gdb(str(path), "p/x $rip", "detach")
    assert "$1 = 0x10000" in out


# The protocol by hand: what gdb never sends but a hostile client may.

class Raw:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, payload, csum=None):
        if isinstance(payload, str):
            payload = payload.encode()
        cs = sum(payload) & 0xff if csum is None else csum
        self.s.sendall(b"$" + payload + b"#%02x" % cs)

    def read(self, n=1):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            assert d, "stub closed the connection"
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def packet(self):
        """The next packet's payload (acks before it skipped)."""
        while self.read() != b"$":
            pass
        data = b""
        while not data.endswith(b"#"):
            data += self.read()
        cs = int(self.read(2), 16)
        assert sum(data[:-1]) & 0xff == cs
        return data[:-1].decode("latin-1")

    def cmd(self, payload):
        self.send(payload)
        return self.packet()


def test_acks_bad_checksums_and_no_ack_mode(fake):
    f = fake()
    r = Raw(f.port)
    r.send("g", csum=0)
    assert r.read() == b"-"
    r.send("?")
    assert r.read() == b"+"
    assert r.packet() == "T05thread:01;"
    assert r.cmd("QStartNoAckMode") == "OK"
    r.send("g", csum=0)          # dropped silently now
    r.send("qC")
    assert r.read() == b"$"      # no '+', no '-'
    r.buf = b"$" + r.buf
    assert r.packet() == "QC01"
    assert r.cmd("D") == "OK"


def test_escaped_and_run_length_encoded_input(fake):
    f = fake()
    r = Raw(f.port)
    # X with '}'-escaped bytes 0x23 ('#') and 0x7d, then "0*%" = "0" + 8 more zeros (RLE).
    assert r.cmd(b"X20000,2:}\x03}]") == "OK"
    assert r.cmd("m20000,2") == "237d"
    assert r.cmd("M20000,5:0*%0") == "OK"
    assert r.cmd("m20000,5") == "0000000000"
    assert r.cmd("p10") == "0000010000000000"   # rip, little-endian
    r.cmd("D")


def test_target_xml_and_qsupported(fake):
    f = fake()
    r = Raw(f.port)
    sup = r.cmd("qSupported:multiprocess+;swbreak+;xmlRegisters=i386")
    assert "PacketSize=1000" in sup and "qXfer:features:read+" in sup
    xml, off = "", 0
    while True:
        chunk = r.cmd(f"qXfer:features:read:target.xml:{off:x},200")
        xml += chunk[1:]
        off += len(chunk) - 1
        if chunk[0] == "l":
            break
    assert "<architecture>i386:x86-64</architecture>" in xml
    regs = re.findall(r'<reg name="(\w+)" bitsize="(\d+)"', xml)
    assert len(regs) == 66
    # The 'g' reply is every register in the XML's order at the XML's size.
    assert len(r.cmd("g")) == 2 * sum(int(b) for _, b in regs) // 8
    assert r.cmd("qXfer:features:read:other.xml:0,100").startswith("E")
    r.cmd("D")


def test_ctrl_c_stops_a_running_target(fake):
    f = fake()
    r = Raw(f.port)
    r.s.sendall(b"+")
    r.send("vCont;c")      # nothing to hit: the fake runs until interrupted
    assert r.read() == b"+"
    time.sleep(0.1)
    r.s.sendall(b"\x03")
    assert r.packet() == "T02thread:01;"
    assert "stop running=1" in f.lines()
    r.cmd("D")


def test_hostile_client(fake):
    f = fake()
    r = Raw(f.port)
    # A 1 MB packet: refused as too long, the stub keeps serving.
    r.s.sendall(b"$M20000,1:" + b"a" * (1 << 20) + b"#00")
    assert r.packet() == "E16"
    assert r.cmd("m40000000,8").startswith("0")       # 1G page at PA 0
    assert r.cmd("m800000,8").startswith("E")         # unmapped
    assert r.cmd("mffff800000000000,8").startswith("E")
    assert r.cmd("m12345678123456789,1").startswith("E")   # overflowing number
    for bad in ["Z0", "Z0,", "Z0,10000", "Zq,1,1", "P99=00", "Pzz", "G123", "Hgz",
                "vCont;x", "qXfer:features:read:target.xml:zz", "M20000,2:zz", "X20000,4:ab"]:
        assert re.fullmatch(r"E[0-9a-f]{2}", r.cmd(bad)), bad
    # 10^4 breakpoints: the first 4096 are taken, the rest refused with ENOSPC.
    answers = []
    for i in range(10000):
        r.send(f"Z0,{0x10000 + i:x},1")
        answers.append(r.packet())
    assert answers.count("OK") == 4096 and set(answers[4096:]) == {"E1c"}
    r.cmd("D")
    assert f.wait() == 0
    # Detach restored every byte: the 4096 int3s were each written back.
    assert sum(1 for l in f.lines() if re.fullmatch(r"write_phys 0x11[0-9a-f]{4} 90", l)) == 4096


# The VMM's options: every device form is checked before KVM, so on any host.

@pytest.mark.parametrize("dev, why", [
    ("foo:bar", "only tcp:[HOST]:PORT and unix:PATH,server devices are supported"),
    ("tcp::99x", "expected tcp:[HOST]:PORT"),
    ("tcp:localhost", "expected tcp:[HOST]:PORT"),
    ("unix:", "expected unix:PATH"),
    ("chardev:gdb0", "only tcp:[HOST]:PORT and unix:PATH,server devices are supported"),
])
def test_gdb_option_refuses_bad_devices(dev, why):
    p = subprocess.run([str(KESTREL), "-gdb", dev, "-kernel", str(PROBE)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1
    assert f"-gdb {dev}: {why}" in p.stderr


@pytest.mark.parametrize("args", [["-s"], ["-gdb", "tcp::1234"], ["-gdb", "unix:/tmp/x.sock,server"],
                                  ["-gdb", "none"], ["-gdb", "tcp:127.0.0.1:0"]])
def test_gdb_options_are_accepted(args):
    p = subprocess.run([str(KESTREL), *args, "-nographic", "-kernel", str(PROBE)],
                       capture_output=True, text=True, timeout=30)
    # Here the run ends at /dev/kvm (or runs the probe where there is KVM): never an option error.
    assert "invalid option" not in p.stderr and "-gdb" not in p.stderr and "-s:" not in p.stderr


# The real VMM: gdb against the probe's ELF (symbols) under kestrel -s -S.

@pytest.mark.guest
def test_kestrel_gdb_breaks_in_the_probe(tmp_path):
    vm = subprocess.Popen([str(KESTREL), "-s", "-S", "-nographic", "-kernel", str(PROBE)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        out = gdb(":1234", "break probe_main", "continue", "p/x $pc", "info threads",
                  "stepi", "p/x $pc", "info registers rip", "monitor info registers", "detach",
                  elf=PROBE, timeout=60)
        assert "Breakpoint 1, " in out and "probe_main" in out
        assert "RIP=" in out
        assert vm.wait(timeout=30) == 0       # detached, the probe runs to its poweroff
    finally:
        vm.kill()
        vm.wait()


@pytest.mark.guest
def test_kestrel_query_status_says_debug_while_gdb_holds_the_vm(tmp_path):
    qmp = tmp_path / "qmp.sock"
    vm = subprocess.Popen([str(KESTREL), "-s", "-nographic",
                           "-qmp", f"unix:{qmp},server,nowait", "-kernel", str(PROBE)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        r = Raw(1234)
        r.cmd("?")
        c = socket.socket(socket.AF_UNIX)
        c.connect(str(qmp))
        c.recv(4096)
        c.sendall(b'{"execute":"qmp_capabilities"}{"execute":"query-status"}')
        time.sleep(0.3)
        assert b'"status": "debug"' in c.recv(65536)
        r.cmd("D")
    finally:
        vm.kill()
        vm.wait()


@pytest.mark.guest
def test_kestrel_gdb_hbreak_over_a_unix_socket(tmp_path):
    sock = tmp_path / "gdb.sock"
    vm = subprocess.Popen([str(KESTREL), "-gdb", f"unix:{sock},server", "-S", "-nographic",
                           "-kernel", str(PROBE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        out = gdb(str(sock), "hbreak serial_putc", "continue", "bt 1", "delete",
                  "detach", elf=PROBE, timeout=60)
        assert "serial_putc" in out
    finally:
        vm.kill()
        vm.wait()
