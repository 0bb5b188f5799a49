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

import re
from dataclasses import dataclass, field

MAXNS = 3  # both libraries use at most three nameservers
MUSL_OPTIONS = {"ndots", "timeout", "attempts"}


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = 1
    options: tuple[str, ...] = ()  # as written, e.g. ("ndots:5", "rotate")


def parse_resolv(text: str) -> ResolvConf:
    nameservers: list[str] = []
    search: tuple[str, ...] = ()
    options: list[str] = []
    for raw in text.splitlines():
        line = re.split(r"[#;]", raw, maxsplit=1)[0].split()
        if not line:
            continue
        key, args = line[0], line[1:]
        if key == "nameserver" and args:
            nameservers.append(args[0])
        elif key in ("search", "domain"):
            search = tuple(args)  # the last search or domain line wins
        elif key == "options":
            options += args
    ndots = 1
    for opt in options:
        if opt.startswith("ndots:"):
            ndots = min(int(opt.split(":", 1)[1] or 1), 15)
    return ResolvConf(tuple(nameservers), search, ndots, tuple(options))


def parse_hosts(text: str) -> dict[str, list[str]]:
    """Name (lower case) -> addresses, in file order."""
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        for name in fields[1:]:
            out.setdefault(name.lower(), []).append(fields[0])
    return out


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
class Step:
    action: str  # "hosts" or "dns"
    name: str
    detail: str


@dataclass(frozen=True)
class Resolution:
    resolver: str  # glibc, musl <1.1.13, ...
    steps: tuple[Step, ...]
    servers: tuple[str, ...]  # who each DNS step asks
    parallel: bool  # every server at once (musl) or one after another (glibc)
    pitfalls: tuple[str, ...] = field(default=())


def _candidates(name: str, conf: ResolvConf, *, musl: bool, search_supported: bool) -> list[str]:
    if name.endswith("."):
        return [name.rstrip(".")]
    dots = name.count(".")
    suffixed = [f"{name}.{d}" for d in conf.search] if search_supported else []
    if dots < conf.ndots:
        return [*suffixed, name]
    return [name] if musl else [name, *suffixed]


def glibc(
    name: str, hosts: dict[str, list[str]], conf: ResolvConf, nsswitch: str | None
) -> Resolution:
    servers = conf.nameservers[:MAXNS] or ("127.0.0.1",)
    steps: list[Step] = []
    for source in nsswitch_order(nsswitch):
        if source == "files":
            steps.append(Step("hosts", name, "the name as given, in /etc/hosts"))
        elif source == "dns":
            for candidate in _candidates(name, conf, musl=False, search_supported=True):
                steps.append(Step("dns", candidate, f"A and AAAA to {servers[0]}"))
    return Resolution(
        "glibc",
        tuple(steps),
        servers,
        False,
        tuple(_pitfalls(name, hosts, conf, nsswitch, "glibc")),
    )


MUSL_VERSIONS = ("musl <1.1.13", "musl 1.1.13-1.2.3", "musl >=1.2.4")


def musl(name: str, hosts: dict[str, list[str]], conf: ResolvConf, version: str) -> Resolution:
    servers = conf.nameservers[:MAXNS] or ("127.0.0.1",)
    steps = [Step("hosts", name, "the name as given, in /etc/hosts")]
    search = version != "musl <1.1.13"
    for candidate in _candidates(name, conf, musl=True, search_supported=search):
        steps.append(Step("dns", candidate, f"A and AAAA to {', '.join(servers)} at once"))
    return Resolution(
        version, tuple(steps), servers, True, tuple(_pitfalls(name, hosts, conf, None, version))
    )


def _pitfalls(
    name: str, hosts: dict[str, list[str]], conf: ResolvConf, nsswitch: str | None, who: str
) -> list[str]:
    out = []
    bare = name.rstrip(".").lower()
    if name.endswith(".") and bare in hosts:
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
    if searches and conf.search and name.count(".") >= conf.ndots and not name.endswith("."):
        out.append(
            f"{name} has ndots ({conf.ndots}) or more dots: musl asks only the name itself, "
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


def resolutions(
    name: str, hosts_text: str, resolv_text: str, nsswitch_text: str | None
) -> list[Resolution]:
    hosts = parse_hosts(hosts_text)
    conf = parse_resolv(resolv_text)
    return [glibc(name, hosts, conf, nsswitch_text)] + [
        musl(name, hosts, conf, v) for v in MUSL_VERSIONS
    ]


SERVFAIL = "SERVFAIL"


def predict(
    resolution: Resolution, hosts: dict[str, list[str]], answers: dict[str, str]
) -> tuple[list[tuple[str, str, str]], list[str] | None]:
    """The DNS questions (name, type, server) a resolver following `resolution` sends, and
    the addresses it returns (None: it gives up with an error), when the servers answer
    from `answers` (an address, or SERVFAIL) and say "no such name" otherwise. After a
    SERVFAIL glibc asks the other servers and goes on; musl gives up (it also repeats the
    question until its timeout, so the count of those questions varies)."""
    questions: list[tuple[str, str, str]] = []
    for step in resolution.steps:
        if step.action == "hosts":
            found = hosts.get(step.name.lower())
            if found:
                return questions, found
            continue
        answer = answers.get(step.name.lower())
        every = resolution.parallel or answer == SERVFAIL
        for server in resolution.servers if every else resolution.servers[:1]:
            questions += [(step.name, "A", server), (step.name, "AAAA", server)]
        if answer == SERVFAIL:
            if resolution.parallel:
                return questions, None
            continue
        if answer is not None:
            return questions, [answer]
    return questions, []
