"""Real resolvers against a recording DNS server: what glibc's and musl's getaddrinfo ask.

A tiny getaddrinfo program is built with gcc and with musl-gcc; each run happens in a
private mount namespace where the test's hosts, resolv.conf and nsswitch.conf are bind
mounted over /etc, against DNS servers on 127.0.0.x:53 that answer from a table and
record every question (name, type, server).
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

SOURCE = Path(__file__).parent / "dns" / "gai.c"


@dataclass
class Recorder(BaseResolver):  # type: ignore[misc]
    address: str
    answers: dict[str, str]  # name (no trailing dot) -> IPv4 address; "SERVFAIL" to fail
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        q = request.q
        name = str(q.qname).rstrip(".")
        qtype = QTYPE[q.qtype]
        with self.lock:
            self.seen.append((name, qtype, self.address))
        reply = request.reply()
        ip = self.answers.get(name.lower())
        if ip is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif ip == "SERVFAIL":
            reply.header.rcode = RCODE.SERVFAIL
        elif qtype == "A":
            reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(ip), ttl=60))
        elif qtype == "AAAA":
            pass  # NOERROR, no data: the name has only an IPv4 address
        return reply


class DnsServers:
    def __init__(self, addresses: list[str], answers: dict[str, str]) -> None:
        self.recorders = [Recorder(a, answers) for a in addresses]
        quiet = DNSLogger(prefix=False, logf=lambda _: None)
        self.servers = [
            DNSServer(r, address=r.address, port=53, logger=quiet) for r in self.recorders
        ]

    def __enter__(self) -> DnsServers:
        for s in self.servers:
            s.start_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        for s in self.servers:
            s.stop()

    def take(self) -> list[tuple[str, str, str]]:
        out = []
        for r in self.recorders:
            with r.lock:
                out += r.seen
                r.seen.clear()
        return out


def build(workdir: Path) -> dict[str, Path]:
    out = {}
    for libc, cc in (("glibc", "gcc"), ("musl", "musl-gcc")):
        binary = workdir / f"gai-{libc}"
        subprocess.run([cc, "-O1", "-o", str(binary), str(SOURCE)], check=True)
        out[libc] = binary
    return out


def run(binary: Path, name: str, etc: dict[str, Path]) -> list[str]:
    """getaddrinfo(name) with these files over /etc's (a private mount namespace)."""
    mounts = " && ".join(f"mount --bind {src} /etc/{dst}" for dst, src in etc.items())
    res = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'{mounts} && exec "$0" "$1"',
            str(binary),
            name,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return res.stdout.split()
