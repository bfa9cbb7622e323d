#!/usr/bin/env python3
"""load.py - a load and soak test for Portico: N phones across many organizations (stdlib only).

Starts `portico serve` itself (embedded store in a temporary directory; or use --url and
--token for a running server), creates --orgs organizations with CardDAV installed and
--contacts customers each (admin bulk import), then runs --phones phones spread over the
organizations. Each phone does what a real CardDAV client does:

  discovery   PROPFIND /.well-known/carddav (redirect followed), current-user-principal on the
              principal, addressbook-home-set on the principal, the book's Depth 0 props
  initial     PROPFIND Depth 1 for every getetag, then addressbook-multiget in batches of 100
  steady      until --duration ends: every --interval seconds (with jitter) one incremental
              sync (sync-collection with its token + a multiget of what changed); with
              probability --edit-ratio an edit first: GET a card, PUT it back changed with
              If-Match (the other phones of the organization then see it in their next sync)

Reported: requests/s over the steady phase, p50/p99/max latency per request type, errors
(any unexpected status or failure; must be 0), the server's RSS, peak RSS (VmHWM) and open
file descriptors at the start of the steady phase and at its end (and sampled every 10 s: for
a soak, RSS and FDs must stay flat). Writes JSON with --out.

  bench/load.py --portico target/release/portico --orgs 50 --contacts 200 --phones 100 \\
      --duration 600 --out bench/results/soak.json

Every loop is bounded by --duration (and the setup by the counts).
"""
import argparse
import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

DAV = "DAV:"
CARD = "urn:ietf:params:xml:ns:carddav"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ the server
def start_server(binary, token):
    data = tempfile.mkdtemp(prefix="portico-load-")
    env = dict(os.environ)
    env.update({
        "PORTICO_ADMIN__TOKEN": token,
        "PORTICO_SECRETS__CREATE_KEY_FILE": "true",
        "PORTICO_LOG__FILTER": "warn",
    })
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    url = None
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        m = re.search(r"portico listening on (\S+)", line)
        if m:
            url = m.group(1)
            break
    if not url:
        proc.kill()
        raise SystemExit("portico did not start")
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, url, data


def proc_sample(pid):
    out = {"rss_kib": None, "hwm_kib": None, "fds": None}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    out["rss_kib"] = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    out["hwm_kib"] = int(line.split()[1])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return out


# ------------------------------------------------------------------------------ HTTP
class Conn:
    """One keep-alive connection with Basic (or bearer) credentials."""

    def __init__(self, base, auth):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.auth = auth
        self.c = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def req(self, method, path, body=None, headers=None):
        h = {"Authorization": self.auth}
        h.update(headers or {})
        if isinstance(body, str):
            body = body.encode()
        for attempt in range(2):
            try:
                self.c.request(method, path, body=body, headers=h)
                r = self.c.getresponse()
                data = r.read()
                return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def admin(base, token, method, path, body=None, ctype="application/json"):
    c = Conn(base, f"Bearer {token}")
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    status, _, data = c.req(method, "/admin/api" + path, body, {"Content-Type": ctype})
    if status >= 300:
        raise SystemExit(f"admin {method} {path}: {status} {data[:200]!r}")
    return json.loads(data) if data else None


def hrefs_etags(xml):
    """(href, getetag) pairs of a multistatus, by regex (the server's output is regular)."""
    out = []
    for resp in re.findall(r"<(?:\w+:)?response>(.*?)</(?:\w+:)?response>", xml, re.S):
        h = re.search(r"<(?:\w+:)?href>([^<]*)<", resp)
        e = re.search(r"<(?:\w+:)?getetag>([^<]*)<", resp)
        st = re.search(r"<(?:\w+:)?status>HTTP/1.1 (\d+)", resp)
        out.append((h.group(1) if h else None, e.group(1) if e else None,
                    int(st.group(1)) if st else 200))
    return out


def multiget_body(hrefs):
    inner = "".join(f"<d:href>{h}</d:href>" for h in hrefs)
    return (f'<?xml version="1.0"?><c:addressbook-multiget xmlns:d="{DAV}" xmlns:c="{CARD}">'
            f"<d:prop><d:getetag/><c:address-data/></d:prop>{inner}</c:addressbook-multiget>")


# ------------------------------------------------------------------------------ a phone
class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat = {}
        self.errors = []
        self.steady_requests = 0

    def add(self, kind, seconds, steady):
        with self.lock:
            self.lat.setdefault(kind, []).append(seconds)
            if steady:
                self.steady_requests += 1

    def error(self, what):
        with self.lock:
            if len(self.errors) < 50:
                self.errors.append(what)
            self.lat.setdefault("_errors", []).append(0)


class Phone(threading.Thread):
    def __init__(self, n, account, args, stats, stop_at, steady_flag):
        super().__init__(daemon=True)
        self.n, self.a, self.args, self.stats = n, account, args, stats
        self.stop_at, self.steady = stop_at, steady_flag
        self.rng = random.Random(args.seed * 1000 + n)
        auth = "Basic " + base64.b64encode(
            f"{account['username']}:{account['password']}".encode()).decode()
        self.conn = Conn(account["url"], auth)
        self.base = urllib.parse.urlsplit(account["url"]).path
        self.book = self.base + "addressbook/customers/"
        self.token = None
        self.etags = {}

    def timed(self, kind, method, path, body=None, headers=None, expect=(200, 207)):
        t = time.perf_counter()
        try:
            status, h, data = self.conn.req(method, path, body, headers)
        except Exception as e:  # noqa: BLE001 - any failure is an error of the run
            self.stats.error(f"{kind}: {e}")
            return None, None, b""
        self.stats.add(kind, time.perf_counter() - t, self.steady.is_set())
        if status not in expect:
            self.stats.error(f"{kind} {method} {path}: {status}")
        return status, h, data

    def discovery(self):
        x = {"Content-Type": "application/xml"}
        s, h, _ = self.timed("discovery", "PROPFIND", "/.well-known/carddav",
                             '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>'
                             "<d:current-user-principal/></d:prop></d:propfind>",
                             {**x, "Depth": "0"}, expect=(301, 302, 303, 307, 308, 207))
        for path, prop in [(self.base + "principal/", "<d:current-user-principal/>"),
                           (self.base + "principal/",
                            f'<c:addressbook-home-set xmlns:c="{CARD}"/>'),
                           (self.book, "<d:getctag/><d:sync-token/><d:displayname/>")]:
            self.timed("discovery", "PROPFIND", path,
                       f'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>{prop}'
                       "</d:prop></d:propfind>", {**x, "Depth": "0"})

    def initial(self):
        x = {"Content-Type": "application/xml", "Depth": "1"}
        _, _, data = self.timed("propfind-etags", "PROPFIND", self.book,
                                '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>'
                                "<d:getetag/></d:prop></d:propfind>", x)
        hrefs = [h for h, e, _ in hrefs_etags(data.decode("utf-8", "replace"))
                 if h and h.endswith(".vcf")]
        for i in range(0, len(hrefs), 100):
            _, _, body = self.timed("multiget", "REPORT", self.book, multiget_body(hrefs[i:i + 100]),
                                    {"Content-Type": "application/xml", "Depth": "1"})
            for h, e, st in hrefs_etags(body.decode("utf-8", "replace")):
                if h and e:
                    self.etags[h] = e
        self.sync()

    def sync(self):
        tok = f"<d:sync-token>{self.token}</d:sync-token>" if self.token else "<d:sync-token/>"
        _, _, data = self.timed(
            "sync-collection", "REPORT", self.book,
            f'<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:">{tok}'
            "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>",
            {"Content-Type": "application/xml", "Depth": "0"})
        text = data.decode("utf-8", "replace")
        m = re.search(r"<(?:\w+:)?sync-token>([^<]+)<", text)
        if m:
            self.token = m.group(1)
        changed = [h for h, e, st in hrefs_etags(text) if h and h.endswith(".vcf") and st != 404]
        if self.token and changed and self.steady.is_set():
            _, _, body = self.timed("multiget", "REPORT", self.book, multiget_body(changed[:100]),
                                    {"Content-Type": "application/xml", "Depth": "1"})
            for h, e, st in hrefs_etags(body.decode("utf-8", "replace")):
                if h and e:
                    self.etags[h] = e

    def edit(self):
        if not self.etags:
            return
        href = self.rng.choice(sorted(self.etags))
        s, h, data = self.timed("get", "GET", href)
        if s != 200:
            return
        etag = h.get("etag")
        text = data.decode("utf-8", "replace")
        note = f"NOTE:edited by phone {self.n} at {time.time():.3f}\r\n"
        text = re.sub(r"NOTE:[^\r\n]*\r\n", "", text).replace("END:VCARD", note + "END:VCARD")
        # A concurrent edit by another phone may win: 412 is the protocol working.
        s, h, _ = self.timed("put", "PUT", href, text,
                             {"Content-Type": "text/vcard; charset=utf-8", "If-Match": etag},
                             expect=(200, 201, 204, 412))
        if s in (200, 201, 204) and h.get("etag"):
            self.etags[href] = h["etag"]

    def run(self):
        try:
            self.discovery()
            self.initial()
            while time.time() < self.stop_at:
                time.sleep(self.args.interval * (0.5 + self.rng.random()))
                if not self.steady.is_set():
                    continue
                if self.rng.random() < self.args.edit_ratio:
                    self.edit()
                self.sync()
        except Exception as e:  # noqa: BLE001
            self.stats.error(f"phone {self.n} stopped: {e}")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else None


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--portico", help="the portico binary to start (embedded store)")
    ap.add_argument("--url", help="a running server instead")
    ap.add_argument("--token", default="load-test-admin-token")
    ap.add_argument("--server-pid", type=int, help="with --url: the server's PID for RSS/FDs")
    ap.add_argument("--orgs", type=int, default=20)
    ap.add_argument("--contacts", type=int, default=200)
    ap.add_argument("--phones", type=int, default=40)
    ap.add_argument("--duration", type=float, default=60, help="steady phase, seconds")
    ap.add_argument("--interval", type=float, default=2.0, help="mean seconds between syncs")
    ap.add_argument("--edit-ratio", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    proc, data_dir = None, None
    if args.portico:
        proc, url, data_dir = start_server(args.portico, args.token)
        pid = proc.pid
    elif args.url:
        url, pid = args.url.rstrip("/"), args.server_pid
    else:
        raise SystemExit("--portico BIN or --url URL")
    try:
        t0 = time.time()
        accounts = []
        for o in range(args.orgs):
            oid = f"load{o:04d}"
            admin(url, args.token, "POST", "/orgs", {"slug": oid, "name": f"Load {o}", "id": oid})
            inst = admin(url, args.token, "POST", f"/orgs/{oid}/installations", {"kind": "carddav"})
            lines = "\n".join(json.dumps({
                "name": f"Cliënt {o}-{i} Ñúñez",
                "given_name": f"Cliënt {o}-{i}", "family_name": "Ñúñez",
                "email": f"c{o}.{i}@example.com", "phone": f"+33 1 {o:02d} {i:04d}",
                "note": "likes: colour; cut, wash\nsecond line",
                "birthday": f"19{50 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            }) for i in range(args.contacts))
            admin(url, args.token, "POST", f"/orgs/{oid}/customers/import", lines, "text/plain")
            accounts.append(inst["reveal"])
        setup_s = time.time() - t0
        log(f"setup: {args.orgs} orgs x {args.contacts} contacts in {setup_s:.1f} s")
        stats = Stats()
        steady = threading.Event()
        stop_at = time.time() + 3600  # replaced below once every phone has synced
        phones = [Phone(n, accounts[n % len(accounts)], args, stats, stop_at, steady)
                  for n in range(args.phones)]
        t1 = time.time()
        for p in phones:
            p.start()
        # Wait for every phone's discovery + initial sync (bounded), then start the clock.
        deadline = time.time() + 600
        while time.time() < deadline and any(p.token is None and p.is_alive() for p in phones):
            time.sleep(0.1)
        initial_s = time.time() - t1
        start_sample = proc_sample(pid) if pid else {}
        steady_start = time.time()
        stop_at = steady_start + args.duration
        for p in phones:
            p.stop_at = stop_at
        steady.set()
        samples = [{"t": 0, **start_sample}]
        while time.time() < stop_at:
            time.sleep(min(10, max(0.1, stop_at - time.time())))
            if pid:
                samples.append({"t": round(time.time() - steady_start), **proc_sample(pid)})
        for p in phones:
            p.join(timeout=60)
        steady_s = time.time() - steady_start
        end_sample = proc_sample(pid) if pid else {}
        kinds = {k: v for k, v in stats.lat.items() if not k.startswith("_")}
        report = {
            "params": vars(args) | {"url": url},
            "setup_s": round(setup_s, 2),
            "initial_phase_s": round(initial_s, 2),
            "steady_s": round(steady_s, 1),
            "steady_requests": stats.steady_requests,
            "steady_rps": round(stats.steady_requests / steady_s, 1) if steady_s else None,
            "errors": len(stats.lat.get("_errors", [])),
            "error_samples": stats.errors[:10],
            "latency_ms": {k: {"n": len(v), "p50": round(pct(v, 50) * 1000, 2),
                               "p99": round(pct(v, 99) * 1000, 2),
                               "max": round(max(v) * 1000, 2)} for k, v in sorted(kinds.items())},
            "server_start": start_sample,
            "server_end": end_sample,
            "samples": samples,
        }
        print(f"\nPortico load: {args.phones} phones, {args.orgs} orgs x {args.contacts} contacts, "
              f"steady {steady_s:.0f} s")
        print(f"  requests/s (steady): {report['steady_rps']}   errors: {report['errors']}")
        print(f"  {'type':<16}{'n':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
        for k, v in report["latency_ms"].items():
            print(f"  {k:<16}{v['n']:>8}{v['p50']:>10}{v['p99']:>10}{v['max']:>10}")
        if pid:
            print(f"  server RSS: {start_sample.get('rss_kib')} KiB -> {end_sample.get('rss_kib')} KiB"
                  f" (peak {end_sample.get('hwm_kib')} KiB); open FDs: {start_sample.get('fds')} -> "
                  f"{end_sample.get('fds')}")
        if args.out:
            with open(args.out, "w") as f:
                json.dump(report, f, indent=1)
        return 1 if report["errors"] else 0
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
