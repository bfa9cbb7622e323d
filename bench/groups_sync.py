#!/usr/bin/env python3
"""groups_sync.py - what contact groups (customer tags, issue 10) cost a large book (stdlib only).

Against a running Portico (`portico serve ... --set admin.token=T`):

  bench/groups_sync.py --url http://127.0.0.1:8080 --token T --n 100000 --tags 100

creates an organization, installs CardDAV, imports N customers as JSON lines (every customer
one of --tags cohort tags, every tenth also "VIP"; --tags 0 imports untagged customers, the
baseline), then times: the import, an initial sync-collection (streamed; bytes and group
count), incremental syncs with no change (median of --rounds), an admin tag change and the
incremental sync after it (which must list the customer and the group). Prints JSON.
"""
import argparse
import base64
import http.client
import json
import re
import statistics
import time
import urllib.parse


def request(url, method, path, body=None, headers=None, timeout=600):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    data = body.encode() if isinstance(body, str) else body
    t0 = time.perf_counter()
    conn.request(method, path, data, headers or {})
    r = conn.getresponse()
    payload = r.read()
    dt = time.perf_counter() - t0
    conn.close()
    return r.status, payload, dt


def sync_body(token):
    return ('<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
            f'<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>'
            '<D:prop><D:getetag/></D:prop></D:sync-collection>')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--org", default="gbench")
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--tags", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--chunk", type=int, default=5000)
    a = ap.parse_args()
    admin = {"authorization": f"Bearer {a.token}", "content-type": "application/json"}

    def adm(method, path, body=None, ok=(200, 201)):
        st, payload, dt = request(a.url, method, "/admin/api" + path,
                                  json.dumps(body) if body is not None and not isinstance(body, str) else body,
                                  admin)
        if st not in ok:
            raise SystemExit(f"{method} {path} -> {st} {payload[:300]!r}")
        return (json.loads(payload) if payload else None), dt

    adm("POST", "/orgs", {"slug": a.org, "name": "Groups bench", "id": a.org})
    inst, _ = adm("POST", f"/orgs/{a.org}/installations", {"kind": "carddav"})
    base = urllib.parse.urlsplit(inst["installation"]["url"]).path
    book = base.rstrip("/") + "/addressbook/customers/"
    user = a.org
    pw = inst["reveal"]["password"]
    dav = {"authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode(),
           "content-type": "application/xml; charset=utf-8", "depth": "1"}
    out = {"n": a.n, "tags": a.tags}

    t0 = time.perf_counter()
    first_id = None
    for start in range(0, a.n, a.chunk):
        lines = []
        for i in range(start, min(a.n, start + a.chunk)):
            tags = []
            if a.tags:
                tags.append(f"Cohort {i % a.tags}")
                if i % 10 == 0:
                    tags.append("VIP")
            lines.append(json.dumps({"id": f"c{i:07d}", "name": f"Person {i}",
                                     "email": f"p{i}@example.com", "tags": tags}))
        rep, _ = adm("POST", f"/orgs/{a.org}/customers/import", "\n".join(lines) + "\n")
        if rep.get("errors"):
            raise SystemExit(f"import errors: {rep['errors'][:3]}")
        first_id = first_id or "c0000001"
    out["import_s"] = round(time.perf_counter() - t0, 2)

    # The initial sync, following 507 continuations (RFC 6578 §3.6) until complete.
    token, total_s, total_b, groups, requests = "", 0.0, 0, 0, 0
    while requests < 100:
        st, payload, dt = request(a.url, "REPORT", book, sync_body(token), dav)
        assert st == 207, st
        requests += 1
        total_s += dt
        total_b += len(payload)
        groups += payload.count(b"portico-group-")
        token = re.search(rb"<[a-zA-Z]*:?sync-token>([^<]+)<", payload).group(1).decode()
        if b"HTTP/1.1 507" not in payload:
            break
    out["initial_sync_s"] = round(total_s, 2)
    out["initial_sync_requests"] = requests
    out["initial_sync_mb"] = round(total_b / 1e6, 1)
    out["groups_listed"] = groups

    times = []
    for _ in range(a.rounds):
        st, payload, dt = request(a.url, "REPORT", book, sync_body(token), dav)
        assert st == 207 and b"<d:response>" not in payload.lower(), payload[:500]
        times.append(dt * 1000)
    out["incremental_nochange_ms_median"] = round(statistics.median(times), 2)

    # A tag change: customer 1 (Cohort 1) also becomes VIP.
    _, dt = adm("PATCH", f"/orgs/{a.org}/customers/{first_id}",
                {"tags": [f"Cohort {1 % a.tags}", "VIP"] if a.tags else ["VIP"]})
    out["tag_patch_ms"] = round(dt * 1000, 1)
    st, payload, dt = request(a.url, "REPORT", book, sync_body(token), dav)
    assert st == 207
    out["incremental_after_tag_change_ms"] = round(dt * 1000, 1)
    out["incremental_after_tag_change_responses"] = payload.lower().count(b"<d:response>")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
