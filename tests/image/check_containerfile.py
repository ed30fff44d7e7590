#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Static checks of deploy/Containerfile, with no container tools.

  check_containerfile.py REPO [CONTAINERFILE]
  check_containerfile.py --self-test REPO   (each of MUTATIONS must fail)

Fails (exit 1, one line per problem) unless:
  - every instruction is a known Dockerfile instruction, continuation lines
    (a trailing backslash) join, and the file does not end in one;
  - only ARG comes before the first FROM; every FROM names an image (a
    variable in it is an ARG declared before the first FROM); stage names
    are unique; COPY --from names an earlier stage;
  - every COPY/ADD source from the build context exists in REPO and is not
    excluded by .containerignore (or .dockerignore); no ADD of URLs;
  - every directory the top-level CMakeLists.txt reads (add_subdirectory,
    include of a file in the tree; tests/ aside, built only with STOKER_TESTS)
    is copied into the build stage, so a new component cannot be left out;
  - the final stage installs no build tools (gcc, cmake, build-essential,
    *-dev packages...), copies from the build stage, ends as a USER that is
    neither root nor uid 0, and has an ENTRYPOINT running stokerd.
"""
import fnmatch
import json
import os
import re
import shlex
import sys

KNOWN = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
         "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
         "HEALTHCHECK", "SHELL"}
BUILD_TOOLS = re.compile(r"^(gcc(-\d+)?|g\+\+(-\d+)?|cc|clang(-\d+)?|cmake|make|build-essential|"
                         r"pkg-config|pkgconf|binutils|.*-dev)$")


def instructions(text, errors):
    """[(line number, INSTRUCTION, arguments)], continuation lines joined."""
    out, buf, start = [], "", 0
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):  # comment lines inside a continuation are dropped
            continue
        if not buf:
            start = n
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        word, _, rest = buf.partition(" ")
        if word.upper() not in KNOWN:
            errors.append("line %d: unknown instruction %r" % (start, word))
        elif word != word.upper():
            errors.append("line %d: instruction %r not in upper case" % (start, word))
        out.append((start, word.upper(), rest.strip()))
        buf = ""
    if buf:
        errors.append("line %d: the file ends inside a continuation" % start)
    return out


def ignore_patterns(repo):
    for name in (".containerignore", ".dockerignore"):
        p = os.path.join(repo, name)
        if os.path.exists(p):
            with open(p) as f:
                return [ln.strip().rstrip("/") for ln in f
                        if ln.strip() and not ln.lstrip().startswith("#")]
    return []


def ignored(path, patterns):
    path = os.path.normpath(path)
    parts = path.split("/")
    hit = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        pat = pat.lstrip("/")
        # A pattern excludes a path or any directory above it.
        if any(fnmatch.fnmatch("/".join(parts[:i]), pat) or
               (pat.startswith("**/") and fnmatch.fnmatch(parts[i - 1], pat[3:]))
               for i in range(1, len(parts) + 1)):
            hit = not neg
    return hit


def copy_args(rest):
    """(flags dict, sources, destination) of a COPY/ADD, shell or JSON form."""
    words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    flags = {}
    while words and words[0].startswith("--"):
        k, _, v = words.pop(0)[2:].partition("=")
        flags[k] = v
    return flags, words[:-1], words[-1] if words else None


# Breakages of the real Containerfile, each of which the check must reject:
# (what, text to find, replacement).  Found text missing is itself a failure.
MUTATIONS = [
    ("unknown instruction", "\nWORKDIR ", "\nWORKDIRR "),
    ("COPY --from a stage that is not there", "COPY --from=build", "COPY --from=no-such-stage"),
    ("COPY of a missing source", "COPY client/ client/", "COPY no-such-dir/ client/"),
    ("a component left out", "COPY gpu/ gpu/\n", ""),
    ("a compiler in the final stage", "libmicrohttpd12 ", "libmicrohttpd12 gcc "),
    ("a -dev package in the final stage", "libmicrohttpd12 ", "libmicrohttpd12 libssl-dev "),
    ("root user", "USER 65532:65532", "USER root"),
    ("no user", "USER 65532:65532", ""),
    ("undeclared ARG in FROM", "FROM ${BASE} AS build", "FROM ${NOT_AN_ARG} AS build"),
    ("RUN before FROM", "ARG BASE=", "RUN true\nARG BASE="),
    ("duplicate stage", "AS runtime", "AS build"),
    ("ENTRYPOINT not stokerd", 'ENTRYPOINT ["/opt/stoker/bin/stokerd"]', 'ENTRYPOINT ["/bin/sh"]'),
]


def self_test(repo):
    import subprocess  # noqa: PLC0415
    import tempfile  # noqa: PLC0415
    with open(os.path.join(repo, "deploy", "Containerfile")) as f:
        orig = f.read()
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = MUTATIONS + [("a trailing continuation", None, None)]
        for what, old, new in cases:
            if old is None:
                text = orig.rstrip() + " \\\n"
            elif old not in orig:
                print("self-test: %s: %r is not in the Containerfile" % (what, old))
                bad += 1
                continue
            else:
                text = orig.replace(old, new, 1)
            p = os.path.join(tmp, "Containerfile")
            with open(p, "w") as f:
                f.write(text)
            r = subprocess.run([sys.executable, os.path.abspath(__file__), repo, p],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode == 0:
                print("self-test: %s: accepted, should fail" % what)
                bad += 1
            else:
                print("self-test: %s: rejected: %s" % (what, r.stdout.splitlines()[0]))
    print("self-test: %d of %d breakages rejected" % (len(cases) - bad, len(cases)))
    return 1 if bad else 0


def main():
    if sys.argv[1] == "--self-test":
        return self_test(os.path.abspath(sys.argv[2]))
    repo = os.path.abspath(sys.argv[1])
    cf = sys.argv[2] if len(sys.argv) > 2 else os.path.join(repo, "deploy", "Containerfile")
    errors = []
    with open(cf) as f:
        ins = instructions(f.read(), errors)
    patterns = ignore_patterns(repo)

    global_args, stages = set(), []  # stages: dicts name, ins, base
    for n, op, rest in ins:
        if op == "FROM":
            words = rest.split()
            if not words:
                errors.append("line %d: FROM without an image" % n)
                continue
            name = None
            if len(words) == 3 and words[1].upper() == "AS":
                name = words[2].lower()
            elif len(words) != 1:
                errors.append("line %d: FROM IMAGE [AS NAME] expected, got %r" % (n, rest))
            for var in re.findall(r"\$\{?(\w+)", words[0]):
                if var not in global_args:
                    errors.append("line %d: FROM uses ${%s}, not an ARG before the first FROM"
                                  % (n, var))
            if name and any(s["name"] == name for s in stages):
                errors.append("line %d: stage name %r used twice" % (n, name))
            stages.append({"name": name, "line": n, "ins": [], "base": words[0]})
        elif not stages:
            if op != "ARG":
                errors.append("line %d: %s before the first FROM (only ARG may be)" % (n, op))
            else:
                global_args.add(rest.split("=")[0].strip())
        else:
            stages[-1]["ins"].append((n, op, rest))
    if not stages:
        errors.append("no FROM")
        return report(errors)

    copied = set()  # context paths copied into any stage, normalized
    for i, st in enumerate(stages):
        for n, op, rest in st["ins"]:
            if op not in ("COPY", "ADD"):
                continue
            try:
                flags, srcs, dest = copy_args(rest)
            except ValueError as e:
                errors.append("line %d: %s: cannot parse %r: %s" % (n, op, rest, e))
                continue
            if not srcs or not dest:
                errors.append("line %d: %s needs a source and a destination" % (n, op))
                continue
            if "from" in flags:
                src_stage = flags["from"].lower()
                earlier = [s["name"] for s in stages[:i]]
                if src_stage.isdigit():
                    if int(src_stage) >= i:
                        errors.append("line %d: COPY --from=%s is not an earlier stage" % (n, src_stage))
                elif src_stage not in earlier:
                    errors.append("line %d: COPY --from=%s names no earlier stage (have %s)"
                                  % (n, flags["from"], ", ".join(filter(None, earlier)) or "none"))
                continue
            for src in srcs:
                if re.match(r"^[a-z]+://", src):
                    errors.append("line %d: %s of a URL (%s): the build must need only the context"
                                  % (n, op, src))
                    continue
                rel = os.path.normpath(src.lstrip("/"))
                if rel.startswith(".."):
                    errors.append("line %d: %s source %s is outside the context" % (n, op, src))
                    continue
                if not os.path.exists(os.path.join(repo, rel)):
                    errors.append("line %d: %s source %s does not exist in %s" % (n, op, src, repo))
                elif rel != "." and ignored(rel, patterns):
                    errors.append("line %d: %s source %s is excluded by .containerignore"
                                  % (n, op, src))
                copied.add(rel)

    # Every directory and file the top-level CMakeLists.txt reads is copied.
    with open(os.path.join(repo, "CMakeLists.txt")) as f:
        cm = re.sub(r"#.*", "", f.read())
    needed = set(re.findall(r"add_subdirectory\(\s*([\w./-]+)", cm))
    needed |= {os.path.dirname(p) or p for p in re.findall(r"\binclude\(\s*([\w./-]+\.cmake)", cm)}
    needed.discard("tests")
    if "." not in copied:
        for d in sorted(needed):
            if not any(d == c or d.startswith(c + "/") for c in copied):
                errors.append("%s (read by CMakeLists.txt) is not copied into the image build" % d)

    final = stages[-1]
    if not any(op == "COPY" and "--from" in rest for _, op, rest in final["ins"]):
        errors.append("final stage (line %d) copies nothing from a build stage" % final["line"])
    for n, op, rest in final["ins"]:
        if op != "RUN":
            continue
        for cmd in re.split(r"&&|;|\|\|", rest):
            w = cmd.split()
            if len(w) >= 2 and w[0] in ("apt-get", "apt") and "install" in w:
                pkgs = [p for p in w[w.index("install") + 1:] if not p.startswith("-")]
                for p in pkgs:
                    if BUILD_TOOLS.match(p.split("=")[0]):
                        errors.append("line %d: the final stage installs build tool %s" % (n, p))
    users = [rest for _, op, rest in final["ins"] if op == "USER"]
    if not users:
        errors.append("final stage has no USER: it would run as root")
    else:
        u = users[-1].split(":")[0]
        if u in ("root", "0") or not u:
            errors.append("final stage's USER is %r: root" % users[-1])
    eps = [rest for _, op, rest in final["ins"] if op == "ENTRYPOINT"]
    if not eps or "stokerd" not in eps[-1]:
        errors.append("final stage's ENTRYPOINT does not run stokerd")
    return report(errors, cf, len(ins), len(stages))


def report(errors, cf="", n=0, stages=0):
    for e in errors:
        print("check_containerfile: %s" % e)
    if errors:
        return 1
    print("check_containerfile: %s: %d instructions, %d stages, ok" % (cf, n, stages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
