"""What getaddrinfo does with a name on glibc and on musl: the steps, in order, and the
pitfalls, from hosts, resolv.conf and nsswitch.conf. A model, checked against the real
resolvers by the tests (tests/dnsprobe.py): the same questions, in the same order.

glibc (2.36): the `hosts:` line of nsswitch.conf decides files and dns order; the name as
given is looked up in /etc/hosts; DNS asks the first nameserver (the next on timeout),
A and AAAA together; a name with fewer dots than ndots tries the search domains first
and the name itself last, one with ndots or more the name first and the search domains
after it; a trailing dot means the name alone.

musl: /etc/hosts always first, with the name as given; no search domains before 1.1.13;
since then a name with fewer dots than ndots tries the search domains, then the name, and
a name with ndots or more (or a trailing dot) only the name itself; every nameserver is
asked at once and the first answer wins; a failure other than "no such name" ends the
search; truncated answers are retried over TCP only since 1.2.4; only ndots, timeout and
attempts of the options are read.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

MAXNS = 3  # both libraries use at most three nameservers
MUSL_OPTIONS = {"ndots", "timeout", "attempts"}


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = 1  # as glibc reads it (atoi)
    options: tuple[str, ...] = ()  # as written, e.g. ("ndots:5", "rotate")
    musl_ndots: int = 1  # as musl reads it (strtoul, only when digits follow)
    findings: tuple[str, ...] = ()  # lines the resolvers read otherwise than they look

    @property
    def servers(self) -> tuple[str, ...]:
        """Who the resolvers ask: the first MAXNS nameservers, else the local one."""
        return self.nameservers[:MAXNS] or ("127.0.0.1",)


def _leading_int(text: str) -> tuple[int, bool]:
    """The number at the start of `text` (C's atoi/strtoul), and whether there was one."""
    m = re.match(r"\s*([+-]?\d+)", text)
    return (int(m.group(1)), True) if m else (0, False)


def parse_resolv(text: str) -> ResolvConf:
    nameservers: list[str] = []
    search: tuple[str, ...] = ()
    options: list[str] = []
    findings: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.split(r"[#;]", raw, maxsplit=1)[0].split()
        if not line:
            continue
        key, args = line[0], line[1:]
        if key == "nameserver" and args:
            if _address(args[0]) is None:
                findings.append(
                    f"resolv.conf line {number}: nameserver {args[0]!r} is not an IP address; "
                    "the resolvers skip it"
                )
            else:
                nameservers.append(args[0])
        elif key in ("search", "domain"):
            search = tuple(args)  # the last search or domain line wins
        elif key == "options":
            options += args
    ndots = musl_ndots = 1
    for opt in options:
        if not opt.startswith("ndots:"):
            continue
        value = opt.split(":", 1)[1]
        number, digits = _leading_int(value)
        # glibc: atoi, then anything over 15 is 15; musl: strtoul, only when it read digits
        ndots = 15 if number < 0 else min(number, 15)
        if digits:
            musl_ndots = min(number if number >= 0 else 15, 15)
        if not value.isdigit():
            findings.append(
                f"resolv.conf: options {opt} is not a plain number: glibc reads ndots as "
                f"{ndots}, musl as {musl_ndots}"
            )
    return ResolvConf(
        tuple(nameservers), search, ndots, tuple(options), musl_ndots, tuple(findings)
    )


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return None


@dataclass(frozen=True)
class Hosts:
    names: dict[str, list[str]]  # name (lower case) -> addresses, in file order
    findings: tuple[str, ...] = ()


def parse_hosts(text: str) -> Hosts:
    """/etc/hosts as both resolvers read it: a line whose address does not parse is skipped."""
    out: dict[str, list[str]] = {}
    findings = []
    for number, raw in enumerate(text.splitlines(), 1):
        fields = raw.split("#", 1)[0].split()
        if len(fields) < 2:
            if fields:
                findings.append(f"hosts line {number}: {fields[0]!r} names no host; skipped")
            continue
        if _address(fields[0]) is None:
            findings.append(
                f"hosts line {number}: {fields[0]!r} is not an IP address; both resolvers "
                "skip the line"
            )
            continue
        for name in fields[1:]:
            out.setdefault(name.lower(), []).append(fields[0])
    return Hosts(out, tuple(findings))


# glibc 2.36 without a hosts line (or without the file): /etc/hosts, then DNS (measured
# by the tests; older glibc documented "dns [!UNAVAIL=return] files")
GLIBC_DEFAULT_HOSTS = ("files", "dns")


def nsswitch_order(text: str | None) -> tuple[str, ...]:
    for raw in (text or "").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("hosts:"):
            return tuple(w for w in line.split()[1:] if not w.startswith("["))
    return GLIBC_DEFAULT_HOSTS


@dataclass(frozen=True)
class ResolverStep:
    action: str  # "hosts" or "dns"
    name: str
    detail: str


@dataclass(frozen=True)
class Query:
    name: str
    type: str  # A or AAAA
    server: str


@dataclass(frozen=True)
class Resolution:
    """One resolver's lookup of a name: its steps in order up to the one that answers, the
    DNS questions it sends, and what getaddrinfo returns."""

    resolver: str  # glibc, musl <1.1.13, ...
    steps: tuple[ResolverStep, ...]
    servers: tuple[str, ...]  # who each DNS step asks
    parallel: bool  # every server at once (musl) or one after another (glibc)
    queries: tuple[Query, ...]  # every DNS question, in order
    addresses: tuple[str, ...] | None  # the answer; () no such name; None: it gives up
    answered_by: str  # "hosts", "dns", or "" (no source had the name)
    pitfalls: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class DnsReport:
    SCHEMA_VERSION: ClassVar[int] = 2
    name: str
    resolvers: tuple[Resolution, ...]
    findings: tuple[str, ...]  # input lines the resolvers read otherwise than they look


def _candidates(name: str, ndots: int, search: tuple[str, ...], *, musl: bool) -> list[str]:
    if name.endswith("."):
        return [name.rstrip(".")]
    dots = name.count(".")
    suffixed = [f"{name}.{d}" for d in search]
    if dots < ndots:
        return [*suffixed, name]
    return [name] if musl else [name, *suffixed]


HOSTS_STEP = "the name as given, in /etc/hosts"


def _glibc_steps(name: str, conf: ResolvConf, nsswitch: str | None) -> list[ResolverStep]:
    server = conf.servers[0]
    steps: list[ResolverStep] = []
    for source in nsswitch_order(nsswitch):
        if source == "files":
            steps.append(ResolverStep("hosts", name, HOSTS_STEP))
        elif source == "dns":
            for candidate in _candidates(name, conf.ndots, conf.search, musl=False):
                steps.append(ResolverStep("dns", candidate, f"A and AAAA to {server}"))
    return steps


MUSL_VERSIONS = ("musl <1.1.13", "musl 1.1.13-1.2.3", "musl >=1.2.4")


def _musl_steps(name: str, conf: ResolvConf, version: str) -> list[ResolverStep]:
    servers = ", ".join(conf.servers)
    search = conf.search if version != "musl <1.1.13" else ()
    steps = [ResolverStep("hosts", name, HOSTS_STEP)]
    for candidate in _candidates(name, conf.musl_ndots, search, musl=True):
        steps.append(ResolverStep("dns", candidate, f"A and AAAA to {servers} at once"))
    return steps


SERVFAIL = "SERVFAIL"


def _follow(
    steps: list[ResolverStep],
    conf: ResolvConf,
    hosts: Hosts,
    answers: Mapping[str, str],
    *,
    parallel: bool,
) -> tuple[tuple[ResolverStep, ...], tuple[Query, ...], tuple[str, ...] | None, str]:
    """Walk the steps as the resolver does, stopping at the first that answers: a hosts
    entry, or a DNS answer from `answers` (an address, or SERVFAIL; any other name is "no
    such name"). After a SERVFAIL glibc asks the other servers and goes on; musl gives up
    (it also repeats the question until its timeout, so the count of those varies)."""
    servers = conf.servers
    queries: list[Query] = []
    for i, step in enumerate(steps):
        taken = tuple(steps[: i + 1])
        if step.action == "hosts":
            found = hosts.names.get(step.name.lower())
            if found:
                return taken, tuple(queries), tuple(found), "hosts"
            continue
        answer = answers.get(step.name.lower())
        every = parallel or answer == SERVFAIL
        for server in servers if every else servers[:1]:
            queries += [Query(step.name, "A", server), Query(step.name, "AAAA", server)]
        if answer == SERVFAIL:
            if parallel:
                return taken, tuple(queries), None, ""
            continue
        if answer is not None:
            return taken, tuple(queries), (answer,), "dns"
    return tuple(steps), tuple(queries), (), ""


def resolutions(
    name: str,
    hosts_text: str,
    resolv_text: str,
    nsswitch_text: str | None,
    answers: Mapping[str, str] | None = None,
) -> DnsReport:
    """What getaddrinfo(name) does on glibc and on each musl, given the files; `answers` are
    what DNS would say (an address or SERVFAIL per name; by default every name is unknown
    to DNS, so the queries are all a resolver would send before giving up)."""
    hosts = parse_hosts(hosts_text)
    conf = parse_resolv(resolv_text)
    plans = [("glibc", _glibc_steps(name, conf, nsswitch_text), False)]
    plans += [(v, _musl_steps(name, conf, v), True) for v in MUSL_VERSIONS]
    found = []
    for resolver, steps, parallel in plans:
        taken, queries, addresses, source = _follow(
            steps, conf, hosts, answers or {}, parallel=parallel
        )
        pitfalls = (
            []  # the hosts file answered before DNS was asked: no DNS pitfall applies
            if source == "hosts" and not queries
            else _pitfalls(name, hosts, conf, nsswitch_text if not parallel else None, resolver)
        )
        found.append(
            Resolution(
                resolver,
                taken,
                conf.servers,
                parallel,
                queries,
                addresses,
                source,
                tuple(pitfalls),
            )
        )
    return DnsReport(
        name, tuple(found), conf.findings + hosts.findings + _nss_findings(nsswitch_text)
    )


def _nss_findings(text: str | None) -> tuple[str, ...]:
    order = nsswitch_order(text)
    other = [s for s in order if s not in ("files", "dns")]
    found = []
    if other:
        found.append(
            f"nsswitch.conf: hosts lists {', '.join(other)}; this model follows files and dns only"
        )
    if "files" not in order and "dns" not in order:
        found.append("nsswitch.conf: the hosts line names neither files nor dns")
    return tuple(found)


def _pitfalls(
    name: str, hosts: Hosts, conf: ResolvConf, nsswitch: str | None, who: str
) -> list[str]:
    out = []
    bare = name.rstrip(".").lower()
    if name.endswith(".") and bare in hosts.names:
        out.append(
            f"{name} ends with a dot: /etc/hosts lists {bare} without one, so the hosts entry "
            "is not used and DNS is asked instead"
        )
    if len(conf.nameservers) > MAXNS:
        out.append(
            f"only the first {MAXNS} nameservers are used; {len(conf.nameservers)} are listed"
        )
    searches = who != "musl <1.1.13"
    if searches and conf.ndots > 1 and name.count(".") < conf.ndots and not name.endswith("."):
        out.append(
            f"ndots:{conf.ndots}: {name} has fewer dots, so every search domain is asked "
            f"before the name itself ({len(conf.search)} extra lookups for an outside name; "
            "write it with a trailing dot to skip them)"
        )
    if who == "glibc":
        if nsswitch_order(nsswitch)[:1] == ("dns",):
            out.append("nsswitch.conf puts dns before files: DNS answers before /etc/hosts")
        return out
    return out + _musl_pitfalls(name, conf, who)


def _musl_pitfalls(name: str, conf: ResolvConf, who: str) -> list[str]:
    out = []
    if who == "musl <1.1.13" and conf.search:
        out.append("musl before 1.1.13 ignores search and domain: short names fail")
    searches = who != "musl <1.1.13"
    if searches and conf.search and name.count(".") >= conf.musl_ndots and not name.endswith("."):
        out.append(
            f"{name} has ndots ({conf.musl_ndots}) or more dots: musl asks only the name itself, "
            "never the search domains (glibc tries them after it)"
        )
    if len(conf.nameservers) > 1:
        out.append(
            "musl asks every nameserver at once and takes the first answer: servers that "
            "disagree (split DNS) give answers that change from call to call"
        )
    if searches and conf.search:
        out.append(
            "musl ends the search at the first failure other than 'no such name' (a "
            "SERVFAIL or timeout for one domain); glibc goes on to the next domain"
        )
    ignored = [o for o in conf.options if o.split(":", 1)[0] not in MUSL_OPTIONS]
    if ignored:
        out.append(f"musl ignores these options: {', '.join(ignored)}")
    if who != "musl >=1.2.4":
        out.append(
            "musl before 1.2.4 does not retry truncated answers over TCP: records larger "
            "than a UDP answer (512 bytes) are lost"
        )
    return out
