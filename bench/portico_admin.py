#!/usr/bin/env python3
"""portico_admin.py - Portico-side helpers for bench/run.sh (stdlib only).

  setup    create an organization and install CardDAV through the admin API; optionally
           bulk-import the first N generated contacts (gen_vcards.py, same seed) converted to
           customer JSON lines, timed. Prints one shell-parsable line:
             URL=<book url> USER=<slug> PASSWORD=<pw> ORG=<org id>
  ready    poll until the book answers an authenticated PROPFIND Depth:0; prints the seconds
           since --since (a `date +%s.%N` taken just before the server was started)
  capture  fetch the exact bytes Portico answers for the harness's initial sync (PROPFIND
           Depth:1 body, one addressbook-multiget body per batch of 100 in listing order, and
           every single card) and lay them out for nginx under --www, in the layout
           `carddav_bench.py --static` reads
  tojsonl  print the customer JSON lines for the first N generated contacts

The generated vCards carry fields a Portico customer has no place for (ORG, TITLE, ADR): the
import drops them, so an imported book serves fewer (rendered) bytes than a PUT-loaded one.
"""
import argparse
import http.client
import json
import os
import re
import sys
import time
import urllib.parse

HARNESS = os.environ.get("BENCH_HARNESS") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench")
sys.path.insert(0, HARNESS)
import carddav_bench as cb  # noqa: E402
import gen_vcards  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- vCard -> customer
def unescape(v):
    out, i = [], 0
    while i < len(v):
        c = v[i]
        if c == "\\" and i + 1 < len(v):
            n = v[i + 1]
            out.append("\n" if n in "nN" else n)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def split_unescaped(v, sep):
    parts, cur, i = [], [], 0
    while i < len(v):
        c = v[i]
        if c == "\\" and i + 1 < len(v):
            cur.append(v[i:i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def customer_of(i, seed):
    """The customer JSON object for generated contact i (same data as the PUT card)."""
    uid, text = gen_vcards.make_vcard(i, seed)
    props = []
    for line in re.sub(r"\r\n[ \t]", "", text).split("\r\n"):
        if not line or ":" not in line:
            continue
        head, value = line.split(":", 1)
        props.append((head.split(";", 1)[0].upper(), value))
    c = {"id": uid, "name": "", "known_emails": [], "known_phones": [], "tags": []}
    emails, phones = [], []
    for name, value in props:
        if name == "FN":
            c["name"] = unescape(value)
        elif name == "N":
            f = split_unescaped(value, ";") + [""] * 5
            if f[0]:
                c["family_name"] = unescape(f[0])
            if f[1]:
                c["given_name"] = unescape(f[1])
        elif name == "EMAIL":
            emails.append(unescape(value))
        elif name == "TEL":
            phones.append(unescape(value))
        elif name == "BDAY":
            c["birthday"] = value
        elif name == "NOTE":
            c["note"] = unescape(value)
        elif name == "CATEGORIES":
            c["tags"] = [unescape(t) for t in split_unescaped(value, ",") if t]
    if emails:
        c["email"], c["known_emails"] = emails[0], emails[1:]
    if phones:
        c["phone"], c["known_phones"] = phones[0], phones[1:]
    return c


def jsonl(start, count, seed):
    return "".join(json.dumps(customer_of(i, seed), ensure_ascii=False) + "\n"
                   for i in range(start, start + count))


# --------------------------------------------------------------------------- admin API
class Admin:
    def __init__(self, base, token, timeout=600):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.token, self.timeout = token, timeout
        self.c = None

    def req(self, method, path, body=None):
        if self.c is None:
            self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        h = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
                h["Content-Type"] = "application/json"
            if isinstance(body, str):
                body = body.encode("utf-8")
        t0 = time.perf_counter()
        try:
            self.c.request(method, "/admin/api" + path, body=body, headers=h)
            r = self.c.getresponse()
            data = r.read()
        except (http.client.HTTPException, OSError):
            self.c.close()
            self.c = None
            raise
        dt = time.perf_counter() - t0
        if r.will_close:
            self.c.close()
            self.c = None
        try:
            js = json.loads(data) if data else None
        except ValueError:
            js = {"raw": data[:300].decode("utf-8", "replace")}
        return r.status, js, dt

    def must(self, method, path, body=None, ok=(200, 201)):
        st, js, dt = self.req(method, path, body)
        if st not in ok:
            raise RuntimeError(f"{method} {path} -> {st} {js}")
        return js, dt


def create_org_and_install(adm, org, password=None):
    """-> (book_url, username, password). Idempotent for an existing org only if password given."""
    adm.must("POST", "/orgs", {"slug": org, "name": f"Bench {org}", "id": org}, ok=(200, 201, 409))
    body = {"kind": "carddav"}
    if password:
        body["secrets"] = {"password": password}
    inst, _ = adm.must("POST", f"/orgs/{org}/installations", body)
    url = inst["installation"]["url"]
    url = url if url.endswith("/") else url + "/"
    user = (inst["installation"].get("account") or {}).get("username") or org
    pw = (inst.get("reveal") or {}).get("password") or password
    if not pw:
        raise RuntimeError(f"no password revealed for {org}: {inst}")
    return url + "addressbook/customers/", user, pw


def import_contacts(adm, org, n, seed, chunk, server_pids=None):
    """Bulk import of the first n generated contacts in chunks of `chunk` lines -> stats."""
    res = {"n": n, "chunk_lines": chunk, "requests": 0, "created": 0, "updated": 0, "errors": 0}
    s0 = cb.proc_stats(server_pids) if server_pids else None
    conv = 0.0
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        c0 = time.perf_counter()
        text = jsonl(start, min(chunk, n - start), seed)
        conv += time.perf_counter() - c0
        rep, _ = adm.must("POST", f"/orgs/{org}/customers/import", text)
        res["requests"] += 1
        res["created"] += rep.get("created", 0)
        res["updated"] += rep.get("updated", 0)
        res["errors"] += len(rep.get("errors") or [])
        if rep.get("errors") and "first_error" not in res:
            res["first_error"] = str(rep["errors"][0])[:300]
    wall = time.perf_counter() - t0 - conv
    res["wall_s"] = round(wall, 3)
    res["client_convert_s"] = round(conv, 3)
    res["contacts_per_s"] = round(n / wall, 1) if wall > 0 else None
    if s0:
        s1 = cb.proc_stats(server_pids)
        res["server_cpu_s"] = round(s1["cpu_s"] - s0["cpu_s"], 3)
        res["server_vmhwm_kb"] = s1["vmhwm_kb_sum"]
    return res


# --------------------------------------------------------------------------- capture
def capture(url, user, password, www, batch, timeout=600):
    """Writes Portico's answers under www/<path of url>/ as carddav_bench --static expects."""
    base = urllib.parse.urlsplit(url).path
    conn = cb.Conn(url, cb.basic_auth(user, password), timeout)
    root = os.path.join(www, urllib.parse.unquote(base).lstrip("/"))
    os.makedirs(root, exist_ok=True)
    st, h, body, dt = conn.request("PROPFIND", base, cb.PROPFIND_MEMBERS, {"Depth": "1", "Content-Type": cb.XML_CT})
    if st != 207:
        raise RuntimeError(f"PROPFIND -> {st}")
    with open(os.path.join(root, "_propfind.xml"), "wb") as f:
        f.write(body)
    resps, _ = cb.parse_multistatus(body)
    coll = cb.norm_path(url, url).rstrip("/")
    hrefs = [r["href"] for r in resps if not cb.norm_path(r["href"], url).rstrip("/") == coll
             and not cb.norm_path(r["href"], url).endswith("/")]
    nbytes = len(body)
    for b, i in enumerate(range(0, len(hrefs), batch)):
        st, h, mb, dt = conn.request("REPORT", base, cb.multiget_body(hrefs[i:i + batch]), {"Content-Type": cb.XML_CT})
        if st != 207:
            raise RuntimeError(f"multiget -> {st}")
        with open(os.path.join(root, f"_multiget-{b:04d}.xml"), "wb") as f:
            f.write(mb)
        nbytes += len(mb)
    cards = 0
    for href in hrefs:
        p = urllib.parse.urlsplit(urllib.parse.urljoin(url, href)).path
        st, h, cb_body, dt = conn.request("GET", p)
        if st != 200:
            raise RuntimeError(f"GET {p} -> {st}")
        with open(os.path.join(www, urllib.parse.unquote(p).lstrip("/")), "wb") as f:
            f.write(cb_body)
        cards += 1
    conn.close()
    return {"hrefs": len(hrefs), "sync_bytes": nbytes, "cards": cards}


# --------------------------------------------------------------------------- main
def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--admin", required=True, help="http://127.0.0.1:PORT")
    s.add_argument("--token", required=True)
    s.add_argument("--org", default="bench")
    s.add_argument("--password", help="carry this CardDAV password (default: the generated one)")
    s.add_argument("--import-n", type=int, default=0)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--chunk", type=int, default=5000, help="JSON lines per import request")
    s.add_argument("--server-pid")
    s.add_argument("--out", help="write import stats (JSON) here")
    r = sub.add_parser("ready")
    r.add_argument("--url", required=True)
    r.add_argument("--user")
    r.add_argument("--password")
    r.add_argument("--since", type=float, help="epoch seconds the server was launched at")
    r.add_argument("--since-file", help="read --since from this file once the server answers")
    r.add_argument("--timeout", type=float, default=120)
    c = sub.add_parser("capture")
    c.add_argument("--url", required=True)
    c.add_argument("--user")
    c.add_argument("--password")
    c.add_argument("--www", required=True)
    c.add_argument("--batch", type=int, default=100)
    t = sub.add_parser("tojsonl")
    t.add_argument("--n", type=int, required=True)
    t.add_argument("--seed", type=int, default=42)
    a = ap.parse_args(argv)

    if a.cmd == "tojsonl":
        sys.stdout.write(jsonl(0, a.n, a.seed))
        return 0
    if a.cmd == "setup":
        adm = Admin(a.admin, a.token)
        url, user, pw = create_org_and_install(adm, a.org, a.password)
        if a.import_n:
            pids = [int(p) for p in a.server_pid.split(",")] if a.server_pid else None
            log(f"  bulk import of {a.import_n} contacts in chunks of {a.chunk}")
            st = import_contacts(adm, a.org, a.import_n, a.seed, a.chunk, pids)
            log(f"  import: {st['wall_s']} s, {st['contacts_per_s']} contacts/s, errors {st['errors']}")
            if a.out:
                with open(a.out, "w") as f:
                    json.dump(st, f, indent=1)
            if st["errors"] or st["created"] + st["updated"] != a.import_n:
                log(f"  import incomplete: {st}")
                return 1
        print(f"URL={url} USER={user} PASSWORD={pw} ORG={a.org}")
        return 0
    if a.cmd == "ready":
        auth = cb.basic_auth(a.user, a.password)
        deadline = time.monotonic() + a.timeout
        base = urllib.parse.urlsplit(a.url).path
        while time.monotonic() < deadline:
            try:
                conn = cb.Conn(a.url, auth, 5)
                st, h, body, dt = conn.request("PROPFIND", base, cb.PROPFIND_CTAG,
                                               {"Depth": "0", "Content-Type": cb.XML_CT}, retry=False)
                conn.close()
                if st == 207:
                    now = time.time()
                    since = a.since
                    if a.since_file:
                        with open(a.since_file) as f:
                            since = float(f.read().strip())
                    print(f"{now - since:.3f}")
                    return 0
            except OSError:
                pass
            time.sleep(0.005)
        log("  server not ready in time")
        return 1
    if a.cmd == "capture":
        print(json.dumps(capture(a.url, a.user, a.password, a.www, a.batch)))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
