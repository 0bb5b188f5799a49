"""HTTP for cairn's registry client: connections kept open between requests, and an
opener of http and https URLs only.

urllib's own handlers close every connection after one request; a push of a signed
family makes a thousand small ones, each then paying a TCP and TLS handshake. Here a
connection goes back to a small pool once its answer was read whole, and one the
registry closed while it sat idle is replaced once, the request sent again. A body read
as it is sent (a file, a stream) always goes over a new connection.
"""

from __future__ import annotations

import functools
import http.client
import select
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import IO


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects (a blob served from a bucket or a CDN) to http(s) only: never ftp."""

    def redirect_request(  # noqa: PLR0917 (urllib's own signature)
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, "a redirect to no HTTP URL", headers, fp)
        fp.close()  # its body is not read: urllib's handler would read it whole, unbounded
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Reusable(http.client.HTTPResponse):
    """A response that hands its connection back for the next request when it is closed
    having been read to its end (a HEAD's or a 204's has no body to read)."""

    give_back: Callable[[bool], None] | None = None

    def close(self) -> None:
        read_whole = self.fp is None or (not self.chunked and self.length == 0)
        try:
            super().close()
        finally:
            give_back, self.give_back = self.give_back, None
            if give_back is not None:
                give_back(read_whole and not self.will_close)


MAX_IDLE = 8  # connections kept open to one origin
IDLE_SECONDS = 30  # how long one is trusted to stay open unused
BLOCK = 1 << 20  # a file sent as a request's body, a MiB at a time


class KeptAlive(urllib.request.AbstractHTTPHandler):
    """http and https over connections kept open between requests, as every registry
    client does: urllib's own handlers close each one, and a push of a signed family makes
    a thousand small requests, each then paying a TCP and TLS handshake (and a proxy's
    CONNECT). A connection goes back to the pool only when its answer was read whole, and
    is used again only within IDLE_SECONDS (a firewall may drop it silently after that);
    one the registry closed while idle is replaced, the request sent again. Nothing is
    pooled through a proxy."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context
        self._idle: dict[tuple[str, str], list[tuple[http.client.HTTPConnection, float]]] = {}
        self._lock = threading.Lock()  # one client may serve several threads

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self._open(req, tls=False)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self._open(req, tls=True)

    http_request = urllib.request.AbstractHTTPHandler.do_request_
    https_request = urllib.request.AbstractHTTPHandler.do_request_

    def _connect(self, host: str, timeout: float | None, tls: bool) -> http.client.HTTPConnection:
        if tls:
            return http.client.HTTPSConnection(
                host, timeout=timeout, context=self._context, blocksize=BLOCK
            )
        return http.client.HTTPConnection(host, timeout=timeout, blocksize=BLOCK)

    def _open(self, req: urllib.request.Request, *, tls: bool) -> http.client.HTTPResponse:
        if req._tunnel_host or not req.selector.startswith("/"):  # type: ignore[attr-defined]
            # through a proxy (a CONNECT, or a full URL sent to it): a connection a
            # request, as urllib makes it
            if tls:
                return self.do_open(http.client.HTTPSConnection, req, context=self._context)
            return self.do_open(http.client.HTTPConnection, req)
        key = (req.type, req.host)
        headers = dict(req.unredirected_hdrs)
        headers.update({k: v for k, v in req.headers.items() if k not in headers})
        headers = {name.title(): value for name, value in headers.items()}
        # a body read as it is sent (a file, a stream) cannot be sent twice: it goes over a
        # new connection, which no idle time-out has closed
        resendable = req.data is None or isinstance(req.data, bytes)
        while True:
            conn = self._kept(key) if resendable else None
            reused = conn is not None
            if conn is None:
                conn = self._connect(req.host, req.timeout, tls)
                conn.response_class = _Reusable
            try:
                try:
                    conn.request(
                        req.get_method(),
                        req.selector,
                        req.data,
                        headers,
                        encode_chunked=req.has_header("Transfer-encoding"),
                    )
                except OSError as e:  # as urllib reports it
                    raise urllib.error.URLError(e) from e
                response = conn.getresponse()
            except BaseException as e:
                conn.close()
                if reused and _closed_while_idle(e):
                    continue
                raise
            response.url = req.get_full_url()
            response.msg = response.reason  # type: ignore[assignment]
            if isinstance(response, _Reusable):
                response.give_back = functools.partial(self._give_back, key, conn)
            return response

    def _kept(self, key: tuple[str, str]) -> http.client.HTTPConnection | None:
        """The connection to `key` most recently given back, if it has not sat too long."""
        stale = []
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                conn, since = idle.pop()
                if time.monotonic() - since < IDLE_SECONDS and not _has_word(conn):
                    break
                stale.append(conn)
            else:
                conn = None
        for old in stale:
            old.close()
        return conn

    def _give_back(self, key: tuple[str, str], conn: http.client.HTTPConnection, ok: bool) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            kept = ok and conn.sock is not None and len(idle) < MAX_IDLE
            if kept:
                idle.append((conn, time.monotonic()))
        if not kept:
            conn.close()

    def close(self) -> None:
        with self._lock:
            conns = [conn for idle in self._idle.values() for conn, _ in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


def _has_word(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle connection has something to read: bytes no request asked for (a
    server's stray answer, which would be taken for the next one's) or its end."""
    if conn.sock is None:
        return True
    readable, _, _ = select.select([conn.sock], [], [], 0)
    return bool(readable)


def _closed_while_idle(e: BaseException) -> bool:
    """Whether a kept connection failed as one the server closed while it sat idle."""
    reason = e.reason if isinstance(e, urllib.error.URLError) else e
    return isinstance(reason, ConnectionError)  # reset, aborted, broken pipe, disconnected


def opener(connections: KeptAlive, redirects: bool) -> urllib.request.OpenerDirector:
    """An opener of http and https URLs only (urllib's default also opens file:, ftp: and
    data: URLs, which a registry could name as its token service), through the
    environment's proxies."""
    opener = urllib.request.OpenerDirector()
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        connections,
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ]
    if redirects:
        handlers.append(_HttpOnlyRedirects())
    for handler in handlers:
        opener.add_handler(handler)
    return opener
