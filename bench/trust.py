"""Benchmark: signing, attesting and carrying the example family across an air gap.

Run as root from the repository root:  .venv/bin/python -m bench.trust
The whole example family is built for both platforms (package cache warm) into a
store, then, in one run, against docker-registry instances on 127.0.0.1:
- `cairn push` of the family (the reference), then `cairn sign` of it (signatures and
  attestations: SBOMs, provenance) and `cairn push` of the signed family elsewhere;
- `cairn bundle` of the signed family, its size against the images' compressed blobs
  (each stored once), and `cairn unbundle` into a second registry, against
  `skopeo copy --all` of the same images and tags from the first registry to a third
  (an empty one, as the second was: no blob is there to be mounted or skipped).
Rewrites its section of BENCHMARKS.md. BENCH_STORE=DIR uses the family already built
there (both platforms, e.g. kept by bench.runtime_family_build --keep) instead of
building it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import zstandard

from bench.report import bench_workdir, write_section
from cairn.family.spec import load_family
from cairn.oci.layout import OciLayout, reachable

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "qapm"


@contextlib.contextmanager
def registry(d: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    d.mkdir(parents=True)
    (d / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {d / 'data'}\nhttp:\n  addr: {address}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(d / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(150):
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=1),
            ):
                break
            time.sleep(0.2)
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def timed(*cmd: str, env: dict[str, str] | None = None) -> float:
    start = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    took = time.monotonic() - start
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr[-4000:]}")
    return took


@contextlib.contextmanager
def peak_bytes(directory: Path) -> Iterator[list[int]]:
    """The most bytes the files under `directory` held at once while the block ran,
    sampled every 10 ms (in the list, when the block ends)."""
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            total = 0
            for root, _, files in os.walk(directory):
                for name in files:
                    with contextlib.suppress(OSError):
                        total += (Path(root) / name).lstat().st_size
            peak[0] = max(peak[0], total)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def cairn(*args: str) -> float:
    return timed(sys.executable, "-m", "cairn", *args)


def _manifest(bundle: Path) -> bytes:
    """The signed manifest, the bundle's first member."""
    with bundle.open("rb") as f:
        head = zstandard.ZstdDecompressor().stream_reader(f).read(1 << 20)
    size = int(head[124:136].strip(b" \0"), 8)
    return head[512 : 512 + size]


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def main() -> None:
    family = load_family(EXAMPLE)
    with bench_workdir(__doc__ or "", "cairn-bench-trust", "docker-registry") as work:
        if os.environ.get("BENCH_STORE"):
            shutil.copytree(os.environ["BENCH_STORE"], work / "oci")
        store = f"oci:{work / 'oci'}"
        cairn("build", str(EXAMPLE), "--output", store)  # builds nothing when it was given
        keyfile, passfile = work / "team", work / "passphrase"
        passfile.write_text("bench passphrase\n")
        cairn("keygen", "--output-prefix", str(keyfile), "--passphrase-file", str(passfile))
        key = ("--key", f"{keyfile}.key", "--passphrase-file", str(passfile))
        with (
            registry(work / "team-registry") as team,
            registry(work / "customer") as customer,
            registry(work / "copied") as copied,
        ):
            push_s = cairn("push", str(EXAMPLE), f"{team}/plain", "--insecure", "--output", store)
            sign_s = cairn("sign", str(EXAMPLE), f"{team}/qapm", "--output", store, *key)
            signed_push_s = cairn(
                "push", str(EXAMPLE), f"{team}/qapm", "--insecure", "--output", store
            )
            bundle_file = work / "qapm.tar.zst"
            bundle_s = cairn(
                "bundle", str(EXAMPLE), "--to", str(bundle_file), "--output", store, *key,
                "--for", f"{team}/qapm",
            )  # fmt: skip
            scratch = work / "unbundle-scratch"
            scratch.mkdir()
            with peak_bytes(scratch) as peak:
                unbundle_s = timed(
                    sys.executable, "-m", "cairn", "unbundle", str(bundle_file),
                    "--to", f"{customer}/qapm", "--insecure", "--key", f"{keyfile}.pub",
                    env=os.environ | {"TMPDIR": str(scratch)},
                )  # fmt: skip
            copy_s = 0.0
            for image in family.images:
                for tag in image.tags:
                    copy_s += timed(
                        "skopeo", "copy", "--all", "--preserve-digests", "--quiet",
                        "--src-tls-verify=false", "--dest-tls-verify=false",
                        f"docker://{team}/plain/{image.name}:{tag}",
                        f"docker://{copied}/qapm/{image.name}:{tag}",
                    )  # fmt: skip
        layout = OciLayout(work / "oci")
        images = {i.name for i in family.images}
        layers: set[str] = set()
        for name in images:
            for m in layout.platform_manifests(name):
                layers |= {d["digest"] for d in layout.read_json(m.digest)["layers"]}
        blobs = reachable(layout)
        layer_bytes = sum(layout.blob_path(d).stat().st_size for d in layers)
        largest = max(layout.blob_path(d).stat().st_size for d in blobs)
        signed = json.loads(_manifest(bundle_file))
        layer_files = {f"blobs/sha256/{d.partition(':')[2]}" for d in layers}
        documents = sum(size for n, size in signed["sizes"].items() if n not in layer_files)
        unpacked = peak[0]
        blob_bytes = sum(layout.blob_path(d).stat().st_size for d in blobs)
        bundle_bytes = bundle_file.stat().st_size
        attestations = sum(
            1 for name in images for tag in layout.attachments(name) if tag.endswith(".att")
        )
    sign_ratio = sign_s / push_s
    size_ratio = bundle_bytes / layer_bytes
    carry_ratio = (bundle_s + unbundle_s) / copy_s
    met = {True: "yes", False: "no"}
    body = "\n".join(
        [
            "Command: `.venv/bin/python -m bench.trust` (as root, from the repository root). "
            f"The example family, {len(images)} images for linux/amd64 and linux/arm64, built "
            "with the package cache warm; docker-registry 2.8 instances on 127.0.0.1, plain "
            "HTTP: the team's, and two empty ones the bundle and skopeo's copy go to.",
            "",
            "| step | wall time | x reference |",
            "|---|---:|---:|",
            f"| `cairn push` of the family (reference) | {push_s:.1f} s | 1.00 |",
            f"| `cairn sign`: {len(images)} indexes and their platforms signed, "
            f"{attestations} platforms attested (SPDX, CycloneDX, SLSA provenance) "
            f"| {sign_s:.1f} s | {sign_ratio:.2f} |",
            f"| `cairn push` of the signed family to a new prefix (images and "
            f"attachments) | {signed_push_s:.1f} s | {signed_push_s / push_s:.2f} |",
            f"| `skopeo copy --all` of every image and tag, registry to registry "
            f"(reference) | {copy_s:.1f} s | 1.00 |",
            f"| `cairn bundle` + `cairn unbundle` (every check) | {bundle_s:.1f} s + "
            f"{unbundle_s:.1f} s | {carry_ratio:.2f} |",
            "",
            "| size | bytes | x reference |",
            "|---|---:|---:|",
            f"| the images' compressed layers, each once (reference) | {mb(layer_bytes)} | 1.00 |",
            f"| every blob the images and their attachments reach (configs, manifests, "
            f"signatures, attestations too) | {mb(blob_bytes)} | {blob_bytes / layer_bytes:.3f} |",
            f"| the bundle (.tar.zst) | {mb(bundle_bytes)} | {size_ratio:.3f} |",
            "",
            "| target | measured | met |",
            "|---|---:|:---:|",
            f"| signing and attesting ≤ 2 x the push | {sign_ratio:.2f} | {met[sign_ratio <= 2]} |",
            f"| bundle ≤ 1.02 x the compressed layers | {size_ratio:.3f} | "
            f"{met[size_ratio <= 1.02]} |",
            f"| bundle + unbundle ≤ 1.5 x skopeo copy | {carry_ratio:.2f} | "
            f"{met[carry_ratio <= 1.5]} |",
            f"| unbundle's peak scratch ≤ its largest blob ({mb(largest)}) | {mb(unpacked)} "
            f"(its documents: {mb(documents)}; layers go to the registry as they are read) "
            f"| {met[unpacked <= largest]} |",
        ]
    )
    write_section(ROOT / "BENCHMARKS.md", "trust", "Signing, attesting and bundles", body)
    print(body)


if __name__ == "__main__":
    main()
