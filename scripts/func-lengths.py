#!/usr/bin/env python3
"""List C functions longer than a limit (default 100 lines).

The tree's style opens a function body with "{" alone in column 0 and
closes it with "}" in column 0, so a function is the span between the two,
named by the last identifier before "(" in the lines above the "{".
Lines counted: from the "{" to the "}" inclusive.

Usage: func-lengths.py [--limit N] [--count] [DIR...]   (default DIR: src)
"""
import os
import re
import sys

NAME = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*\(')


def functions(path):
    with open(path, encoding='utf-8', errors='replace') as f:
        lines = f.read().split('\n')
    start = None
    for i, line in enumerate(lines):
        if line.rstrip() == '{' and start is None:
            start = i
        elif start is not None and line.startswith('}'):
            name = '?'
            for j in range(start - 1, max(start - 6, -1), -1):
                m = NAME.search(lines[j])
                if m:
                    name = m.group(1)
                    break
            yield name, start + 1, i - start + 1
            start = None


def main(argv):
    limit, count, dirs = 100, False, []
    it = iter(argv)
    for a in it:
        if a == '--limit':
            limit = int(next(it))
        elif a == '--count':
            count = True
        else:
            dirs.append(a)
    rows = []
    for d in dirs or ['src']:
        for root, _, files in os.walk(d):
            for fn in sorted(files):
                if fn.endswith(('.c', '.h')):
                    p = os.path.join(root, fn)
                    for name, line, n in functions(p):
                        if n > limit:
                            rows.append((n, p, line, name))
    rows.sort(reverse=True)
    if not count:
        for n, p, line, name in rows:
            print('%5d  %s:%d  %s' % (n, p, line, name))
    print('%d function(s) over %d lines' % (len(rows), limit))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
