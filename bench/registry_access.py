"""Benchmark: pushing the signed example family to a registry as teams run one.

Run as root from the repository root:  .venv/bin/python -m bench.registry_access
The whole example family is built for both platforms (package cache warm) into a
store, then, in one run, against docker-registry instances on 127.0.0.1:
- `cairn push --sign-key` of the family to an anonymous plain-HTTP registry (the
  reference), and the same to registries with TLS from a private CA (trusted through
  ~/.config/containers/certs.d only) and a login (REGISTRY_AUTH_FILE): one with token
  authentication, one with htpasswd; and what one request costs each registry;
- `cairn sign` + `cairn push` of the family to a fresh registry with a store never
  signed for another (the reference), then the store signed for and pushed to 10
  other destinations, then `cairn sign` + `cairn push` to another fresh registry: each
  destination gets only its own signatures, so the 12th push should cost what the first
  did.
Rewrites its section of BENCHMARKS.md. BENCH_STORE=DIR uses the family already built
there (both platforms) instead of building it.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.secure_registries import SecureRegistry, certs_d, tls_htpasswd_registry, token_registry

from bench.report import bench_workdir, write_section
from bench.trust import registry
from cairn.family.spec import load_family

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "qapm"
PASSWORD = "bench-password-3b9"
OTHERS = 10
ROUNDS = 2  # each signed push timed twice: the best counts
HTPASSWD_NOTE = (
    "Where the htpasswd registry's time goes: it checks the password's bcrypt hash on every "
    "request (the second table), and every request of a push pays it: cairn's own "
    "(signatures and attestations, on kept-alive connections, no blob asked about before "
    "it is sent when its manifest is missing) and skopeo's. A registry with token "
    "authentication checks a token's signature instead."
)


def run(env: dict[str, str], *args: str) -> float:
    start = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "cairn", *args], capture_output=True, text=True, env=env, check=False
    )
    took = time.monotonic() - start
    if res.returncode != 0:
        sys.exit(f"cairn {' '.join(args)} failed:\n{res.stderr[-4000:]}")
    return took


def main() -> None:
    family = load_family(EXAMPLE)
    with bench_workdir(__doc__ or "", "cairn-bench-registry", "docker-registry") as work:
        if os.environ.get("BENCH_STORE"):
            shutil.copytree(os.environ["BENCH_STORE"], work / "oci")
        store = f"oci:{work / 'oci'}"
        home = work / "home"
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONFIG", "XDG_RUNTIME_DIR")}
        env |= {"HOME": str(home), "REGISTRY_AUTH_FILE": str(work / "auth.json")}
        run(env, "build", str(EXAMPLE), "--output", store)  # builds nothing when it was given
        keyfile, passfile = work / "team", work / "passphrase"
        passfile.write_text("bench passphrase\n")
        run(env, "keygen", "--output-prefix", str(keyfile), "--passphrase-file", str(passfile))
        sign_key = ("--sign-key", f"{keyfile}.key", "--passphrase-file", str(passfile))
        key = ("--key", f"{keyfile}.key", "--passphrase-file", str(passfile))
        plain_s, token_s, secure_s, per_request = _signed_pushes(work, env, store, sign_key)
        with contextlib.ExitStack() as stack:
            # the same store signed afresh: the first destination against the 12th
            first_reg = stack.enter_context(registry(work / "first"))
            others = stack.enter_context(registry(work / "others"))
            last_reg = stack.enter_context(registry(work / "last"))
            fresh = work / "oci-fresh"
            _unsigned_copy(work / "oci", fresh)
            fresh_store = f"oci:{fresh}"
            first_sign = run(
                env, "sign", str(EXAMPLE), f"{first_reg}/qapm", "-o", fresh_store, *key
            )
            first_push = run(env, "push", str(EXAMPLE), f"{first_reg}/qapm", "-o", fresh_store)
            for n in range(OTHERS):
                dest = f"{others}/dest{n}"
                run(env, "sign", str(EXAMPLE), dest, "-o", fresh_store, *key)
                run(env, "push", str(EXAMPLE), dest, "-o", fresh_store)
            last_sign = run(env, "sign", str(EXAMPLE), f"{last_reg}/qapm", "-o", fresh_store, *key)
            last_push = run(env, "push", str(EXAMPLE), f"{last_reg}/qapm", "-o", fresh_store)
    secure_ratio = secure_s / plain_s
    token_ratio = token_s / plain_s
    push_ratio = last_push / first_push
    met = {True: "yes", False: "no"}
    n = len(family.images)
    body = "\n".join(
        [
            "Command: `.venv/bin/python -m bench.registry_access` (as root, from the "
            f"repository root). The example family, {n} images for linux/amd64 and "
            "linux/arm64, built with the package cache warm; docker-registry 2.8 instances "
            "on 127.0.0.1.",
            "",
            f"| signed push of the family (`cairn push --sign-key`), best of {ROUNDS} "
            "| wall time | x reference |",
            "|---|---:|---:|",
            f"| to an anonymous plain-HTTP registry (reference) | {plain_s:.1f} s | 1.00 |",
            "| to a registry with TLS from a private CA (in certs.d only) and token "
            "authentication (a token service over TLS issuing RS256 JWTs, as Harbor, GitLab "
            f"and Docker Hub do; REGISTRY_AUTH_FILE) | {token_s:.1f} s | {token_ratio:.2f} |",
            "| to a registry with TLS from a private CA (in certs.d only) and an htpasswd "
            f"login (REGISTRY_AUTH_FILE) | {secure_s:.1f} s | {secure_ratio:.2f} |",
            "",
            "What a request costs the registry, on a kept-alive connection (`GET /v2/`, "
            "mean of 500):",
            "",
            "| registry | ms a request | x reference |",
            "|---|---:|---:|",
            f"| plain HTTP, anonymous (reference) | {per_request[0]:.2f} | 1.00 |",
            f"| TLS, no credentials sent (a 401) | {per_request[1]:.2f} | "
            f"{per_request[1] / per_request[0]:.2f} |",
            f"| TLS and htpasswd (bcrypt, cost 5, htpasswd -B's default, checked on every "
            f"request) | {per_request[2]:.2f} | {per_request[2] / per_request[0]:.2f} |",
            "",
            "| signatures per destination | `cairn sign` | `cairn push` | push x reference |",
            "|---|---:|---:|---:|",
            f"| the first destination, a store never signed for another (reference) "
            f"| {first_sign:.1f} s | {first_push:.1f} s | 1.00 |",
            f"| the 12th, after the store was signed for and pushed to {OTHERS} others "
            f"| {last_sign:.1f} s | {last_push:.1f} s | {push_ratio:.2f} |",
            "",
            "| target | measured | met |",
            "|---|---:|:---:|",
            f"| authenticated TLS push ≤ 1.1 x plain HTTP: token authentication | "
            f"{token_ratio:.2f} | {met[token_ratio <= 1.1]} |",
            f"| the same with htpasswd | {secure_ratio:.2f} | {met[secure_ratio <= 1.1]} |",
            f"| push after {OTHERS} other destinations ≤ 1.05 x the first | {push_ratio:.2f} | "
            f"{met[push_ratio <= 1.05]} |",
            "",
            HTPASSWD_NOTE,
        ]
    )
    write_section(ROOT / "BENCHMARKS.md", "registry_access", "Registries as teams run them", body)
    print(body)


def _signed_pushes(
    work: Path, env: dict[str, str], store: str, sign_key: tuple[str, ...]
) -> tuple[float, float, float, tuple[float, ...]]:
    """The best of ROUNDS signed pushes to a plain, a token and an htpasswd registry (fresh
    ones each round, the order turned round), and what a request costs each."""
    home = Path(env["HOME"])
    took: dict[str, list[float]] = {"plain": [], "token": [], "htpasswd": []}
    for n in range(ROUNDS):  # fresh registries each round, the order turned round
        with contextlib.ExitStack() as stack:
            plain = stack.enter_context(registry(work / f"plain{n}"))
            secure = stack.enter_context(
                tls_htpasswd_registry(work / f"secure{n}", {"team": PASSWORD})
            )
            tokens = stack.enter_context(
                token_registry(work / f"token{n}", {"team": (PASSWORD, "push")})
            )
            pair = base64.b64encode(f"team:{PASSWORD}".encode()).decode()
            auths = {}
            for reg in (secure, tokens):
                certs_d(home / ".config/containers/certs.d", reg)
                auths[reg.address] = {"auth": pair}
            (work / "auth.json").write_text(json.dumps({"auths": auths}))
            order = [("plain", plain), ("token", tokens.address), ("htpasswd", secure.address)]
            for kind, address in order[:: -1 if n % 2 else 1]:
                took[kind].append(
                    run(env, "push", str(EXAMPLE), f"{address}/qapm", "-o", store, *sign_key)
                )
            if n == 0:
                per_request = _per_request(plain, secure)
    plain_s, token_s, secure_s = (min(took[k]) for k in ("plain", "token", "htpasswd"))
    return plain_s, token_s, secure_s, per_request


def _per_request(plain: str, secure: SecureRegistry, count: int = 500) -> tuple[float, ...]:
    """Milliseconds a `GET /v2/` takes on one kept-alive connection: plain HTTP, TLS with no
    credentials (answered 401 before any password check), TLS with htpasswd Basic."""
    basic = "Basic " + base64.b64encode(f"team:{PASSWORD}".encode()).decode()
    cases: list[tuple[http.client.HTTPConnection, dict[str, str]]] = [
        (http.client.HTTPConnection(plain), {}),
        (http.client.HTTPSConnection(secure.address, context=secure.ssl_context()), {}),
        (
            http.client.HTTPSConnection(secure.address, context=secure.ssl_context()),
            {"Authorization": basic},
        ),
    ]
    took = []
    for conn, headers in cases:
        with contextlib.closing(conn):
            start = time.monotonic()
            for _ in range(count):
                conn.request("GET", "/v2/", headers=headers)
                conn.getresponse().read()
            took.append((time.monotonic() - start) / count * 1000)
    return tuple(took)


def _unsigned_copy(source: Path, into: Path) -> None:
    """The store without its attachments (signatures, attestations): as built."""
    shutil.copytree(source, into)
    index = json.loads((into / "index.json").read_text())
    index["manifests"] = [
        m
        for m in index["manifests"]
        if ":sha256-" not in m.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
    ]
    (into / "index.json").write_text(json.dumps(index))


if __name__ == "__main__":
    main()
