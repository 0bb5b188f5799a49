"""A reverse proxy on 127.0.0.1 that injects faults in front of a real registry.

Each request is matched against the rules in order; the first rule that matches
and still has uses left answers instead of the registry: an HTTP status with a
registry-style error body, or a hang (the connection is taken and nothing is
sent until the rule's time runs out). Everything else goes to the registry and
back. It serves a bounded number of requests, each bounded in time, and stops
with the test.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_REQUESTS = 2000
UPSTREAM_TIMEOUT = 60.0
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Rule:
    method: str  # a regex on the method, e.g. "POST|PUT"
    path: str  # a regex searched in the path
    status: int | None = None  # answer with this status...
    hang: float = 0.0  # ...or take the request and say nothing for this many seconds
    times: int | None = None  # uses left; None: every time
    used: int = 0

    def matches(self, method: str, path: str) -> bool:
        live = self.times is None or self.used < self.times
        return live and bool(re.fullmatch(self.method, method) and re.search(self.path, path))


@dataclass
class FaultProxy:
    upstream: str  # HOST:PORT of the registry
    rules: list[Rule] = field(default_factory=list)
    seen: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    address: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)

    def rule_for(self, method: str, path: str) -> Rule | None:
        with self._lock:
            if len(self.seen) >= MAX_REQUESTS:
                return Rule(".*", "", status=503)
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.used += 1
                    return rule
        return None

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.seen.append((method, path, status))


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = UPSTREAM_TIMEOUT

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            if not any(k.lower() == "content-length" for k, _ in headers):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            proxy.record(self.command, self.path, status)

        def _serve(self) -> None:
            body = self._body()
            rule = proxy.rule_for(self.command, self.path)
            if rule is not None and rule.hang:
                proxy.record(self.command, self.path, 0)
                proxy._closing.wait(rule.hang)
                self.close_connection = True
                return
            if rule is not None and rule.status:
                code = {401: "UNAUTHORIZED", 404: "NAME_UNKNOWN"}.get(rule.status, "UNKNOWN")
                error = {"errors": [{"code": code, "message": "injected by the test's proxy"}]}
                headers = [("Content-Type", "application/json")]
                if rule.status == 401:
                    headers.append(("WWW-Authenticate", 'Basic realm="test"'))
                self._answer(rule.status, json.dumps(error).encode(), headers)
                return
            host, port = proxy.upstream.split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=UPSTREAM_TIMEOUT)
            try:
                fwd = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                fwd["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=fwd)
                resp = conn.getresponse()
                data = resp.read()
                kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
                if self.command != "HEAD":  # a HEAD's length is the blob's, not its body's
                    kept = [(k, v) for k, v in kept if k.lower() != "content-length"]
                self._answer(resp.status, data, kept)
            finally:
                conn.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


@contextmanager
def fault_proxy(upstream: str, *rules: Rule) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream, list(rules))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.address = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield proxy
    finally:
        proxy._closing.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
