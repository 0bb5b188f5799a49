"""Benchmark: cairn analyze against dive, and cairn sbom against trivy's package listing, on
the same docker archives (linux/amd64).

Run as root from the repository root:  .venv/bin/python -m bench.analyze_speed
Builds the example family's golang image (over 300 MB uncompressed), saves it and
base-debug as docker archives, and makes a third archive that wastes space on
purpose (golang plus a layer writing a 40 MB file and one overwriting it with 10 MB
and deleting /usr/share/zoneinfo). Each tool reads each archive in its own process,
best of three; peak memory is the process's maximum resident set. Also checks that
cairn's dive-compatible figures agree with dive's own, and that both SBOM tools list
the same packages. Rewrites its section of BENCHMARKS.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import bench_workdir, build_amd64, write_section
from cairn.measure import verified
from cairn.oci import skopeo
from cairn.platforms import parse_platform

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "qapm"
BIN = Path(sys.executable).parent
RUNS = 3


def run_peak(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """One run: wall time, the command's own peak RSS (bytes), its stdout."""
    with tempfile.NamedTemporaryFile() as out:
        res = subprocess.run(
            [sys.executable, "-m", "bench.peak", out.name, *cmd],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            check=False,
            cwd=ROOT,
        )
        if res.returncode != 0:
            sys.exit(f"bench.peak failed:\n{res.stderr[-3000:]}")
        stats = json.loads(res.stdout)
        if stats["returncode"] not in (0, 1):
            sys.exit(f"{cmd[0]} failed ({stats['returncode']}):\n{res.stderr[-3000:]}")
        return stats["seconds"], stats["peak_bytes"], Path(out.name).read_text()


def best_of(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    runs = [run_peak(cmd, env) for _ in range(RUNS)]
    return min(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2]


def add_layers(src: Path, dst: Path, layers: list[bytes], notes: list[str]) -> None:
    """A docker archive that is `src` plus `layers` (plain tars) on top."""
    with tarfile.open(src) as old, tarfile.open(dst, "w") as new:
        manifest = json.load(old.extractfile("manifest.json"))  # type: ignore[arg-type]
        entry = manifest[0]
        config = json.load(old.extractfile(entry["Config"]))  # type: ignore[arg-type]
        for member in old.getmembers():
            if member.name in ("manifest.json", entry["Config"]):
                continue
            new.addfile(member, old.extractfile(member) if member.isfile() else None)

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))

        for i, (layer, note) in enumerate(zip(layers, notes, strict=True)):
            name = f"extra{i}/layer.tar"
            add(name, layer)
            entry["Layers"].append(name)
            config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(layer).hexdigest())
            config.setdefault("history", []).append({"created_by": note})
        raw = json.dumps(config).encode()
        entry["Config"] = hashlib.sha256(raw).hexdigest() + ".json"
        add(entry["Config"], raw)
        add("manifest.json", json.dumps(manifest).encode())


def layer(members: list[tuple[str, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1735689600
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main() -> None:
    with bench_workdir(__doc__ or "", "cairn-bench-analyze", "mmdebstrap") as work:
        store = work / "oci"
        build_amd64(EXAMPLE, store, ("base", "base-debug", "golang"))
        archives = {}
        for image in ("golang", "base-debug"):
            archives[image] = work / f"{image}.tar"
            skopeo.copy(
                f"oci:{store}:{image}",
                f"docker-archive:{archives[image]}:qapm/{image}:bench",
                parse_platform("linux/amd64"),
            )
        archives["golang+waste"] = work / "golang-waste.tar"
        made = time.time()
        rng = os.urandom
        add_layers(
            archives["golang"],
            archives["golang+waste"],
            [
                layer([("opt/", None), ("opt/blob", rng(40_000_000))]),
                layer(
                    [("opt/", None), ("opt/blob", rng(10_000_000)), ("usr/share/.wh.zoneinfo", b"")]
                ),
            ],
            ["write /opt/blob (40 MB)", "overwrite /opt/blob (10 MB), delete /usr/share/zoneinfo"],
        )

        # a file changed within RACY_SECONDS is never recorded as verified
        time.sleep(max(0.0, made + verified.RACY_SECONDS + 0.1 - time.time()))
        dive_rows, sbom_rows = [], []
        for name, archive in archives.items():
            dive_json = work / f"{name}.dive.json"
            dive_s, dive_rss, _ = best_of(
                [
                    str(BIN / "dive"),
                    "--ci",
                    "--source",
                    "docker-archive",
                    str(archive),
                    "--json",
                    str(dive_json),
                ],
                env={"CI": "true"},
            )
            analyze = [sys.executable, "-m", "cairn", "analyze", f"docker-archive:{archive}"]
            # first read: an empty cache each run, so every layer is hashed and checked
            first_runs = []
            for i in range(RUNS):
                cold = work / f"cache-cold-{name}-{i}"
                first_runs.append(run_peak([*analyze, "--json"], {"XDG_CACHE_HOME": str(cold)}))
            first_s = min(r[0] for r in first_runs)
            first_rss = max(r[1] for r in first_runs)
            # again: the layers' digests were checked by an earlier run (as in a CI job that
            # runs analyze, sbom and scan in a row); the cache holds their records only
            warm = {"XDG_CACHE_HOME": str(work / "cache-warm")}
            run_peak([*analyze, "--json"], warm)
            cairn_s, cairn_rss, out = best_of([*analyze, "--json"], warm)
            ours = json.loads(out)
            theirs = json.loads(dive_json.read_text())["image"]
            dive_rows.append(
                (name, ours, theirs, dive_s, dive_rss, first_s, first_rss, cairn_s, cairn_rss)
            )
            print(
                f"{name}: dive {dive_s:.2f} s {dive_rss >> 20} MiB, cairn first read "
                f"{first_s:.2f} s {first_rss >> 20} MiB, again {cairn_s:.2f} s "
                f"{cairn_rss >> 20} MiB",
                file=sys.stderr,
            )

            if name == "golang+waste":
                continue
            trivy_s, trivy_rss, trivy_out = best_of(
                [
                    str(BIN / "trivy"),
                    "image",
                    "--input",
                    str(archive),
                    "--format",
                    "cyclonedx",
                    "--skip-db-update",
                    "--offline-scan",
                    "--cache-dir",
                    str(work / "trivy-cache"),
                    "--quiet",
                ]
            )
            sbom_s, sbom_rss, sbom_out = best_of(
                [
                    sys.executable,
                    "-m",
                    "cairn",
                    "sbom",
                    f"docker-archive:{archive}",
                    "--format",
                    "cyclonedx-json",
                ],
                {"XDG_CACHE_HOME": str(work / "cache-warm")},
            )

            def debs(bom: str) -> set[str]:
                return {
                    c["name"]
                    for c in json.loads(bom).get("components", [])
                    if c.get("purl", "").startswith("pkg:deb/")
                }

            sbom_rows.append(
                (name, debs(trivy_out), debs(sbom_out), trivy_s, trivy_rss, sbom_s, sbom_rss)
            )

        mib = 1 << 20
        lines = [
            "Command: `.venv/bin/python -m bench.analyze_speed` (as root, from the repository "
            "root).",
            "",
            "### cairn analyze --json against dive --ci (docker archives, best of three)",
            "",
            "First read: each run starts with an empty cache, so cairn hashes every layer "
            "to check it against its digest (dive checks none). Again: an earlier run "
            "checked the layers, and cairn trusts its record while the archive's file is "
            "unchanged (same inode, size, mtime and ctime), as a CI job that runs analyze, "
            "sbom and scan in a row does from its second command on.",
            "",
            "| archive | uncompressed | dive | peak | cairn, first read | peak | x faster | "
            "cairn, again | peak | x faster | x less memory |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, ours, _, dive_s, dive_rss, first_s, first_rss, cairn_s, cairn_rss in dive_rows:
            lines.append(
                f"| {name} | {ours['layers_bytes'] / 1e6:.1f} MB | {dive_s:.2f} s | "
                f"{dive_rss / mib:.0f} MiB | {first_s:.2f} s | {first_rss / mib:.0f} MiB | "
                f"{dive_s / first_s:.2f} | {cairn_s:.2f} s | {cairn_rss / mib:.0f} MiB | "
                f"{dive_s / cairn_s:.2f} | {dive_rss / cairn_rss:.2f} |"
            )
        lines += [
            "",
            "Agreement with dive's own figures (dive's `--json`: `inefficientBytes`, "
            "`efficiencyScore`) and cairn's corrected waste (bytes stored that the final "
            "file system does not show):",
            "",
            "| archive | dive wasted | cairn (dive's formula) | difference | dive efficiency | "
            "cairn | cairn corrected waste |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        agree = True
        for name, ours, theirs, *_ in dive_rows:
            d_w, c_w = theirs["inefficientBytes"], ours["wasted_bytes_dive"]
            diff = abs(c_w - d_w) / d_w if d_w else float(c_w != 0)
            eff_diff = abs(ours["efficiency"] - theirs["efficiencyScore"])
            agree &= diff <= 0.01 and eff_diff <= 0.01
            lines.append(
                f"| {name} | {d_w:,} | {c_w:,} | {diff:.2%} | {theirs['efficiencyScore']:.4f} | "
                f"{ours['efficiency']:.4f} | {ours['wasted_bytes']:,} |"
            )
        lines += [
            "",
            "### cairn sbom against trivy's package listing (offline, CycloneDX, best of three)",
            "",
            "| archive | trivy | peak | cairn sbom | peak | x faster | x less memory | "
            "Debian packages (trivy / cairn / both) |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, t_pk, c_pk, t_s, t_rss, c_s, c_rss in sbom_rows:
            lines.append(
                f"| {name} | {t_s:.2f} s | {t_rss / mib:.0f} MiB | {c_s:.2f} s | "
                f"{c_rss / mib:.0f} MiB | {t_s / c_s:.2f} | {t_rss / c_rss:.2f} | "
                f"{len(t_pk)} / {len(c_pk)} / {len(t_pk & c_pk)} |"
            )
        big = [r for r in dive_rows if r[1]["layers_bytes"] >= 300e6]

        def every(test: Callable[[tuple[Any, ...]], bool]) -> str:
            return "yes" if big and all(test(r) for r in big) else "no"

        lines += [
            "",
            "| target (archives of 300 MB or more) | first read | again |",
            "|---|:---:|:---:|",
            f"| analyze at least 2x faster than dive | {every(lambda r: r[3] / r[5] >= 2)} | "
            f"{every(lambda r: r[3] / r[7] >= 2)} |",
            f"| analyze uses less peak memory than dive | {every(lambda r: r[4] > r[6])} | "
            f"{every(lambda r: r[4] > r[8])} |",
            f"| dive's wasted bytes and efficiency within 1 % of dive's own | "
            f"{'yes' if agree else 'no'} | |",
            "",
            "Where the time goes: a first read cannot be faster than the SHA-256 of the "
            "largest layer (one stream, one core); cairn hashes layers on worker threads while "
            "it reads the tar headers, by offset, without reading the file contents. What "
            "remains is CPython: starting the interpreter and the command line (about 50 ms), "
            "and some microseconds of Python per tar member. The SBOM comparison counts "
            "packages whose purl starts with pkg:deb/; cairn sbom also parses every "
            "machine-readable copyright file for licenses.",
        ]
        write_section(
            ROOT / "BENCHMARKS.md",
            "analyze-speed",
            "cairn analyze against dive, cairn sbom against trivy",
            "\n".join(lines),
        )


if __name__ == "__main__":
    main()
