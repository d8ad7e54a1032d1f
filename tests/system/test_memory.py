"""Guest memory under kestrel and, for the same probe scenarios, QEMU 7.2:
virtio-balloon (inflate/deflate, statistics, free page reporting), HMP/QMP
balloon commands, transparent and hugetlb huge pages, KSM, NUMA (SRAT/SLIT),
lazily allocated RAM and mem-lock.  Host memory is read from /proc/PID."""
import os
import re
import time

import pytest

from conftest import KESTREL, QEMU, Session, kestrel, need_qemu, probe_lines, qemu
from qmp_client import QMP

MIB = 1 << 20


def status_kib(pid, field):
    """A /proc/PID/status field in KiB (VmRSS, VmLck)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def rss(pid):
    return status_kib(pid, "VmRSS") * 1024


def rollup(pid, field):
    """A /proc/PID/smaps_rollup field in bytes (Pss, AnonHugePages, ...)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def wait_for(cond, timeout=20, step=0.1):
    """Polls cond() until it is truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


class Guest:
    """A VMM running the probe, with COM1 on a pipe and QMP on a socket."""

    def __init__(self, vmm, probe, tmp_path, scenario, *extra, mem="512m", name="g"):
        sock = tmp_path / f"{name}.qmp"
        common = ["-m", mem, "-display", "none", "-serial", "stdio",
                  "-qmp", f"unix:{sock},server,nowait", "-kernel", probe,
                  "-append", f"probe={scenario}", *extra]
        if vmm == "kestrel":
            argv = [str(KESTREL), *common]
        else:
            need_qemu()
            argv = [*QEMU, "-M", "pc", "-nodefaults", *common]
        self.vmm = vmm
        self.s = Session(argv)
        self.qmp = None
        self.sock = sock

    def connect(self):
        self.qmp = QMP(self.sock, timeout=60)
        assert "return" in self.qmp.cmd("qmp_capabilities")
        return self.qmp

    @property
    def pid(self):
        return self.s.proc.pid

    def hmp(self, line):
        return self.qmp.cmd("human-monitor-command", **{"command-line": line})["return"]

    def send(self, line):
        self.s.send(line.encode() + b"\n")

    def quit(self):
        self.send("quit")
        self.s.expect(r"probe: poweroff", 30)
        assert "probe: PASS" in self.s.text()

    def kill(self):
        if self.qmp:
            self.qmp.close()
        self.s.kill()


@pytest.fixture
def guests():
    started = []
    yield started
    for g in started:
        g.kill()


VMMS = ["kestrel", pytest.param("qemu", marks=pytest.mark.qemu)]
BALLOON = ["-device", "virtio-balloon-pci,id=balloon0,free-page-reporting=on,"
           "guest-stats-polling-interval=1"]


def start(guests, vmm, probe, tmp_path, scenario, *extra, **kw):
    g = Guest(vmm, probe, tmp_path, scenario, *extra, **kw)
    guests.append(g)
    g.s.expect(r"probe: balloon: ready", 60)
    g.connect()
    return g


@pytest.mark.guest
@pytest.mark.parametrize("vmm", VMMS)
def test_balloon_to_half_returns_memory_and_deflate_gives_it_back(vmm, probe, tmp_path, guests):
    g = start(guests, vmm, probe, tmp_path, "balloon", *BALLOON)
    m = re.search(rb"balloon: touched (\d+) MiB at", g.s.output)
    assert int(m.group(1)) >= 400
    assert g.hmp("info balloon") == "balloon: actual=512\r\n"
    touched = wait_for(lambda: rss(g.pid) >= 400 * MIB and rss(g.pid))
    assert touched, f"RSS {rss(g.pid)} after touching the probe's memory"

    assert g.hmp("balloon 256") == ""
    g.s.expect(r"probe: balloon: actual 65536 pages \(256 MiB\)", 60)
    assert wait_for(lambda: g.hmp("info balloon") == "balloon: actual=256\r\n", 10)
    assert g.qmp.cmd("query-balloon") == {"return": {"actual": 256 * MIB}}
    # BALLOON_CHANGE as QEMU sends it: at most one a second, the latest size winning, so
    # the probe's 16 updates of "actual" while inflating (every 16 MiB) give two events.
    events = [g.qmp.event("BALLOON_CHANGE", timeout=10)]
    while events[-1]["data"]["actual"] != 256 * MIB:
        events.append(g.qmp.event("BALLOON_CHANGE", timeout=5))
    assert events[0]["data"]["actual"] < 512 * MIB
    assert len(events) <= 3, events
    # The VMM's host RSS drops by at least 80% of the 256 MiB ballooned.
    low = wait_for(lambda: rss(g.pid) <= touched - 0.8 * 256 * MIB and rss(g.pid), 15)
    assert low, f"RSS {rss(g.pid) >> 20} MiB, was {touched >> 20} MiB before inflating"

    # Deflate: the guest takes its pages back and writes them; the host supplies them.
    assert "return" in g.qmp.cmd("balloon", value=512 * MIB)
    g.s.expect(r"probe: balloon: actual 0 pages", 60)
    assert wait_for(lambda: g.hmp("info balloon") == "balloon: actual=512\r\n", 10)
    assert wait_for(lambda: rss(g.pid) >= touched - 16 * MIB, 15), \
        f"RSS {rss(g.pid) >> 20} MiB after deflating, {touched >> 20} MiB before"
    g.send("verify")
    g.s.expect(r"probe: balloon: verified", 30)
    g.quit()


@pytest.mark.guest
@pytest.mark.parametrize("vmm", VMMS)
def test_free_page_reporting_returns_freed_memory_without_a_balloon_command(
        vmm, probe, tmp_path, guests):
    g = start(guests, vmm, probe, tmp_path, "balloon,report=1", *BALLOON)
    assert b"free-page-reporting" in g.s.output
    touched = wait_for(lambda: rss(g.pid) >= 400 * MIB and rss(g.pid))
    assert touched
    g.send("free 200")
    g.s.expect(r"probe: balloon: reported 200 MiB free", 30)
    assert wait_for(lambda: rss(g.pid) <= touched - 0.8 * 200 * MIB, 15), \
        f"RSS {rss(g.pid) >> 20} MiB, {touched >> 20} MiB before reporting"
    assert g.hmp("info balloon") == "balloon: actual=512\r\n"   # no balloon involved
    g.send("touch")                     # the freed pages come back into use
    g.s.expect(r"probe: balloon: touched", 30)
    assert wait_for(lambda: rss(g.pid) >= touched - 16 * MIB, 15)
    g.quit()


@pytest.mark.guest
@pytest.mark.parametrize("vmm", VMMS)
def test_balloon_statistics(vmm, probe, tmp_path, guests):
    g = start(guests, vmm, probe, tmp_path, "balloon", *BALLOON)
    path = "/machine/peripheral/balloon0"
    assert g.qmp.cmd("qom-get", path=path, property="guest-stats-polling-interval") == \
        {"return": 1}
    total = int(g.s.expect(r"probe: balloon: stats sent 2 total (\d+)\r?\n", 30).group(1))
    r = g.qmp.cmd("qom-get", path=path, property="guest-stats")["return"]
    assert r["stats"]["stat-total-memory"] == total
    assert r["last-update"] > 0
    assert "stat-free-memory" in r["stats"] and "stat-swap-in" in r["stats"]
    # Polling follows the interval: off stops requests, on brings them back.
    assert "return" in g.qmp.cmd("qom-set", path=path, property="guest-stats-polling-interval",
                                 value=0)
    assert g.qmp.cmd("qom-set", path=path, property="guest-stats-polling-interval",
                     value=-1)["error"]["class"] == "GenericError"
    assert g.qmp.cmd("qom-get", path="/machine/peripheral/nosuch",
                     property="guest-stats")["error"]["class"] == "DeviceNotFound"
    g.quit()


@pytest.mark.guest
@pytest.mark.parametrize("vmm", VMMS)
def test_balloon_monitor_corner_cases(vmm, probe, tmp_path, guests):
    """What QEMU 7.2 answers, word for word: statistics before the guest sent any, bad
    targets, bad property types, HMP argument errors."""
    extra = ["-device", "virtio-balloon-pci"] if vmm == "qemu" else ["-balloon", "virtio"]
    g = Guest(vmm, probe, tmp_path, "echo", *extra, mem="128m")
    guests.append(g)
    g.s.expect(r"echo: ready", 60)
    q = g.connect()
    path = "/machine/peripheral-anon/device[0]" if vmm == "kestrel" else None
    if vmm == "qemu":   # QEMU numbers anonymous devices by creation; find ours
        path = next(f"/machine/peripheral-anon/device[{i}]" for i in range(8)
                    if "return" in q.cmd("qom-get", path=f"/machine/peripheral-anon/device[{i}]",
                                         property="guest-stats-polling-interval"))
    r = q.cmd("qom-get", path=path, property="guest-stats")["return"]
    assert r["last-update"] == 0
    assert set(r["stats"].values()) == {2**64 - 1}
    assert q.cmd("qom-get", path=path, property="nosuch")["error"]["desc"] == \
        "Property 'virtio-balloon-pci.nosuch' not found"
    assert q.cmd("qom-set", path=path, property="guest-stats-polling-interval",
                 value="x")["error"]["desc"] == \
        "Invalid parameter type for 'guest-stats-polling-interval', expected: integer"
    for value in (0, -5):
        assert q.cmd("balloon", value=value)["error"] == {
            "class": "GenericError", "desc": "Parameter 'target' expects a size"}
    assert "return" in q.cmd("balloon", value=1 << 40)     # above RAM: deflate all
    assert g.hmp("balloon 0") == "Error: Parameter 'target' expects a size\r\n"
    hint = 'Try "help balloon" for more information\r\n'
    assert g.hmp("balloon 1G") == "balloon: extraneous characters at the end of line\r\n" + hint
    assert g.hmp("balloon abc") == "invalid char 'a' in expression\r\n" + hint
    assert g.hmp("balloon") == "unexpected end of expression\r\n" + hint
    assert g.hmp("balloon -1") == "enter a positive value\r\n" + hint
    assert g.hmp("balloon 0x40") == ""
    assert g.hmp("info balloon") == "balloon: actual=128\r\n"


@pytest.mark.guest
@pytest.mark.parametrize("vmm", VMMS)
def test_deflate_on_oom_is_offered_only_when_asked(vmm, probe, tmp_path, guests):
    g = start(guests, vmm, probe, tmp_path, "balloon",
              "-device", "virtio-balloon-pci,deflate-on-oom=on")
    assert b"deflate-on-oom" in g.s.output
    g.quit()
    h = start(guests, vmm, probe, tmp_path, "balloon", "-device", "virtio-balloon-pci",
              name="h")
    assert b"deflate-on-oom" not in h.s.output
    assert b"free-page-reporting" not in h.s.output
    h.quit()


@pytest.mark.guest
def test_legacy_balloon_option_and_addr(probe, tmp_path, guests):
    g = start(guests, "kestrel", probe, tmp_path, "balloon", "-balloon", "virtio,addr=0x7")
    assert b"probe: pci: 00:07.0 1af4:1045" in g.s.output
    assert g.hmp("balloon 500") == ""
    g.s.expect(r"probe: balloon: actual 3072 pages \(12 MiB\)", 30)
    g.quit()


@pytest.mark.guest
def test_no_balloon(probe, tmp_path, guests):
    g = Guest("kestrel", probe, tmp_path, "echo", "-balloon", "none")
    guests.append(g)
    g.s.expect(r"echo: ready", 60)
    q = g.connect()
    assert q.cmd("query-balloon")["error"] == {
        "class": "DeviceNotActive", "desc": "No balloon device has been activated"}
    assert g.hmp("info balloon") == "Error: No balloon device has been activated\r\n"
    assert g.hmp("balloon 64") == "Error: No balloon device has been activated\r\n"


@pytest.mark.parametrize("args, message", [
    (["-balloon", "virtio", "-balloon", "virtio"], "Only one balloon device is supported"),
    (["-balloon", "xen"], "unknown balloon device"),
    (["-device", "virtio-balloon-pci,free-page-hint=on"], "free-page-hint=on"),
    (["-device", "virtio-balloon-pci,deflate-on-oom=maybe"], "take on or off"),
    (["-object", "memory-backend-ram,id=m0"], "must not be zero"),
    (["-object", "memory-backend-file,id=m0,size=64M"], "mem-path property not set"),
    (["-object", "memory-backend-ram,id=m0,size=64M,host-nodes=0"], "policy default"),
    (["-machine", "memory-backend=nosuch"], "memory backend not found"),
    (["-m", "256m", "-object", "memory-backend-ram,id=m0,size=128M",
      "-machine", "memory-backend=m0"], "does not match"),
    (["-object", "memory-backend-ram,id=m0,size=64M", "-numa", "node,memdev=m0"],
     "should equal RAM size"),
    (["-numa", "node,nodeid=1"], "Node ID missing: 0"),
    (["-numa", "node", "-numa", "node", "-numa", "dist,src=0,dst=1,val=5"], "invalid"),
    (["-numa", "node,mem=64M"], "use -numa node,memdev"),
    (["-overcommit", "mem-lock=sometimes"], "mem-lock="),
    (["-machine", "mem-merge=perhaps"], "mem-merge="),
    # Checked before /dev/kvm is opened (issue #13), so every host names them.
    (["-object", "memory-backend-file,id=m0,size=128M,mem-path=/nonexistent/dir/ram",
      "-machine", "memory-backend=m0"], "/nonexistent/dir/ram: cannot open the backing store"),
    (["-object", "memory-backend-ram,id=m0,size=128M,host-nodes=63,policy=bind",
      "-machine", "memory-backend=m0"], "host NUMA node 63 does not exist"),
])
def test_bad_memory_options(probe, args, message):
    status, out, err = kestrel("-display", "none", "-kernel", probe, *args)
    assert status == 1
    assert message in err, err


def thp_enabled():
    try:
        return "[never]" not in open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return False


@pytest.mark.guest
def test_guest_ram_uses_transparent_huge_pages(probe, tmp_path, guests):
    if not thp_enabled():
        pytest.skip("transparent huge pages are disabled on this host")
    g = start(guests, "kestrel", probe, tmp_path, "mem-hold", mem="256m")
    huge = wait_for(lambda: rollup(g.pid, "AnonHugePages") >= 128 * MIB
                    and rollup(g.pid, "AnonHugePages"), 10)
    assert huge, f"AnonHugePages {rollup(g.pid, 'AnonHugePages') >> 20} MiB"
    g.quit()


def meminfo(field):
    for line in open("/proc/meminfo"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


@pytest.fixture
def hugepages():
    """Reserves 2 MiB hugetlb pages for the test and restores the pool after."""
    path = "/proc/sys/vm/nr_hugepages"
    try:
        before = int(open(path).read())
        with open(path, "w") as f:
            f.write(str(before + 80))
    except OSError as e:
        pytest.skip(f"cannot reserve hugetlb pages: {e}")
    if meminfo("HugePages_Free") < 64 or meminfo("Hugepagesize") != 2048:
        open(path, "w").write(str(before))
        pytest.skip("the host could not supply 64 free 2 MiB hugetlb pages")
    yield
    with open(path, "w") as f:
        f.write(str(before))


@pytest.mark.guest
def test_hugetlb_memfd_backend_uses_huge_pages(probe, tmp_path, guests, hugepages):
    free_before = meminfo("HugePages_Free")
    g = Guest("kestrel", probe, tmp_path, "mem-hold", "-object",
              "memory-backend-memfd,id=ram,size=128M,hugetlb=on,hugetlbsize=2M",
              "-machine", "memory-backend=ram", mem="128m")
    guests.append(g)
    g.s.expect(r"probe: balloon: ready", 60)
    # All 64 pages are reserved at start-up, and the guest's touches used them.
    assert free_before - meminfo("HugePages_Free") >= 60
    smaps = open(f"/proc/{g.pid}/smaps").read()
    assert re.search(r"kestrel-ram.*\n(?:.*\n)*?KernelPageSize:\s+2048 kB", smaps)
    g.send("quit")
    g.s.expect(r"probe: PASS", 30)


@pytest.mark.guest
def test_balloon_frees_hugetlb_pages(probe, tmp_path, guests, hugepages):
    """4 KiB balloon pages inside 2 MiB hugetlb pages: each huge page goes back to the
    pool (MADV_REMOVE) once the guest has ballooned all 512 of its small pages."""
    g = start(guests, "kestrel", probe, tmp_path, "balloon", "-object",
              "memory-backend-memfd,id=ram,size=128M,hugetlb=on", "-machine",
              "memory-backend=ram", "-device", "virtio-balloon-pci", mem="128m")
    free_before = meminfo("HugePages_Free")
    assert g.hmp("balloon 64") == ""
    g.s.expect(r"probe: balloon: actual 16384 pages", 60)
    assert wait_for(lambda: meminfo("HugePages_Free") - free_before >= 31, 10), \
        (free_before, meminfo("HugePages_Free"))
    assert "return" in g.qmp.cmd("balloon", value=128 * MIB)
    g.s.expect(r"probe: balloon: actual 0 pages", 60)
    assert wait_for(lambda: meminfo("HugePages_Free") <= free_before + 1, 10)
    g.send("verify")
    g.s.expect(r"probe: balloon: verified", 30)
    g.quit()


@pytest.mark.guest
def test_balloon_frees_shared_memfd_pages(probe, tmp_path, guests):
    """Shared memory (memfd, share=on by default) needs MADV_REMOVE: MADV_DONTNEED would
    only unmap the pages and leave them in the memfd, still counted as host Shmem."""
    g = start(guests, "kestrel", probe, tmp_path, "balloon", "-object",
              "memory-backend-memfd,id=ram,size=512M", "-machine", "memory-backend=ram",
              "-device", "virtio-balloon-pci", mem="512m")
    shmem = wait_for(lambda: meminfo("Shmem") * 1024 >= 400 * MIB and meminfo("Shmem") * 1024)
    assert shmem, "the guest's memfd RAM does not show as host Shmem"
    assert g.hmp("balloon 256") == ""
    g.s.expect(r"probe: balloon: actual 65536 pages", 60)
    assert wait_for(lambda: meminfo("Shmem") * 1024 <= shmem - 0.8 * 256 * MIB, 10), \
        (shmem >> 20, meminfo("Shmem") >> 10)
    g.quit()


@pytest.mark.guest
def test_mem_path_maps_ram_from_a_file_and_prealloc_touches_it(probe, tmp_path, guests):
    g = Guest("kestrel", probe, tmp_path, "echo", "-mem-path", str(tmp_path), "-mem-prealloc",
              mem="256m")
    guests.append(g)
    g.s.expect(r"echo: ready", 60)
    maps = open(f"/proc/{g.pid}/maps").read()
    assert re.search(rf"{re.escape(str(tmp_path))}/kestrel_back_mem\.\w+ \(deleted\)", maps)
    # The probe touches almost nothing, yet all 256 MiB are resident: preallocated.
    assert rss(g.pid) >= 250 * MIB


@pytest.mark.guest
def test_mem_lock_locks_guest_ram(probe, tmp_path, guests):
    g = Guest("kestrel", probe, tmp_path, "echo", "-overcommit", "mem-lock=on", mem="128m")
    guests.append(g)
    g.s.expect(r"echo: ready", 60)
    if "libasan" in open(f"/proc/{g.pid}/maps").read():
        pytest.skip("ASan builds make mlock(2) a no-op")
    assert status_kib(g.pid, "VmLck") * 1024 >= 128 * MIB


@pytest.mark.guest
def test_ram_is_allocated_lazily_so_ten_1g_guests_fit(probe, tmp_path, guests):
    """Ten 1 GiB guests that touch little: together they hold far less than 10 GiB, so a
    host that could not hold 10 GiB of touched memory runs them all."""
    gs = []
    for i in range(10):
        g = Guest("kestrel", probe, tmp_path, "echo", mem="1g", name=f"g{i}")
        guests.append(g)
        gs.append(g)
    for g in gs:
        g.s.expect(r"echo: ready", 60)
    total = sum(rss(g.pid) for g in gs)
    assert total < 1024 * MIB, f"ten idle 1 GiB guests hold {total >> 20} MiB"
    for g in gs:
        g.send("quit")
        g.s.expect(r"probe: PASS", 30)


KSM = "/sys/kernel/mm/ksm"


@pytest.fixture
def ksm():
    """Turns KSM on, scanning fast, and puts every setting back afterwards."""
    if not os.path.exists(f"{KSM}/run"):
        pytest.skip("KSM is not available on this host (no /sys/kernel/mm/ksm)")
    keys = ["run", "pages_to_scan", "sleep_millisecs"]
    saved = {k: open(f"{KSM}/{k}").read().strip() for k in keys}
    try:
        for k, v in (("pages_to_scan", "20000"), ("sleep_millisecs", "10"), ("run", "1")):
            with open(f"{KSM}/{k}", "w") as f:
                f.write(v)
    except OSError as e:
        pytest.skip(f"cannot enable KSM: {e}")
    yield
    for k in ["run", "pages_to_scan", "sleep_millisecs"]:
        with open(f"{KSM}/{k}", "w") as f:
            f.write(saved[k])


def ksm_value(name):
    return int(open(f"{KSM}/{name}").read())


@pytest.mark.guest
def test_ksm_merges_identical_guests(probe, tmp_path, guests, ksm):
    """Both probes write the same bytes at the same guest addresses (~248 MiB each).  A
    merged page stays in each process's VmRSS (both map it), so the combined footprint
    is measured as PSS, which charges a shared page once across its sharers."""
    sharing_before = ksm_value("pages_sharing")
    gs = [start(guests, "kestrel", probe, tmp_path, "mem-hold", mem="256m", name=f"k{i}")
          for i in range(2)]
    touched = sum(int(re.search(rb"touched (\d+) MiB at", g.s.output).group(1)) for g in gs)

    def merging(g):
        try:    # per process (Linux 5.19+): immune to other VMs on a shared host
            return int(open(f"/proc/{g.pid}/ksm_merging_pages").read())
        except OSError:
            return None

    def merged():
        # The KSM switch is host-wide: keep it on if anything else turned it off meanwhile.
        if ksm_value("run") != 1:
            open(f"{KSM}/run", "w").write("1")
        mine = [merging(g) for g in gs]
        if None in mine:
            return ksm_value("pages_sharing") - sharing_before >= 50000
        return min(mine) >= 50000 and ksm_value("pages_sharing") > sharing_before

    assert wait_for(merged, 120, 0.5), (
        f"pages_sharing rose by {ksm_value('pages_sharing') - sharing_before}, "
        f"merged pages per guest {[merging(g) for g in gs]}")
    pss = wait_for(lambda: sum(rollup(g.pid, "Pss") for g in gs) <= (touched - 150) * MIB
                   and sum(rollup(g.pid, "Pss") for g in gs), 30, 0.5)
    assert pss, (f"combined PSS {sum(rollup(g.pid, 'Pss') for g in gs) >> 20} MiB for "
                 f"{touched} MiB of identical guest memory")
    for g in gs:
        g.quit()


@pytest.mark.guest
def test_mem_merge_off_keeps_ram_out_of_ksm(probe, tmp_path, guests):
    g = start(guests, "kestrel", probe, tmp_path, "mem-hold", "-machine", "mem-merge=off",
              mem="128m")
    smaps = open(f"/proc/{g.pid}/smaps").read()
    # VmFlags "mg" marks a mergeable area; guest RAM (>= 128 MiB) must not carry it.
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", smaps):
        size = int(re.search(r"^Size:\s+(\d+) kB", block, re.M).group(1))
        if size >= 128 * 1024:
            assert " mg" not in re.search(r"^VmFlags:(.*)$", block, re.M).group(1)
    g.quit()
    h = start(guests, "kestrel", probe, tmp_path, "mem-hold", mem="128m", name="h")
    assert " mg" in open(f"/proc/{h.pid}/smaps").read()
    h.quit()


NUMA = ["-smp", "2", "-object", "memory-backend-ram,id=m0,size=256M",
        "-object", "memory-backend-ram,id=m1,size=256M",
        "-numa", "node,nodeid=0,cpus=0,memdev=m0", "-numa", "node,nodeid=1,cpus=1,memdev=m1",
        "-numa", "dist,src=0,dst=1,val=21"]


@pytest.mark.guest
@pytest.mark.parametrize("vmm", VMMS)
def test_two_node_numa_guest_sees_two_nodes_in_srat(vmm, probe):
    run = kestrel if vmm == "kestrel" else qemu
    if vmm == "qemu":
        need_qemu()
        args = ["-M", "pc"]
    else:
        args = []
    status, out, err = run(*args, "-m", "512m", "-nographic", "-kernel", probe, "-append",
                           "probe=numa", *NUMA, timeout=60)
    lines = probe_lines(out)
    assert "probe: numa: nodes 2" in lines, out
    assert "probe: numa: srat cpu apic 0 node 0" in lines
    assert "probe: numa: srat cpu apic 1 node 1" in lines
    assert "probe: numa: srat mem 0x10000000-0x1fffffff node 1" in lines
    assert "probe: numa: slit 0: 10 21" in lines and "probe: numa: slit 1: 21 10" in lines
    assert "probe: PASS" in lines


@pytest.mark.guest
def test_no_numa_no_srat(probe):
    status, out, err = kestrel("-nographic", "-kernel", probe, "-append", "probe=numa")
    assert "probe: numa: no srat" in probe_lines(out)


@pytest.mark.guest
def test_host_nodes_bind_guest_ram(probe, tmp_path, guests):
    node = 0    # every Linux host has node 0
    g = Guest("kestrel", probe, tmp_path, "echo", "-object",
              f"memory-backend-ram,id=m0,size=128M,host-nodes={node},policy=bind",
              "-numa", "node,memdev=m0", mem="128m")
    guests.append(g)
    g.s.expect(r"echo: ready", 60)
    numa_maps = open(f"/proc/{g.pid}/numa_maps").read()
    assert re.search(rf"^[0-9a-f]+ bind:{node} ", numa_maps, re.M), numa_maps
