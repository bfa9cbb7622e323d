"""A recording pass-through HTTP proxy on loopback: the client under test talks to it, it talks to
Portico, and every request is noted (method, path, selected headers, status) so a scenario can
assert what went over the wire ("the second sync transfers nothing", "PUT carried If-Match").

With `writes_to`, requests that change state (PUT, DELETE, PROPPATCH, ...) go to that upstream
and all others (PROPFIND, REPORT, GET, OPTIONS, ...) to `upstream`: one client, two Portico
processes, writes through one and reads through the other.
"""
from __future__ import annotations

import http.client
import http.server
import threading
import urllib.parse
from dataclasses import dataclass

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
       "upgrade", "host", "content-length"}
METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PROPFIND", "PROPPATCH", "REPORT",
           "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK"]
WRITES = {"PUT", "POST", "DELETE", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    status: int
    body: bytes
    response: bytes
    upstream: str = "read"  # "read" (upstream) or "write" (writes_to)


class Recorder:
    def __init__(self, upstream: str, writes_to: str | None = None):
        u = urllib.parse.urlsplit(upstream)
        self.host, self.port = u.hostname, u.port or 80
        w = urllib.parse.urlsplit(writes_to or upstream)
        self.write_host, self.write_port = w.hostname, w.port or 80
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def forward(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                which = "write" if self.command in WRITES else "read"
                host, port = ((rec.write_host, rec.write_port) if which == "write"
                              else (rec.host, rec.port))
                conn = http.client.HTTPConnection(host, port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    r = conn.getresponse()
                    data = r.read()
                    self.send_response(r.status, r.reason)
                    for k, v in r.getheaders():
                        if k.lower() not in HOP:
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    status = r.status
                finally:
                    conn.close()
                with rec.lock:
                    rec.seen.append(Seen(self.command, self.path,
                                         {k.lower(): v for k, v in self.headers.items()},
                                         status, body, data, which))

        for m in METHODS:
            setattr(Handler, f"do_{m}", Handler.forward)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def mark(self) -> int:
        with self.lock:
            return len(self.seen)

    def since(self, mark: int) -> list[Seen]:
        with self.lock:
            return list(self.seen[mark:])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
