"""Shared helpers of the interop suite: starting Portico, the admin API, seeding, reporting.

Standard library only, so the suite needs no virtualenv of its own.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------------
# Reporting: every scenario prints one line per check, `PASS <name>` or `FAIL <name>: <why>`;
# `SKIP <name>: <why>` for a documented exclusion. run.py counts these lines.


def report(ok: bool, name: str, why: str = "") -> bool:
    if ok:
        print(f"PASS {name}", flush=True)
    else:
        one_line = " ".join(str(why).split())
        print(f"FAIL {name}: {one_line[:600]}", flush=True)
    return ok


def skip(name: str, why: str) -> None:
    print(f"SKIP {name}: {' '.join(why.split())}", flush=True)


class Check:
    """A named step: `with Check("tsdav: fetch"):` prints PASS, or FAIL with the exception."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            report(True, self.name)
        else:
            report(False, self.name, f"{et.__name__}: {ev}")
        return True  # go on with the next check


# --------------------------------------------------------------------------------------------
# HTTP


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def request(method: str, url: str, body: bytes | str | None = None, headers: dict | None = None,
            timeout: float = 30.0) -> Resp:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Admin:
    def __init__(self, base: str, token: str):
        self.base = base.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, payload=None, raw: bytes | None = None,
             expect: tuple[int, ...] = (200, 201, 204)):
        headers = {"Authorization": f"Bearer {self.token}"}
        body = raw
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        r = request(method, self.base + "/admin/api" + path, body, headers)
        if r.status not in expect:
            raise RuntimeError(f"admin {method} {path} -> {r.status}: {r.text()[:300]}")
        return r.json() if r.body else None

    def create_org(self, slug: str, name: str):
        return self.call("POST", "/orgs", {"slug": slug, "name": name, "id": slug})

    def install_carddav(self, org: str) -> "Book":
        out = self.call("POST", f"/orgs/{org}/installations", {"kind": "carddav"})
        reveal = out["reveal"]
        return Book(url=reveal["url"], username=reveal["username"], password=reveal["password"],
                    org=org, installation=out["installation"]["id"])

    def import_customers(self, org: str, customers: list[dict]):
        text = "\n".join(json.dumps(c, ensure_ascii=False) for c in customers) + "\n"
        rep = self.call("POST", f"/orgs/{org}/customers/import", raw=text.encode("utf-8"))
        if rep.get("errors"):
            raise RuntimeError(f"import errors: {rep['errors'][:5]}")
        return rep

    def patch_customer(self, org: str, cid: str, patch: dict):
        return self.call("PATCH", f"/orgs/{org}/customers/{urllib.parse.quote(cid)}", patch)

    def get_customer(self, org: str, cid: str):
        return self.call("GET", f"/orgs/{org}/customers/{urllib.parse.quote(cid)}")

    def delete_customer(self, org: str, cid: str):
        return self.call("DELETE", f"/orgs/{org}/customers/{urllib.parse.quote(cid)}")

    def create_customer(self, org: str, c: dict):
        return self.call("POST", f"/orgs/{org}/customers", c)


@dataclass
class Book:
    """One organization's CardDAV installation as a client is given it."""
    url: str          # installation base URL, ends with '/'
    username: str
    password: str
    org: str
    installation: str

    @property
    def book_url(self) -> str:
        return self.url + "addressbook/customers/"

    @property
    def auth(self) -> str:
        return basic(self.username, self.password)

    def to_json(self) -> dict:
        return dict(url=self.url, username=self.username, password=self.password, org=self.org,
                    installation=self.installation, book_url=self.book_url)


# --------------------------------------------------------------------------------------------
# Deterministic customers ("a few hundred"), with the text that exercises escaping and folding.

GIVEN = ["Amélie", "Björn", "Chloé", "Dmitri", "Eun-ji", "Farah", "Giovanni", "Hana", "Ígor",
         "Jürgen", "Kwame", "Léa", "Mateo", "Nadia", "Oğuz", "Priya", "Quentin", "Rosa",
         "Søren", "Thandiwe", "Ulla", "Vikram", "Wen", "Xóchitl", "Yusuf", "Zoë"]
FAMILY = ["Durand", "Lindqvist", "Martin", "Ivanov", "Kim", "Haddad", "Rossi", "Nováková",
          "Sigurðsson", "Müller", "Mensah", "Lefèvre", "García", "Benali", "Yılmaz", "Sharma",
          "O'Brien", "de la Cruz", "Østergaard", "Dlamini", "Virtanen", "Patel", "Li",
          "Hernández", "Al-Amin", "van der Berg"]
NOTES = [None, "Prefers mornings", "Allergic to latex; uses the side entrance",
         "Colour: 6.1, 20 vol", "Referred by a friend\nSecond visit free",
         "Long note " + "with many words that make the line longer than seventy-five octets " * 2,
         "Backslash \\ and comma , and semicolon ;"]


def customers(n: int, prefix: str = "cust") -> list[dict]:
    rng = random.Random(6)  # the issue number: the same customers on every run
    out = []
    for i in range(1, n + 1):
        g = GIVEN[rng.randrange(len(GIVEN))]
        f = FAMILY[rng.randrange(len(FAMILY))]
        c = {"id": f"{prefix}-{i:04d}", "name": f"{g} {f}", "given_name": g, "family_name": f,
             "email": f"{prefix}{i:04d}@example.com",
             "phone": f"+33 6 {rng.randrange(10, 99)} {rng.randrange(10, 99)} "
                      f"{rng.randrange(10, 99)} {i % 100:02d}"}
        if i % 3 == 0:
            c["known_emails"] = [f"{prefix}{i:04d}.work@example.org"]
        if i % 4 == 0:
            c["birthday"] = f"19{rng.randrange(50, 99)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 28):02d}"
        elif i % 7 == 0:
            c["birthday"] = f"--{rng.randrange(1, 13):02d}-{rng.randrange(1, 28):02d}"
        note = NOTES[i % len(NOTES)]
        if note:
            c["note"] = note
        out.append(c)
    return out


# --------------------------------------------------------------------------------------------
# The Portico process


@dataclass
class Portico:
    proc: subprocess.Popen
    url: str
    admin_token: str
    demo: Book
    lines: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the suite itself dies, so no server outlives it (Linux)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_portico(binary: str, data_dir: str, log_path: str, timeout: float = 60.0) -> Portico:
    """`portico demo` on a free loopback port; returns once its printed URL answers /readyz."""
    env = dict(os.environ, PORTICO_LOG__FILTER=os.environ.get("PORTICO_LOG__FILTER", "warn"))
    log = open(log_path, "ab")
    proc = subprocess.Popen([binary, "demo", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
                            stdout=subprocess.PIPE, stderr=log, env=env,
                            preexec_fn=_die_with_parent)
    lines: list[str] = []
    done = threading.Event()

    def read():
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            log.write(raw)
            log.flush()
            if line.startswith("Example app"):
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(timeout) or proc.poll() is not None:
        proc.kill()
        raise RuntimeError(f"portico demo did not start; output: {lines}")

    def find(prefix: str) -> str:
        for ln in lines:
            s = ln.strip()
            if s.startswith(prefix):
                return s[len(prefix):].strip()
        raise RuntimeError(f"no '{prefix}' in the demo output: {lines}")

    url = find("Portico demo is running at")
    token = find("admin API:").split("Bearer ", 1)[1].rstrip(")")
    demo = Book(url=find("server URL:"), username=find("username:"), password=find("password:"),
                org="demo", installation="")
    deadline = time.monotonic() + timeout
    while True:
        try:
            if request("GET", url + "/readyz", timeout=2).status == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{url}/readyz never answered 200")
        time.sleep(0.1)
    return Portico(proc=proc, url=url, admin_token=token, demo=demo, lines=lines)


def eprint(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Two `portico serve` processes on one MongoDB-compatible store (nx-27017).


@dataclass
class Proc:
    """A child process this suite started (stopped by its own PID, never by name)."""
    proc: subprocess.Popen
    url: str

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def _free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_nx(nx_sh: str, data_dir: str, log_path: str, timeout: float = 30.0) -> Proc:
    """nx-27017 on a free loopback port. `nx_sh install` (tests/mongo/nx.sh, shared with
    tests/mongo/run.sh's venv) installs it if missing; the server is started here so that it
    dies with the suite. Returns once it accepts connections; `url` is the mongodb:// URI."""
    import socket
    nx = subprocess.run([nx_sh, "install"], capture_output=True, text=True, timeout=300)
    if nx.returncode != 0:
        raise RuntimeError(f"nx.sh install failed: {nx.stderr[-500:]}")
    binary = nx.stdout.strip().splitlines()[-1]
    port = _free_port()
    os.makedirs(data_dir, exist_ok=True)
    log = open(log_path, "ab")
    proc = subprocess.Popen([binary, "--host", "127.0.0.1", "-p", str(port), "--data-dir",
                             os.path.join(data_dir, "data"), "--log-file",
                             os.path.join(data_dir, "nx.log")],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                            preexec_fn=_die_with_parent)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"nx-27017 exited during startup ({proc.returncode}); see {log_path}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"nx-27017 did not listen on 127.0.0.1:{port} within {timeout} s")
        time.sleep(0.2)
    return Proc(proc=proc, url=f"mongodb://127.0.0.1:{port}")


def start_serve(binary: str, data_dir: str, log_path: str, env_extra: dict,
                timeout: float = 60.0) -> Proc:
    """`portico serve` on a free loopback port; returns once it answers /readyz."""
    env = dict(os.environ, PORTICO_LOG__FILTER=os.environ.get("PORTICO_LOG__FILTER", "warn"),
               **env_extra)
    os.makedirs(data_dir, exist_ok=True)
    log = open(log_path, "ab")
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
                            stdout=log, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=env, preexec_fn=_die_with_parent)
    found: list[str] = []
    done = threading.Event()

    def read():
        assert proc.stderr is not None
        for raw in proc.stderr:
            log.write(raw)
            log.flush()
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("portico listening on ") and not found:
                found.append(line[len("portico listening on "):].strip())
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(timeout) or not found:
        proc.kill()
        raise RuntimeError(f"portico serve did not start; see {log_path}")
    url = found[0]
    deadline = time.monotonic() + timeout
    while True:
        try:
            if request("GET", url + "/readyz", timeout=2).status == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"{url}/readyz never answered 200; see {log_path}")
        time.sleep(0.1)
    return Proc(proc=proc, url=url)
