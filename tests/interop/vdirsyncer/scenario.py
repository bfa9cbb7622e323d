#!/usr/bin/env python3
"""vdirsyncer (Debian package) + khard against Portico, through a recording proxy.

Pairs a local filesystem vdir with the organization's CardDAV installation and walks the issue's
steps: discovery (installation URL, and host root via /.well-known/carddav), initial download of
all contacts, a second sync that transfers nothing, local edit -> upload with If-Match, admin edit
-> download, delete both ways, a conflict merged by vdirsyncer's `conflict_resolution` command
without data loss, and a final no-op sync. Contents are checked by parsing the vdir and with khard.

Two-process mode (run.py's `vdirsyncer-mongo`): the context names a second Portico process
(`write_url`) on the same MongoDB store; the proxy sends vdirsyncer's writes (PUT, DELETE) to it
and its reads (PROPFIND, REPORT, GET) to `host_url`, and the admin API (server-side edits) goes
through `admin_url`. Check names then start with the context's `label`.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import vcf  # noqa: E402
from portico import Admin, Check, report  # noqa: E402
from proxy import Recorder  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CTX = json.load(open(os.environ["PORTICO_INTEROP_CONTEXT"], encoding="utf-8"))
WORK = CTX["work"]
ORG = CTX["org"]
N = int(CTX["customers"])
admin = Admin(CTX.get("admin_url", CTX["host_url"]), CTX["admin_token"])
WRITE_URL = CTX.get("write_url")
proxy = Recorder(CTX["host_url"], WRITE_URL)
P = CTX.get("label", "")  # prefix of every check name (empty for the plain scenario)
# The installation URL as the client is given it, but through the proxy.
BASE = proxy.url + urllib.parse.urlsplit(CTX["url"]).path
VDIR = os.path.join(WORK, "vdir")
BOOK = os.path.join(VDIR, "customers")


def q(s: str) -> str:
    return json.dumps(s)


def write_config() -> str:
    path = os.path.join(WORK, "vdirsyncer.conf")
    merge = [sys.executable, os.path.join(HERE, "merge.py")]
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"""[general]
status_path = {q(os.path.join(WORK, "status"))}

[pair contacts]
a = "local"
b = "portico"
collections = ["from b"]
metadata = []
conflict_resolution = ["command", {", ".join(q(x) for x in merge)}]

[storage local]
type = "filesystem"
path = {q(VDIR + "/")}
fileext = ".vcf"

[storage portico]
type = "carddav"
url = {q(BASE)}
username = {q(CTX["username"])}
password = {q(CTX["password"])}

[pair fromroot]
a = "rootlocal"
b = "rootportico"
collections = ["from b"]
metadata = []

[storage rootlocal]
type = "filesystem"
path = {q(os.path.join(WORK, "vdir-root") + "/")}
fileext = ".vcf"

[storage rootportico]
type = "carddav"
url = {q(proxy.url + "/")}
username = {q(CTX["username"])}
password = {q(CTX["password"])}
""")
    return path


CONF = write_config()
KHARD = os.path.join(WORK, "khard.conf")
with open(KHARD, "w", encoding="utf-8") as f:
    f.write(f"""[addressbooks]
[[customers]]
path = {BOOK}/

[general]
debug = no
default_action = list
editor = /bin/false
merge_editor = /bin/false

[contact table]
display = formatted_name
sort = last_name
""")


def vdirsyncer(*args: str, stdin: str | None = None) -> str:
    r = subprocess.run(["vdirsyncer", "-c", CONF, *args], input=stdin, capture_output=True,
                       text=True, timeout=120)
    out = r.stdout + r.stderr
    with open(os.path.join(WORK, "vdirsyncer.out"), "a", encoding="utf-8") as f:
        f.write(f"$ vdirsyncer {' '.join(args)} -> {r.returncode}\n{out}\n")
    if r.returncode != 0:
        raise AssertionError(f"vdirsyncer {' '.join(args)} exited {r.returncode}: {out[-800:]}")
    return out


def khard(*args: str) -> str:
    r = subprocess.run(["khard", "-c", KHARD, *args], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"khard {' '.join(args)} exited {r.returncode}: {r.stderr[-500:]}")
    return r.stdout


def transfers(out: str) -> list[str]:
    return [ln for ln in out.splitlines()
            if ln.startswith(("Copying", "Deleting", "Updating", "Doing conflict"))]


def wire(mark: int, methods=("PUT", "DELETE", "GET", "REPORT", "POST", "PROPPATCH")) -> list[str]:
    return [f"{s.method} {s.path} -> {s.status}" for s in proxy.since(mark) if s.method in methods]


def local_card(uid: str) -> str:
    return open(os.path.join(BOOK, f"{uid}.vcf"), encoding="utf-8").read()


def dav_get(uid: str):
    from portico import request
    return request("GET", CTX["book_url"] + f"{uid}.vcf", headers={"Authorization": _auth()})


def _auth() -> str:
    from portico import basic
    return basic(CTX["username"], CTX["password"])


def all_customers() -> dict[str, dict]:
    out, after = {}, None
    for _ in range(100):  # bounded paging
        path = f"/orgs/{ORG}/customers?limit=1000" + (f"&after={after}" if after else "")
        page = admin.call("GET", path)
        for c in page["customers"]:
            out[c["id"]] = c
        after = page.get("next")
        if not after:
            break
    return out


def main() -> None:
    ok_initial = False
    with Check(P + "vdirsyncer: discover from the installation URL"):
        out = vdirsyncer("discover", "contacts", stdin="y\n" * 5)
        assert '"customers"' in out, f"the book was not listed: {out[-500:]}"

    with Check(P + "vdirsyncer: discover from the host root through /.well-known/carddav"):
        mark = proxy.mark()
        out = vdirsyncer("discover", "fromroot", stdin="y\n" * 5)
        assert '"customers"' in out, f"the book was not listed: {out[-500:]}"
        wk = [s for s in proxy.since(mark) if s.path.startswith("/.well-known/carddav")]
        assert wk and any(s.status in (301, 302, 307, 308) for s in wk), \
            f"no redirect from /.well-known/carddav: {[(s.method, s.status) for s in wk]}"

    with Check(P + f"vdirsyncer: initial sync downloads all {N} contacts"):
        vdirsyncer("sync", "contacts")
        files = glob.glob(os.path.join(BOOK, "*.vcf"))
        assert len(files) == N, f"{len(files)} cards in the vdir, {N} customers on the server"
        ok_initial = True

    if ok_initial:
        with Check(P + "vdirsyncer: downloaded cards match the customers (all fields, every card)"):
            customers = all_customers()
            bad = []
            for cid, c in customers.items():
                p = os.path.join(BOOK, f"{cid}.vcf")
                if not os.path.exists(p):
                    bad.append(f"{cid}: no file")
                    continue
                t = open(p, encoding="utf-8").read()
                want = {"FN": [c["name"]],
                        "EMAIL": [e for e in [c.get("email")] + c.get("known_emails", []) if e],
                        "TEL": [t_ for t_ in [c.get("phone")] + c.get("known_phones", []) if t_],
                        "NOTE": [c["note"]] if c.get("note") else []}
                for prop, vals in want.items():
                    got = vcf.values(t, prop)
                    if sorted(got) != sorted(vals):
                        bad.append(f"{cid} {prop}: card {got!r} vs customer {vals!r}")
                if vcf.first(t, "UID") != cid:
                    bad.append(f"{cid}: UID {vcf.first(t, 'UID')!r}")
            assert not bad, f"{len(bad)} mismatches, e.g. {bad[:3]}"

        with Check(P + "khard: reads every downloaded contact"):
            rows = [ln for ln in khard("list", "-p").splitlines() if ln.strip()]
            assert len(rows) == N, f"khard lists {len(rows)} contacts, expected {N}"
            emails = khard("email", "-p", "cust0007")
            assert "cust0007@example.com" in emails, f"khard email: {emails[:300]}"

    with Check(P + "vdirsyncer: a second sync transfers nothing"):
        mark = proxy.mark()
        out = vdirsyncer("sync", "contacts")
        assert not transfers(out), f"vdirsyncer moved items: {transfers(out)[:5]}"
        w = wire(mark)
        assert not w, f"requests beyond PROPFIND: {w[:5]}"

    # Local edit -> upload with If-Match.
    uid = "cust-0001"
    with Check(P + "vdirsyncer: local edit is uploaded with If-Match and lands on the customer"):
        before = dav_get(uid)
        assert before.status == 200, f"GET before: {before.status}"
        text = local_card(uid)
        new_note = "Edited in the vdir: moved to Thursday, 10:00"
        lines = [ln for ln in vcf.unfold(text) if not ln.upper().startswith("NOTE")]
        end = max(i for i, ln in enumerate(lines) if ln.upper() == "END:VCARD")
        lines.insert(end, "NOTE:" + new_note.replace(",", "\\,"))
        with open(os.path.join(BOOK, f"{uid}.vcf"), "w", encoding="utf-8", newline="") as f:
            f.write("\r\n".join(lines) + "\r\n")
        mark = proxy.mark()
        out = vdirsyncer("sync", "contacts")
        puts = [s for s in proxy.since(mark) if s.method == "PUT"]
        assert len(puts) == 1, f"expected one PUT, saw {wire(mark)}"
        put = puts[0]
        assert put.path.endswith(f"/{uid}.vcf"), f"PUT went to {put.path}"
        assert put.headers.get("if-match") == before.headers.get("etag"), \
            f"If-Match {put.headers.get('if-match')!r}, server ETag was {before.headers.get('etag')!r}"
        assert 200 <= put.status < 300, f"PUT answered {put.status}: {put.response[:300]!r}"
        c = admin.get_customer(ORG, uid)
        assert c.get("note") == new_note, f"customer note is {c.get('note')!r}"
        assert transfers(out), "vdirsyncer reported no upload"

    # New local contact -> PUT with If-None-Match: * -> a new customer.
    new_uid = "vdir-new-0001"
    with Check(P + "vdirsyncer: new local contact is uploaded (If-None-Match: *) and becomes a customer"):
        card = ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + new_uid + "\r\nFN:Vera Vdir-Newcomer\r\n"
                "N:Vdir-Newcomer;Vera;;;\r\nEMAIL;TYPE=INTERNET:vera.newcomer@example.com\r\n"
                "TEL;TYPE=CELL:+49 151 23456789\r\nEND:VCARD\r\n")
        with open(os.path.join(BOOK, f"{new_uid}.vcf"), "w", encoding="utf-8", newline="") as f:
            f.write(card)
        mark = proxy.mark()
        vdirsyncer("sync", "contacts")
        puts = [s for s in proxy.since(mark) if s.method == "PUT"]
        assert len(puts) == 1, f"expected one PUT, saw {wire(mark)}"
        assert puts[0].headers.get("if-none-match") == "*", f"headers {puts[0].headers}"
        assert puts[0].status == 201, f"PUT answered {puts[0].status}: {puts[0].response[:300]!r}"
        r = dav_get(new_uid)
        assert r.status == 200 and r.text() == card, f"GET {r.status}: {r.text()[:200]!r}"
        found = [c for c in all_customers().values() if c["name"] == "Vera Vdir-Newcomer"]
        assert len(found) == 1 and found[0].get("email") == "vera.newcomer@example.com", found

    # Admin edit -> download.
    uid = "cust-0002"
    with Check(P + "vdirsyncer: admin API edit is downloaded"):
        admin.patch_customer(ORG, uid, {"note": "Changed in the back office",
                                        "email": "cust0002.new@example.com"})
        mark = proxy.mark()
        vdirsyncer("sync", "contacts")
        t = local_card(uid)
        assert vcf.values(t, "NOTE") == ["Changed in the back office"], vcf.values(t, "NOTE")
        assert "cust0002.new@example.com" in vcf.values(t, "EMAIL"), vcf.values(t, "EMAIL")
        assert not [s for s in proxy.since(mark) if s.method in ("PUT", "DELETE")], \
            f"a download caused writes: {wire(mark)}"

    # Delete locally -> DELETE on the server.
    uid = "cust-0003"
    with Check(P + "vdirsyncer: local delete removes the card and the customer"):
        os.remove(os.path.join(BOOK, f"{uid}.vcf"))
        mark = proxy.mark()
        vdirsyncer("sync", "contacts")
        dels = [s for s in proxy.since(mark) if s.method == "DELETE"]
        assert len(dels) == 1 and 200 <= dels[0].status < 300, f"DELETEs: {wire(mark)}"
        assert dels[0].headers.get("if-match"), "DELETE without If-Match"
        assert dav_get(uid).status == 404, "the card is still served"
        admin.call("GET", f"/orgs/{ORG}/customers/{uid}", expect=(404,))

    # Delete through the admin API -> local file removed.
    uid = "cust-0004"
    with Check(P + "vdirsyncer: admin API delete removes the local card"):
        admin.delete_customer(ORG, uid)
        vdirsyncer("sync", "contacts")
        assert not os.path.exists(os.path.join(BOOK, f"{uid}.vcf")), "the local card is still there"

    # Conflict: both sides edited; merged by the conflict_resolution command.
    uid = "cust-0005"
    with Check(P + "vdirsyncer: conflict (both sides edited) merged without data loss"):
        text = local_card(uid)
        local_email = "conflict.local@example.net"
        lines = vcf.unfold(text)
        end = max(i for i, ln in enumerate(lines) if ln.upper() == "END:VCARD")
        lines.insert(end, f"EMAIL;TYPE=home:{local_email}")
        with open(os.path.join(BOOK, f"{uid}.vcf"), "w", encoding="utf-8", newline="") as f:
            f.write("\r\n".join(lines) + "\r\n")
        server_note = "Back office: prefers text messages"
        admin.patch_customer(ORG, uid, {"note": server_note})
        out = vdirsyncer("sync", "contacts")
        assert any("conflict" in ln.lower() for ln in out.splitlines()), \
            f"vdirsyncer saw no conflict: {out[-400:]}"
        local = local_card(uid)
        r = dav_get(uid)
        assert r.status == 200, f"GET {r.status}"
        remote = r.text()
        for where, t in (("local", local), ("server", remote)):
            assert local_email in vcf.values(t, "EMAIL"), f"{where} card lost the local email"
            assert server_note in vcf.values(t, "NOTE"), f"{where} card lost the server note"
        c = admin.get_customer(ORG, uid)
        assert local_email in [c.get("email")] + c.get("known_emails", []), \
            f"customer emails {c.get('email')!r} {c.get('known_emails')!r}"
        assert c.get("note") == server_note, f"customer note {c.get('note')!r}"

    with Check(P + "vdirsyncer: after all changes, a further sync transfers nothing"):
        mark = proxy.mark()
        out = vdirsyncer("sync", "contacts")
        assert not transfers(out), f"vdirsyncer moved items: {transfers(out)[:5]}"
        assert not wire(mark), f"requests beyond PROPFIND: {wire(mark)[:5]}"
        files = len(glob.glob(os.path.join(BOOK, "*.vcf")))
        assert files == N - 1, f"{files} local cards, expected {N - 1} (-2 deleted, +1 created)"

    with Check(P + "vdirsyncer: sync through host-root discovery sees the same book"):
        vdirsyncer("sync", "fromroot")
        files = glob.glob(os.path.join(WORK, "vdir-root", "customers", "*.vcf"))
        assert len(files) == N - 1, f"{len(files)} cards, expected {N - 1}"

    if WRITE_URL:
        with Check(P + "vdirsyncer: writes went to one process, reads to the other"):
            seen = proxy.since(0)
            writes = [s for s in seen if s.method in ("PUT", "DELETE")]
            reads = [s for s in seen if s.method in ("PROPFIND", "REPORT", "GET")]
            assert writes and all(s.upstream == "write" for s in writes), \
                f"writes: {[(s.method, s.upstream) for s in writes]}"
            assert reads and all(s.upstream == "read" for s in reads), \
                f"reads not all through the reading process: {len(reads)}"
            print(f"# {len(writes)} writes through {WRITE_URL}, {len(reads)} reads through "
                  f"{CTX['host_url']}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        report(False, P + "vdirsyncer: scenario", f"{type(e).__name__}: {e}")
    finally:
        proxy.close()
        shutil.rmtree(os.path.join(WORK, "status"), ignore_errors=True)
