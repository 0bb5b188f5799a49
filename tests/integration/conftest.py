"""Real engines for the integration tests: cairn's CLI, buildah, a Docker engine.

Each image is built once per test session (fixtures below) and reused; the
package cache is cairn's default one, so a second run downloads nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.freshroot import FreshRoot
from tests.helpers import snapshot
from tests.schemas import validated
from tests.secure_registries import access_log, serve

from cairn.family.refresh import installed_versions
from cairn.oci.layout import OciLayout
from cairn.platforms import emulation_env, known_platforms, parse_platform

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "qapm"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# The example family's images the session builds for both platforms: a root, a
# package child and a Dockerfile child (the others only add build time).
SESSION_IMAGES = ("base", "base-debug", "tools")


def only(*images: str) -> list[str]:
    return [arg for name in images for arg in ("--image", name)]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def binfmt_registered() -> None:
    """arm64 builds need qemu's binfmt handler; register it as scripts/setup does. Only the
    tests that build or run arm64 ask for it: the others run without root or emulation."""
    if (BINFMT / "qemu-aarch64").exists():
        return
    if os.geteuid() != 0:
        pytest.skip("builds for linux/arm64: needs root to register the qemu-aarch64 handler")
    if not os.path.ismount(BINFMT):
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=True)
    (BINFMT / "register").write_text(Path("/usr/lib/binfmt.d/qemu-aarch64.conf").read_text())


def cairn(
    *args: str, check: bool = True, docker_host: str | None = None, tmpdir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    if tmpdir:
        env["TMPDIR"] = str(tmpdir)
    res = subprocess.run(
        [sys.executable, "-m", "cairn", *args], capture_output=True, text=True, env=env, check=False
    )
    if check and res.returncode != 0:
        raise AssertionError(f"cairn {' '.join(args)} exited {res.returncode}:\n{res.stderr}")
    return res


def cairn_json(*args: str) -> dict[str, Any]:
    data: dict[str, Any] = validated(args[0], cairn(*args, "--json").stdout)
    return data


@dataclass(frozen=True)
class Built:
    store: Path
    result: dict[str, Any]

    def platform(self, image: str, platform: str) -> dict[str, Any]:
        img = next(i for i in self.result["images"] if i["name"] == image)
        found: dict[str, Any] = next(p for p in img["platforms"] if p["platform"] == platform)
        return found


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory, binfmt_registered: None) -> Built:
    """The example family's session images, both platforms, built once for the session."""
    store = tmp_path_factory.mktemp("store") / "oci"
    return Built(
        store, cairn_json("build", str(EXAMPLE), *only(*SESSION_IMAGES), "--output", f"oci:{store}")
    )


RUNTIMES = ("static", "runtime", "runtime-cc", "python-runtime", "java-runtime", "node-runtime")
RUNTIME_IMAGES = RUNTIMES + tuple(f"{name}-debug" for name in RUNTIMES)
QEMU_HANDLER = BINFMT / "qemu-aarch64"


@contextlib.contextmanager
def emulation_off() -> Iterator[None]:
    """qemu-aarch64's binfmt handler disabled, and enabled again however the block ends."""
    was = QEMU_HANDLER.read_text().splitlines()[0]
    QEMU_HANDLER.write_text("0")
    try:
        yield
    finally:
        if was == "enabled":
            QEMU_HANDLER.write_text("1")


@pytest.fixture(scope="session")
def runtime_family(base: Built, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The example family's runtime images, built beside the session's images with qemu's
    handler off (nothing of arm64 may run), and once more into an empty layout: both
    builds must give the same digests."""
    work = tmp_path_factory.mktemp("runtimes")
    store = work / "oci"
    shutil.copytree(base.store, store)
    results = []
    with emulation_off():
        for out in (store, work / "again"):
            assert QEMU_HANDLER.read_text().startswith("disabled")
            results.append(
                cairn_json("build", str(EXAMPLE), *only(*RUNTIME_IMAGES), "--output", f"oci:{out}")
            )
    assert QEMU_HANDLER.read_text().startswith("enabled")
    first, second = ({i["name"]: i["index_digest"] for i in r["images"]} for r in results)
    assert set(first) == set(RUNTIME_IMAGES)
    assert first == second, "the same spec built twice gave other digests"
    return Built(store, results[0])


def skip_if_archive_moved(built: Built, store: Path, images: tuple[str, ...]) -> None:
    """Digests match across builds only for the same package versions: when Debian published
    fixes between the session's build and this one, skip with the packages named rather than
    fail on a change outside cairn."""
    session, later = OciLayout(built.store), OciLayout(store)
    for image in images:
        for entry in built.result["images"]:
            if entry["name"] != image:
                continue
            for step in entry["platforms"]:
                platform = parse_platform(step["platform"])
                before = installed_versions(session, image, platform)
                after = installed_versions(later, image, platform)
                if after and before != after:
                    moved = sorted(
                        n for n in before.keys() | after.keys() if before.get(n) != after.get(n)
                    )
                    pytest.skip(
                        f"Debian's archive changed during the session ({image} {platform.name}: "
                        f"{', '.join(moved)})"
                    )


def assert_fails_cleanly(args: list[str], store: Path, code: int, *needles: str) -> None:
    before = snapshot(store)
    res = cairn(*args, "--output", f"oci:{store}", check=False)
    assert res.returncode == code, res.stderr
    for needle in needles:
        assert needle in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert snapshot(store) == before


@pytest.fixture
def store_copy(base: Built, tmp_path: Path) -> Path:
    """A private copy of the session's store, to change or to fail to change."""
    copy = tmp_path / "stores" / "oci"
    shutil.copytree(base.store, copy)
    return copy


class Buildah:
    """Runs commands in images with buildah (vfs, chroot isolation: no daemon)."""

    def __init__(self, root: Path) -> None:
        self.base = [
            "buildah",
            "--storage-driver",
            "vfs",
            "--root",
            str(root / "root"),
            "--runroot",
            str(root / "run"),
        ]

    def run(self, image: str, arch: str, script: str, timeout: int = 900) -> str:
        """`script` in `image` (pulled afresh, for `arch`) through sh -ec: its output. A
        foreign architecture's programs run on the CPU cairn has qemu emulate for it."""
        platform = next(p for p in known_platforms().values() if p.debian_arch == arch)
        emulated = [f"--env={k}={v}" for k, v in emulation_env(platform, os.environ).items()]
        res = self.execute(
            ["--pull-always", "--arch", arch, image],
            ["sh", "-ec", script],
            timeout=timeout,
            run_args=tuple(emulated),
        )
        if res.returncode != 0:
            raise AssertionError(
                f"in {image} ({arch}) `{script}` failed:\n{res.stdout}\n{res.stderr}"
            )
        return res.stdout

    def execute(
        self,
        from_args: list[str],
        command: list[str],
        timeout: int = 900,
        run_args: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[str]:
        """`command` in a container made by `buildah from FROM_ARGS`, removed afterwards."""
        ctr = subprocess.run(
            [*self.base, "from", "--quiet", *from_args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        try:
            return subprocess.run(
                [*self.base, "run", "--isolation", "chroot", *run_args, ctr, "--", *command],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        finally:
            subprocess.run([*self.base, "rm", ctr], capture_output=True, check=False)


@pytest.fixture(scope="session")
def buildah(tmp_path_factory: pytest.TempPathFactory) -> Buildah:
    return Buildah(tmp_path_factory.mktemp("buildah"))


@dataclass(frozen=True)
class Docker:
    host: str

    def __call__(self, *args: str, timeout: int = 600) -> str:
        # Debian's client (20.10) matches the engine it ships with.
        res = subprocess.run(
            ["/usr/bin/docker", "-H", self.host, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if res.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
        return res.stdout


@pytest.fixture(scope="session")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    """A private Docker engine (vfs storage, no bridge) for the session."""
    if shutil.which("dockerd") is None:
        pytest.fail("dockerd is missing: scripts/setup installs docker.io")
    d = tmp_path_factory.mktemp("docker")
    sock = d / "docker.sock"
    log = (d / "dockerd.log").open("wb")
    proc = subprocess.Popen(
        [
            "dockerd",
            "--storage-driver=vfs",
            "--iptables=false",
            "--bridge=none",
            "-H",
            f"unix://{sock}",
            "--data-root",
            str(d / "data"),
            "--exec-root",
            str(d / "exec"),
            "--pidfile",
            str(d / "docker.pid"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = Docker(f"unix://{sock}")
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"dockerd exited:\n{(d / 'dockerd.log').read_text()[-3000:]}")
        try:
            client("version")
            break
        except AssertionError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"dockerd did not start:\n{(d / 'dockerd.log').read_text()[-3000:]}")
            time.sleep(0.5)
    yield client
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()
    unmount_below(d)


def unmount_below(directory: Path) -> None:
    """dockerd leaves mounts (its data root, a network namespace) under its directories."""
    prefix = str(directory.resolve()) + "/"
    with Path("/proc/self/mounts").open() as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)


@dataclass(frozen=True)
class Registry:
    address: str  # 127.0.0.1:PORT
    log: Path

    def requests(self) -> list[str]:
        """The registry's access log so far: one "METHOD PATH" per request."""
        return access_log(self.log)


@contextlib.contextmanager
def running_registry(d: Path) -> Iterator[Registry]:
    """Debian's docker-registry (distribution) on 127.0.0.1, plain HTTP, storing in `d`."""
    with serve(d, {}) as (address, log):
        yield Registry(address, log)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The session's registry (the team's, where the family is pushed)."""
    with running_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="session")
def customer_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A second registry: the customer's, on the other side of the air gap."""
    with running_registry(tmp_path_factory.mktemp("customer-registry")) as running:
        yield running


@pytest.fixture(scope="session")
def family_on_registry(
    runtime_family: Built, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The images Go and Python projects build and run on, pushed to the session's registry."""
    store = tmp_path_factory.mktemp("project-family") / "oci"
    shutil.copytree(runtime_family.store, store)
    out = f"oci:{store}"
    # Go cross-compiles: its toolchain is needed for the build machine's platform only
    cairn("build", str(EXAMPLE), "--image", "golang", "--platform", "linux/amd64", "--output", out)
    cairn("build", str(EXAMPLE), "--image", "python", "--image", "python-build", "--output", out)
    prefix = f"{registry.address}/projects"
    images = ("base", "golang", "python", "python-build", "static", "runtime", "python-runtime")
    cairn(
        "push",
        str(EXAMPLE),
        prefix,
        "--insecure",
        *[a for i in images for a in ("-i", i)],
        "--output",
        out,
    )
    return prefix


class FreshRoots:
    """One fresh root per suite for the whole session, removed at its end."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.roots: dict[str, FreshRoot] = {}
        self.results: dict[str, dict[str, object]] = {}

    def get(self, suite: str) -> FreshRoot:
        if suite not in self.roots:
            root = FreshRoot(suite, self.logdir / f"{suite}.log")
            self.roots[suite] = root.__enter__()
        return self.roots[suite]

    def close(self) -> None:
        for root in self.roots.values():
            root.destroy()


@pytest.fixture(scope="session")
def trixie_skopeo(fresh_roots: FreshRoots) -> Path:
    """The session's trixie root with Debian 13's skopeo (1.18: its policy verifies
    sigstore signatures; Debian 12's has that disabled)."""
    root = fresh_roots.get("trixie")
    root.run(
        "install skopeo",
        "apt-get update -qq\nDEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo "
        ">/dev/null\nskopeo --version",
    )
    version = root.run("skopeo version", "skopeo --version")
    assert "1.18" in version, version
    return root.path


@pytest.fixture(scope="session")
def fresh_roots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshRoots]:
    if os.geteuid() != 0:
        pytest.skip("needs root: mmdebstrap, mount and chroot make and enter the fresh roots")
    if not shutil.which("mmdebstrap"):
        pytest.skip("needs mmdebstrap (scripts/setup installs it)")
    roots = FreshRoots(tmp_path_factory.mktemp("fresh-logs"))
    try:
        yield roots
    finally:
        roots.close()
