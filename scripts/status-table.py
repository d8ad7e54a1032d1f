#!/usr/bin/env python3
"""Every command-line option, HMP command (and info subcommand) and QMP command
Kestrel accepts, with its status, read from the tables the C sources dispatch on:
src/cli/options.c option_table, src/ui/hmp.c commands and info_cmds,
src/ui/qmp_cmds.c qmp_commands.  An HMP entry whose handler is cmd_unavailable
is "refused" (it answers with an error naming why).  Issue #26.

  scripts/status-table.py [--json]
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def table(path, start):
    """The body of the C array that begins at the line matching start."""
    text = (ROOT / path).read_text()
    i = text.index(start)
    return text[i:text.index("\n};", i)]


def refusal_reasons():
    """cmd_unavailable's why[] table in src/ui/hmp.c: command -> the error it answers."""
    body = table("src/ui/hmp.c", "} why[] = {")
    return dict(re.findall(r'\{ "([^"]+)", "([^"]+)" \}', body))


def entries():
    why = refusal_reasons()
    out = []
    for m in re.finditer(r'\{ "([^"]+)", (true|false), (\w+)',
                         table("src/cli/options.c", "option_table[] = {")):
        # A handler named *_refused only names why the option is not taken (-smbios).
        status = "refused" if m.group(3).endswith("_refused") else "implemented"
        out.append(("option", "-" + m.group(1), status, m.group(3)))
    for m in re.finditer(r'\{ "([^"]+)", "[^"]*",\s*"(?:[^"\\]|\\.)*"(?:\s*"(?:[^"\\]|\\.)*")*,\s*(\w+) \}',
                         table("src/ui/hmp.c", "hmp_cmd commands[] = {")):
        refused = m.group(2) == "cmd_unavailable"
        out.append(("hmp", m.group(1), "refused: " + why.get(m.group(1), "not available")
                    if refused else "implemented", m.group(2)))
    for m in re.finditer(r'\{ "([^"]+)", "', table("src/ui/hmp.c", "info_cmd info_cmds[] = {")):
        out.append(("hmp", "info " + m.group(1), "implemented", "cmd_info"))
    for m in re.finditer(r'\{ "([^"]+)", (\w+),', table("src/ui/qmp_cmds.c",
                                                       "qmp_command qmp_commands[] = {")):
        out.append(("qmp", m.group(1), "implemented", m.group(2)))
    return out


def main():
    rows = entries()
    if "--json" in sys.argv:
        json.dump([dict(zip(("kind", "name", "status", "handler"), r)) for r in rows],
                  sys.stdout, indent=1)
        print()
        return
    for kind, name, status, _ in rows:
        print(f"{kind:7} {name:28} {status}")


if __name__ == "__main__":
    main()
