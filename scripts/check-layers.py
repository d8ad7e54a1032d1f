#!/usr/bin/env python3
"""Fails on any #include that runs upward or sideways between src/ rooms.

The order is read from docs/architecture.md's "Layer order:" line, so the
documented picture and the code cannot drift apart:
    Layer order: util → block, net, core, chardev → hw → ... → cli
A room may include itself and any room of an earlier step; every folder under
src/ must appear in the order.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layer_order():
    text = (ROOT / "docs/architecture.md").read_text()
    m = re.search(r"^Layer order: (.+)$", text, re.M)
    if not m:
        sys.exit("check-layers: docs/architecture.md has no 'Layer order:' line")
    rank = {}
    for i, step in enumerate(m.group(1).split("→")):
        for room in step.split(","):
            rank[room.strip().strip("`")] = i
    return rank


def main():
    rank = layer_order()
    problems = []
    for room_dir in sorted(p for p in (ROOT / "src").iterdir() if p.is_dir()):
        if room_dir.name not in rank:
            problems.append(f"src/{room_dir.name}/: not in docs/architecture.md's layer order")
    for path in sorted((ROOT / "src").rglob("*.[ch]")):
        room = path.relative_to(ROOT / "src").parts[0]
        if room not in rank:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = re.match(r'\s*#\s*include\s+"([a-z_]+)/', line)
            if not m or m.group(1) == room or m.group(1) not in rank:
                continue
            if rank[m.group(1)] >= rank[room]:
                problems.append(f"{path.relative_to(ROOT)}:{n}: {room} may not include "
                                f"{m.group(1)}/ ({line.strip()})")
    for p in problems:
        print(p)
    print(f"check-layers: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
