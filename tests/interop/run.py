#!/usr/bin/env python3
"""Portico's interop suite: one live Portico, third-party clients, PASS/FAIL lines, a summary.

Usage: run.py --bin PATH/TO/portico [--only litmus,vdirsyncer,tsdav,vdirsyncer-mongo] [--keep]

Each client gets its own organization with CardDAV installed (so the scenarios cannot disturb
one another) and, where it syncs contacts, a few hundred deterministic customers. Each scenario
runs as a child process with a time limit and prints `PASS name`, `FAIL name: why` or
`SKIP name: why` lines; anything else it prints goes to the log file in the work directory.

`vdirsyncer-mongo` runs the vdirsyncer scenario against two `portico serve` processes sharing
one MongoDB-compatible store (nx-27017, installed by tests/mongo/nx.sh): set-up and server-side
edits through process A, vdirsyncer's writes through A and its reads through B.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import portico  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
NX_SH = os.path.join(ROOT, "tests", "mongo", "nx.sh")

CUSTOMERS = 300  # "a few hundred"

# name -> (command, time limit in seconds, customers to seed)
CLIENTS = {
    "litmus": ([sys.executable, os.path.join(HERE, "litmus", "run_litmus.py")], 240, 0),
    "vdirsyncer": ([sys.executable, os.path.join(HERE, "vdirsyncer", "scenario.py")], 300, CUSTOMERS),
    "tsdav": (["node", os.path.join(HERE, "tsdav", "scenario.mjs")], 180, CUSTOMERS),
    "vdirsyncer-mongo": ([sys.executable, os.path.join(HERE, "vdirsyncer", "scenario.py")], 300,
                         CUSTOMERS),
}
# Clients that run against two `portico serve` processes on one MongoDB store, not the demo.
TWO_PROCESSES = {"vdirsyncer-mongo"}


class Pair:
    """nx-27017 and two `portico serve` processes on one database, same key and admin token."""

    def __init__(self, binary: str, work: str):
        import base64
        import secrets
        self.procs: list[portico.Proc] = []
        self.token = "interop-" + secrets.token_hex(20)
        self.nx = portico.start_nx(NX_SH, os.path.join(work, "nx"), os.path.join(work, "nx.log"))
        self.procs.append(self.nx)
        env = {"PORTICO_STORE__KIND": "mongodb", "PORTICO_STORE__URI": self.nx.url,
               "PORTICO_STORE__DATABASE": "interop",
               "PORTICO_SECRETS__KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
               "PORTICO_ADMIN__TOKEN": self.token}
        try:
            self.a = portico.start_serve(binary, os.path.join(work, "a"),
                                         os.path.join(work, "portico-a.log"), env)
            self.procs.append(self.a)
            self.b = portico.start_serve(binary, os.path.join(work, "b"),
                                         os.path.join(work, "portico-b.log"), env)
            self.procs.append(self.b)
        except Exception:
            for p in reversed(self.procs):
                p.stop()
            raise

    def stop(self) -> list[str]:
        """Stops B, A, then nx; the processes that did not exit cleanly on SIGTERM."""
        bad = []
        names = ["nx-27017", "portico A", "portico B"]
        for name, p in reversed(list(zip(names, self.procs))):
            p.stop()
            if name != "nx-27017" and p.proc.returncode not in (0, None):
                bad.append(f"{name} exited {p.proc.returncode}")
        return bad


def run_client(name: str, cmd: list[str], limit: float, env: dict, log) -> tuple[int, int, int]:
    passed = failed = skipped = 0
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            stdin=subprocess.DEVNULL)
    timer = threading.Timer(limit, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            log.write(f"[{name}] {line}\n")
            if line.startswith("PASS "):
                passed += 1
                print(line, flush=True)
            elif line.startswith("FAIL "):
                failed += 1
                print(line, flush=True)
            elif line.startswith("SKIP "):
                skipped += 1
                print(line, flush=True)
        code = proc.wait()
    finally:
        timer.cancel()
    took = time.monotonic() - started
    if took >= limit:
        failed += 1
        print(f"FAIL {name}: scenario killed after its time limit of {limit:.0f} s", flush=True)
    elif code != 0 and failed == 0:
        failed += 1
        print(f"FAIL {name}: scenario exited {code} without a FAIL line (see the log)", flush=True)
    elif passed + failed == 0:
        failed += 1
        print(f"FAIL {name}: scenario reported no result", flush=True)
    log.write(f"[{name}] finished in {took:.1f} s, exit {code}\n")
    log.flush()
    print(f"# {name}: {took:.1f} s", flush=True)
    return passed, failed, skipped


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the portico binary")
    ap.add_argument("--only", default=",".join(CLIENTS), help="comma-separated clients")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in only if c not in CLIENTS]
    if unknown:
        print(f"unknown client(s): {unknown}; known: {list(CLIENTS)}", file=sys.stderr)
        return 2

    work = tempfile.mkdtemp(prefix="portico-interop-")
    log_path = os.path.join(work, "interop.log")
    print(f"# work directory: {work} (log: {log_path})", flush=True)
    passed = failed = skipped = 0
    server = None
    pair: Pair | None = None
    started = time.monotonic()
    with open(log_path, "a", encoding="utf-8") as log:
        try:
            if any(c not in TWO_PROCESSES for c in only):
                server = portico.start_portico(args.bin, os.path.join(work, "data"),
                                               os.path.join(work, "portico.log"))
                print(f"# portico at {server.url}", flush=True)
            for name in only:
                cmd, limit, n = CLIENTS[name]
                org = name.replace("_", "-")
                try:
                    if name in TWO_PROCESSES:
                        if pair is None:
                            pair = Pair(args.bin, os.path.join(work, "two-processes"))
                            print(f"# nx-27017 at {pair.nx.url}; portico A at {pair.a.url}, "
                                  f"B at {pair.b.url}", flush=True)
                        host_url, token = pair.a.url, pair.token
                    else:
                        assert server is not None
                        host_url, token = server.url, server.admin_token
                    admin = portico.Admin(host_url, token)
                    admin.create_org(org, f"Interop {name}")
                    book = admin.install_carddav(org)
                    if n:
                        admin.import_customers(org, portico.customers(n))
                except Exception as e:  # noqa: BLE001 - reported as the scenario's failure
                    failed += 1
                    print(f"FAIL {name}: setup: {e}", flush=True)
                    continue
                cwork = os.path.join(work, name)
                os.makedirs(cwork, exist_ok=True)
                ctx = dict(book.to_json(), host_url=host_url, admin_token=token,
                           customers=n, work=cwork)
                if server is not None:
                    ctx["demo"] = server.demo.to_json()
                if name in TWO_PROCESSES and pair is not None:
                    # The client reads through B; writes and admin calls go through A.
                    path = book.url[len(pair.a.url):] if book.url.startswith(pair.a.url) \
                        else "/" + book.url.split("/", 3)[3]
                    ctx.update(url=pair.b.url + path, book_url=pair.b.url + path +
                               "addressbook/customers/", host_url=pair.b.url,
                               write_url=pair.a.url, admin_url=pair.a.url,
                               label="[2 processes, MongoDB; A writes, B reads] ")
                ctx_path = os.path.join(cwork, "context.json")
                with open(ctx_path, "w", encoding="utf-8") as f:
                    json.dump(ctx, f, indent=1)
                env = dict(os.environ, PORTICO_INTEROP_CONTEXT=ctx_path,
                           PYTHONPATH=os.path.join(HERE, "lib"))
                p, f_, s = run_client(name, cmd, limit, env, log)
                passed, failed, skipped = passed + p, failed + f_, skipped + s
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAIL setup: {e}", flush=True)
        finally:
            if pair is not None:
                for why in pair.stop():
                    failed += 1
                    print(f"FAIL portico (two processes): {why} on SIGTERM", flush=True)
            if server is not None:
                server.stop()
                if server.proc.returncode not in (0, None):
                    failed += 1
                    print(f"FAIL portico: exited {server.proc.returncode} on SIGTERM", flush=True)
    print(f"# total {time.monotonic() - started:.1f} s", flush=True)
    if failed and not args.keep:
        print(f"# keeping {work} for inspection (failures)", flush=True)
    elif not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    summary = f"{passed} passed, {failed} failed"
    if skipped:
        summary += f", {skipped} skipped"
    print(summary, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
