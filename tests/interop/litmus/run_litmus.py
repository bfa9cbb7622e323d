#!/usr/bin/env python3
"""litmus (the WebDAV compliance suite, Debian package `litmus` 0.13) against Portico.

Runs the groups `basic`, `copymove`, `props` and `http` one by one (each is its own program
under /usr/libexec/litmus) and turns litmus's per-test lines into PASS/FAIL/SKIP lines. A test
that litmus never reached (a group stops when its `begin` step cannot create the scratch
collection `litmus/` with MKCOL) is reported as FAIL "not run": a test counts only if it ran.
Exclusions come from exclusions.txt beside this file and nowhere else.

Target: TARGET below, or LITMUS_URL (+ LITMUS_USER / LITMUS_PASSWORD) from the environment.
By default the litmus organization gets the `webdav-scratch` example app installed through the
admin API, and litmus runs against that installation's base URL with its Basic credentials.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from portico import Admin, report, skip  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LIBEXEC = os.environ.get("LITMUS_TESTROOT", "/usr/libexec/litmus")
HTDOCS = os.environ.get("LITMUS_HTDOCS", "/usr/share/litmus/htdocs")
GROUPS = ["basic", "copymove", "props", "http"]

# Where litmus is pointed:
# "webdav-scratch" = the base URL of a `webdav-scratch` installation (examples/webdav-scratch, a
#                    plain WebDAV class 1 collection) made for the litmus organization here;
# "book"           = the litmus organization's CardDAV book, addressbook/customers/ (litmus cannot
#                    start there: see README.md, "litmus").
TARGET = "webdav-scratch"

# The tests of each group, in order, as litmus 0.13 runs them (numbered from 0). Used to report
# the tests a group never reached.
EXPECTED = {
    "basic": "init begin options put_get put_get_utf8_segment put_no_parent mkcol_over_plain "
             "delete delete_null delete_fragment mkcol mkcol_again delete_coll mkcol_no_parent "
             "mkcol_with_body finish",
    "copymove": "init begin copy_init copy_simple copy_overwrite copy_nodestcoll copy_cleanup "
                "copy_coll copy_shallow move move_coll move_cleanup finish",
    "props": "init begin propfind_invalid propfind_invalid2 propfind_d0 propinit propset propget "
             "propextended propmove propget propdeletes propget propreplace propget propnullns "
             "propget prophighunicode propget propremoveset propget propsetremove propget "
             "propvalnspace propwformed propinit propmanyns propget propcleanup finish",
    "http": "init begin expect100 finish",
}

LINE = re.compile(r"^\s*(\d+)\.\s+([A-Za-z0-9_]+)\.*\s*(pass|FAIL|SKIPPED|WARNING:?)?(.*)$")
# The continuation line of a test that warned: `    ...................... pass (with 1 warning)`.
CONT = re.compile(r"^\s*\.{3,}\s*(pass|FAIL|SKIPPED|WARNING:?)?(.*)$")


def load_exclusions() -> dict[str, str]:
    out = {}
    with open(os.path.join(HERE, "exclusions.txt"), encoding="utf-8") as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            key, _, why = line.partition(" ")
            out[key.strip()] = why.strip() or "(no reason given)"
    return out


def names_with_occurrence(tests: list[str]) -> list[str]:
    """propget appears many times in `props`: the 2nd is propget#2, and so on."""
    seen: dict[str, int] = {}
    out = []
    for t in tests:
        seen[t] = seen.get(t, 0) + 1
        out.append(t if seen[t] == 1 else f"{t}#{seen[t]}")
    return out


def litmus_argv(prog: str, url: str, user: str, password: str) -> list[str]:
    """The command line for one litmus group. `--` ends litmus's options: a generated password
    may start with '-' (URL-safe base64), and litmus (getopt) would take it for an option,
    print its usage and run nothing; that made CI fail one run in 64."""
    return [prog, "--htdocs", HTDOCS, "--", url, user, password]


# A test's first line again on the same line (`N. name.... N. name.... FAIL`): litmus writes
# the test name before running it and again with its result when the test printed something.
RESTART = re.compile(r"(?=\b\d+\.\s+[A-Za-z0-9_]+\.{2,})")


def parse(output: str) -> dict[int, tuple[str, str, str]]:
    """index -> (name, 'pass'|'FAIL'|'SKIPPED', detail) from litmus's console output.

    A test that warns prints `N. name.... WARNING: text` and then its result on a continuation
    line, `    ...................... pass (with 1 warning)` (further warnings also come as
    continuation lines); the warnings become part of the test's detail.
    """
    results: dict[int, tuple[str, str, str]] = {}
    current = None  # a FAIL whose reason continues on the following lines
    pending = None  # (index, name) of a test that warned and whose result is still to come
    # litmus redraws each line with \r; the last redraw on a line is the final state.
    lines = [RESTART.split(ln.split("\r")[-1])[-1] for ln in output.splitlines()]
    warnings: list[str] = []
    for ln in lines:
        m = LINE.match(ln)
        c = None if m else CONT.match(ln)
        if m:
            idx, name, status, rest = int(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
            if status is not None and status.startswith("WARNING"):
                pending, current = (idx, name), None
                warnings.append(f"WARNING: {rest}")
                continue
        elif c and pending is not None and c.group(1):
            status, rest = c.group(1), c.group(2).strip()
            idx, name = pending
            if status.startswith("WARNING"):
                warnings.append(f"WARNING: {rest}")
                continue
        else:
            status = None
        if status in ("pass", "FAIL", "SKIPPED"):
            detail = rest
            if warnings:
                detail = (detail + " " + " | ".join(warnings)).strip()
                warnings = []
            results[idx] = (name, status, detail)
            pending = None
            current = idx if status == "FAIL" and not rest.endswith(")") else None
        elif ln.strip().startswith("WARNING:"):
            warnings.append(ln.strip())
        elif current is not None and ln.strip() and not ln.startswith("<-") and not ln.startswith("->"):
            name, status, detail = results[current]
            results[current] = (name, status, detail + " " + ln.strip())
            if ln.rstrip().endswith(")"):
                current = None
        else:
            current = None
    return results


def install_scratch(ctx: dict) -> tuple[str, str, str]:
    """Installs `webdav-scratch` for the litmus organization; (base URL, username, password)."""
    admin = Admin(ctx["host_url"], ctx["admin_token"])
    out = admin.call("POST", f"/orgs/{ctx['org']}/installations", {"kind": "webdav-scratch"})
    inst = out["installation"]
    if out.get("created"):
        reveal = out["reveal"]
        return reveal["url"], reveal["username"], reveal["password"]
    # Installed already (a reused data directory): the password is shown only once, so make a
    # new one.
    res = admin.call("POST", f"/orgs/{ctx['org']}/installations/{inst['id']}/actions/"
                             "regenerate-password", {})
    return inst["account"]["server_url"], inst["account"]["username"], res["result"]["password"]


def main() -> int:
    ctx = json.load(open(os.environ["PORTICO_INTEROP_CONTEXT"], encoding="utf-8"))
    if os.environ.get("LITMUS_URL"):
        url, user, password = os.environ["LITMUS_URL"], ctx["username"], ctx["password"]
    elif TARGET == "book":
        url, user, password = ctx["book_url"], ctx["username"], ctx["password"]
    else:
        try:
            url, user, password = install_scratch(ctx)
        except Exception as e:  # noqa: BLE001 - reported as a failure of the scenario
            report(False, "litmus setup", f"installing webdav-scratch: {e}")
            return 1
    user = os.environ.get("LITMUS_USER", user)
    password = os.environ.get("LITMUS_PASSWORD", password)
    exclusions = load_exclusions()
    print(f"# litmus target {url}", flush=True)
    for group in GROUPS:
        prog = os.path.join(LIBEXEC, group)
        try:
            proc = subprocess.run(litmus_argv(prog, url, user, password), cwd=ctx["work"],
                                  capture_output=True, timeout=120)
            out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
        except (OSError, subprocess.TimeoutExpired) as e:
            report(False, f"litmus {group}", f"could not run {prog}: {e}")
            continue
        with open(os.path.join(ctx["work"], f"litmus-{group}.out"), "w", encoding="utf-8") as f:
            f.write(out)
        print(out, flush=True)  # to the suite log (not PASS/FAIL lines)
        got = parse(out)
        expected = EXPECTED[group].split()
        labels = names_with_occurrence(expected)
        blocked = None
        if not got:
            # Nothing litmus printed is a test result: say what it printed instead (the suite's
            # output shows only PASS/FAIL/SKIP lines, the rest goes to interop.log).
            tail = " | ".join(ln.strip() for ln in out.strip().splitlines()[-4:])
            blocked = f"litmus {group} reported no test (exit {proc.returncode}): {tail[:400]}"
        for i, label in enumerate(labels):
            name = f"litmus {group}/{label}"
            key = f"{group}/{label}"
            res = got.get(i)
            if res is not None and res[0] != expected[i]:
                report(False, name, f"litmus ran '{res[0]}' as test {i}; this wrapper expects "
                                    f"litmus 0.13's order (update EXPECTED)")
                continue
            if key in exclusions:
                outcome = "not run" if res is None else f"{res[1]} {res[2]}".strip()
                skip(name, f"{exclusions[key]} [litmus said: {outcome}]")
                continue
            if res is None:
                report(False, name, f"not run: {blocked or 'the group stopped before it'}")
                continue
            _, status, detail = res
            if status == "pass":
                report(True, name + (f" {detail}" if detail else ""))
            elif status == "SKIPPED":
                report(False, name, f"litmus skipped it {detail}".strip())
            else:
                report(False, name, detail)
                if blocked is None:
                    blocked = f"{group}/{label} failed"
    dash_password_reaches_litmus(url, user, ctx["work"])
    return 0


def dash_password_reaches_litmus(url: str, user: str, work: str) -> None:
    """A password starting with '-' must reach litmus as the password, not as an option: the
    `http` group with such a (wrong) password has to report test results (the server turning
    the credentials away), not litmus's usage text. Run last, so the failed login cannot touch
    the groups above."""
    name = "litmus: a password starting with '-' is passed as the password"
    prog = os.path.join(LIBEXEC, "http")
    try:
        proc = subprocess.run(litmus_argv(prog, url, user, "-not-the-password"), cwd=work,
                              capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        report(False, name, f"could not run {prog}: {e}")
        return
    out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    print(out, flush=True)
    got = parse(out)
    if "invalid option" in out or not got:
        report(False, name, f"litmus did not run a test: {' | '.join(out.strip().splitlines()[-3:])}")
    elif all(status == "pass" for _, status, _ in got.values()):
        report(False, name, "every test passed with a wrong password")
    else:
        report(True, name)


if __name__ == "__main__":
    sys.exit(main())
