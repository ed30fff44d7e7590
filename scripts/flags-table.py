#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""stokerd's configuration table (flag, environment variable, default,
meaning), made from `stokerd --help` so that docs/deploy.md cannot drift.

  flags-table.py --stokerd build/prefetch/stokerd              # print the table
  flags-table.py --stokerd B --write docs/deploy.md             # rewrite it there
  flags-table.py --stokerd B --check docs/deploy.md [--source prefetch/options.c]

--check exits 1 when the table between the markers in the file differs from
the one --help gives, or when a flag has no environment twin; with --source,
also when a long option of options.c's getopt table or an environment variable
options.c reads is missing from --help (so --help cannot hide one).
"""
import argparse
import difflib
import re
import subprocess
import sys

BEGIN = "<!-- BEGIN flags-table: made by scripts/flags-table.py from `stokerd --help`; do not edit -->"
END = "<!-- END flags-table -->"
NO_ENV = {"help", "version"}  # flags that configure nothing
DESC_COL = 28  # where --help's descriptions start

# "  -s, --socket PATH         text" or "      --nvme-compress LEVEL text": a
# flag's argument follows its name after one space; descriptions are padded.
FLAG_RE = re.compile(r"^  (?:-(\w), |    )--([\w-]+)(?: (\S+))?(?:\s+(.*))?$")
ENV_RE = re.compile(r"\b((?:STOKER|AWS)_[A-Z0-9_]+)(=1)?\b")


def parse_help(text):
    """Returns [{short, long, arg, desc}] in --help's order."""
    flags, cur = [], None
    for line in text.splitlines():
        m = FLAG_RE.match(line)
        if m:
            short, name, arg, desc = m.groups()
            # Two spaces or more after the name: no argument, the text is padded.
            after = line[line.index("--" + name) + len(name) + 2:]
            if arg and after.startswith("  "):
                desc, arg = (arg + " " + (desc or "")).strip(), None
            cur = {"short": short, "long": name, "arg": arg, "desc": (desc or "").strip()}
            flags.append(cur)
        elif cur and line.startswith(" " * DESC_COL) and line.strip():
            cur["desc"] += " " + line.strip()
        else:
            cur = None  # a section heading or the text around the list
    return flags


def split_desc(f):
    """Splits a description into (env, default, meaning) as --help writes
    them: '(ENV[, more]; [default ]VALUE; note)' names the twin."""
    desc = f["desc"]
    env, default, notes = "", "", []
    for group in re.finditer(r"\(([^()]*)\)", desc):
        if not ENV_RE.search(group.group(1)):
            continue
        segs = [s.strip() for s in group.group(1).split(";")]
        envi = next(i for i, s in enumerate(segs) if ENV_RE.search(s))
        before, env, after = segs[:envi], segs[envi], segs[envi + 1:]
        if after and (after[0].startswith("default ")
                      or re.match(r"^[\w.:/%-]+(?:[:,]|$)", after[0])):
            default = re.sub(r"^default ", "", after.pop(0))
        notes = before + after
        desc = desc[:group.start()] + desc[group.end():]
        break
    desc = re.sub(r"\s+([.,;:])", r"\1", re.sub(r"\s+", " ", desc)).strip()
    if notes:
        desc += " (" + "; ".join(notes) + ")"
    if not default:
        default = "off" if not f["arg"] else "none"
    return env, default, desc


def md(s):
    return s.replace("|", "\\|")


def code(s):
    return "`" + md(s) + "`"


def table(flags):
    rows = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for f in flags:
        if f["long"] in NO_ENV:
            continue
        env, default, meaning = split_desc(f)
        flag = ("-" + f["short"] + ", " if f["short"] else "") + "--" + f["long"]
        if f["arg"]:
            flag += " " + f["arg"]
        env = ENV_RE.sub(lambda m: code(m.group(0)), md(env))
        rows.append("| " + " | ".join((code(flag), env, md(default), md(meaning))) + " |")
    return "\n".join(rows) + "\n"


def problems(flags, source):
    bad = [f"--{f['long']} has no environment twin in --help"
           for f in flags if f["long"] not in NO_ENV and not split_desc(f)[0]]
    if source:
        src = open(source, encoding="utf-8").read()
        longs = {f["long"] for f in flags}
        opts = re.search(r"struct option opts\[\] = \{(.*?)\n\t\};", src, re.S)
        if not opts:
            bad.append(f"{source}: no getopt table 'struct option opts[]' found")
        else:
            for name in re.findall(r'\{ "([\w-]+)",', opts.group(1)):
                if name not in longs:
                    bad.append(f"--{name} (getopt in {source}) is not in --help")
        helptext = " ".join(f["desc"] for f in flags)
        for env in sorted(set(re.findall(r'"((?:STOKER|AWS)_[A-Z0-9_]+)"', src))):
            if not re.search(r"\b" + env + r"\b", helptext):
                bad.append(f"{env} (read in {source}) is not named in --help")
    return bad


def between(text):
    """The text between the markers, or None."""
    a, b = text.find(BEGIN), text.find(END)
    if a < 0 or b < a:
        return None
    return text[a + len(BEGIN):b].strip("\n") + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stokerd", required=True, help="the stokerd binary")
    ap.add_argument("--source", help="prefetch/options.c, to check --help against")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--check", metavar="FILE", help="compare the table in FILE")
    g.add_argument("--write", metavar="FILE", help="replace the table in FILE")
    a = ap.parse_args()

    out = subprocess.run([a.stokerd, "--help"], capture_output=True, text=True, check=True)
    flags = parse_help(out.stdout)
    if len(flags) < 10:
        sys.exit(f"flags-table: only {len(flags)} flags found in `{a.stokerd} --help`")
    want = table(flags)
    bad = problems(flags, a.source)
    if not a.check and not a.write:
        sys.stdout.write(want)
    elif a.write:
        text = open(a.write, encoding="utf-8").read()
        if between(text) is None:
            sys.exit(f"flags-table: {a.write} has no '{BEGIN}' ... '{END}' markers")
        i, j = text.index(BEGIN) + len(BEGIN), text.index(END)
        open(a.write, "w", encoding="utf-8").write(text[:i] + "\n" + want + text[j:])
    else:
        have = between(open(a.check, encoding="utf-8").read())
        if have is None:
            bad.append(f"{a.check} has no '{BEGIN}' ... '{END}' markers")
        elif have != want:
            sys.stderr.writelines(difflib.unified_diff(
                have.splitlines(True), want.splitlines(True),
                a.check + " (as written)", "stokerd --help (as it should be)"))
            bad.append(f"{a.check}'s flags table differs from `stokerd --help` "
                       f"(regenerate: scripts/flags-table.py --stokerd STOKERD --write {a.check})")
    for b in bad:
        print("flags-table: " + b, file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
