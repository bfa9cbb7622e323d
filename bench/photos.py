#!/usr/bin/env python3
"""photos.py - memory and bytes of a book full of photos (issue 10), stdlib only.

Starts `portico serve` (PORTICO_BIN, default $CARGO_TARGET_DIR/debug/portico) on a free loopback
port with a fresh data dir under BENCH_WORK (default /tmp/portico-photos), PUTs N cards with a
random base64 photo of PHOTO bytes each (4 connections), then measures PROPFIND Depth 1, an
initial sync-collection with getetag, and one with address-data (streamed): response bytes, time
and the server's peak RSS since the request started (VmHWM reset through /proc/PID/clear_refs).
Stops the server by its PID.

    python3 bench/photos.py [N=10000] [PHOTO=20000]
"""
import base64, http.client, json, os, subprocess, sys, time, threading, socket
BIN = os.environ.get("PORTICO_BIN") or os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "debug", "portico")
TOKEN = "bench-token-0123456789abcdef"
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
PHOTO = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
WORK = os.environ.get("BENCH_WORK", "/tmp/portico-photos"); os.makedirs(WORK, exist_ok=True); data = os.path.join(WORK, "data")
subprocess.run(["rm", "-rf", data])
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
p = subprocess.Popen([BIN, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}",
    "--set", "secrets.create_key_file=true", "--set", f"admin.token={TOKEN}", "--set", "log.filter=warn"],
    stdout=open(os.path.join(WORK, "server.log"), "w"), stderr=subprocess.STDOUT)
def rss(field):
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith(field): return int(l.split()[1]) // 1024
def reset_peak():
    open(f"/proc/{p.pid}/clear_refs", "w").write("5")
try:
    for _ in range(300):
        try: socket.create_connection(("127.0.0.1", port), 0.2).close(); break
        except OSError: time.sleep(0.1)
    def admin(m, path, body):
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request(m, "/admin/api" + path, json.dumps(body), {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        r = c.getresponse(); return json.loads(r.read())
    admin("POST", "/orgs", {"slug": "b", "name": "B", "id": "b"})
    inst = admin("POST", "/orgs/b/installations", {"kind": "carddav"})
    url = inst["reveal"]["url"]; base = url[url.find("/api/apps/"):]
    book = base + "addressbook/customers/"
    auth = "Basic " + base64.b64encode(f"{inst['reveal']['username']}:{inst['reveal']['password']}".encode()).decode()
    def card(i):
        photo = base64.b64encode(os.urandom(PHOTO * 3 // 4)).decode()
        line = f"PHOTO;ENCODING=b;TYPE=JPEG:{photo}"
        folded = "\r\n ".join(line[j:j+74] for j in range(0, len(line), 74))
        return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u{i}\r\nFN:Person {i}\r\nN:{i};Person;;;\r\nEMAIL:p{i}@example.com\r\n{folded}\r\nEND:VCARD\r\n"
    def loader(k, total):
        c = http.client.HTTPConnection("127.0.0.1", port)
        for i in range(k, total, 4):
            c.request("PUT", f"{book}c{i}.vcf", card(i), {"Authorization": auth, "Content-Type": "text/vcard"})
            r = c.getresponse(); r.read()
            assert r.status == 201, r.status
    t0 = time.time()
    ts = [threading.Thread(target=loader, args=(k, N)) for k in range(4)]
    [t.start() for t in ts]; [t.join() for t in ts]
    print(f"loaded {N} cards with {PHOTO}-byte photos in {time.time()-t0:.1f}s; RSS {rss('VmRSS')} MiB, peak {rss('VmHWM')} MiB")
    def req(method, body, depth=None, label=""):
        reset_peak()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        h = {"Authorization": auth, "Content-Type": "application/xml"}
        if depth: h["Depth"] = depth
        t = time.time()
        c.request(method, book, body, h)
        r = c.getresponse(); n = 0
        while True:
            b = r.read(1 << 16)
            if not b: break
            n += len(b)
        print(f"{label}: {r.status}, {n/1e6:.1f} MB in {time.time()-t:.2f}s, server peak RSS since reset {rss('VmHWM')} MiB")
    req("PROPFIND", '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><d:getcontentlength/></d:prop></d:propfind>', "1", "PROPFIND Depth 1 getetag+getcontentlength")
    req("REPORT", '<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:"><d:sync-token/><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>', None, "sync-collection getetag")
    req("REPORT", '<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav"><d:sync-token/><d:sync-level>1</d:sync-level><d:prop><d:getetag/><c:address-data/></d:prop></d:sync-collection>', None, "sync-collection getetag+address-data")
finally:
    p.terminate(); p.wait(timeout=30)
