"""A freshly made Debian machine, to try the README as a new user would.

`FreshRoot` makes a root file system with mmdebstrap (the suite with its updates
and security suites, and only python3, python3-venv, git and ca-certificates),
copies in what every machine here has and downloads need (the CA store and
/etc/pip.conf), mounts /proc, /sys and /dev, clones the commit under test to
/root/cairn, and runs commands in it with chroot, as root, with an environment
of its own: nothing else of the host leaks in, so a missing install step fails.
On every exit path (an error, Ctrl-C, SIGTERM) it ends what still runs inside,
unmounts and removes the root.

Downloads are cached across runs (apt's archives, pip's and cairn's caches under
`~/.cache/cairn-fresh-roots/SUITE`): a cache holds packages, not installed
state, so it cannot hide a missing step.

    python -m tests.freshroot trixie bookworm      # what scripts/fresh-machine runs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from cairn.scratch import remove_tree

REPO = Path(__file__).resolve().parents[1]
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
SUITES = ("bookworm", "trixie")
# what the fresh machine has besides Debian's apt variant (Essential + apt)
INCLUDE = ("python3", "python3-venv", "git", "ca-certificates")
# what every machine here carries and downloads need
HOST_FILES = ("etc/ssl/certs/ca-certificates.crt", "etc/pip.conf")
HOST_DIRS = ("usr/local/share/ca-certificates",)
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cairn-fresh-roots"
# what of the host's environment a command in the root sees
PASSED_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
CLONE = "/root/cairn"


class StepFailed(Exception):
    """A step of the fresh-machine check failed: its name, and what it printed last."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"fresh machine: step '{step}' failed: {detail}")
        self.step = step


class Interrupted(BaseException):
    """SIGTERM, turned into an exception so that every `finally` runs."""


def readme_commands(readme: Path = REPO / "README.md") -> tuple[str, str]:
    """The README's two set-up commands: the main job, and the tests."""
    text = readme.read_text()
    match = re.search(r"^## Two commands.*?^```sh\n(.*?)^```", text, re.M | re.S)
    if not match:
        raise StepFailed("readme", "README.md has no '## Two commands' section with a sh block")
    lines = [line.split("#", 1)[0].strip() for line in match.group(1).splitlines()]
    commands = [line for line in lines if line]
    if len(commands) != 2:
        raise StepFailed("readme", f"expected two commands in the README, found {commands}")
    return commands[0], commands[1]


def _processes_in(root: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "root").readlink() == root:
                pids.append(int(entry.name))
    return pids


@dataclass
class StepResult:
    name: str
    seconds: float


@dataclass
class FreshRoot:
    """A fresh Debian root in a directory of its own under /var/tmp (never below a tree
    that something else removes); every command's output goes to `log`."""

    suite: str
    log: Path
    mirror: str = MIRROR
    cache: Path = CACHE
    steps: list[StepResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"cairn-fresh-{self.suite}-", dir="/var/tmp"))
        self.path.chmod(0o755)  # a root directory, which apt's _apt user reads through
        self.cache = self.cache / self.suite

    # ------------------------------------------------------------ life cycle
    def __enter__(self) -> FreshRoot:
        try:
            self.create()
            self.mount()
            self.clone()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    def create(self) -> None:
        """mmdebstrap: the suite, its updates and security suites, and INCLUDE."""
        archives = self.cache / "apt"
        archives.mkdir(parents=True, exist_ok=True)
        sources = [
            f"deb {self.mirror} {self.suite} main",
            f"deb {self.mirror} {self.suite}-updates main",
            f"deb {SECURITY_MIRROR} {self.suite}-security main",
        ]
        cmd = [
            "mmdebstrap",
            "--variant=apt",
            "--include=" + ",".join(INCLUDE),
            # the downloads go back to the cache, for the next root of this suite
            '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/partial',
            f"--setup-hook=sync-in {archives} /var/cache/apt/archives/",
            f"--customize-hook=sync-out /var/cache/apt/archives {archives}",
            self.suite,
            str(self.path),
            *sources,
        ]
        self._run_host("make the root (mmdebstrap)", cmd)
        for name in HOST_FILES:
            src = Path("/") / name
            if src.exists():
                (self.path / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, self.path / name)
        for name in HOST_DIRS:
            src = Path("/") / name
            if src.is_dir():
                shutil.copytree(src, self.path / name, dirs_exist_ok=True)

    def mount(self) -> None:
        root = self.path
        # the root is a mount point of its own, as a machine's / is: containers/storage (in
        # Debian 13's skopeo and buildah) makes / private before it applies a layer, and
        # mount(2) refuses that (EINVAL) on a directory that is no mount point
        self._run_host("mount", ["mount", "--bind", str(root), str(root)])
        self._run_host("mount", ["mount", "--make-private", str(root)])
        self._run_host("mount", ["mount", "-t", "proc", "proc", str(root / "proc")])
        # /sys with what a booted machine has below it (cgroups), /dev with /dev/shm and pts
        for tree in ("sys", "dev"):
            # slaves in one call: unmounting them later must never propagate to the host's
            target = str(root / tree)
            self._run_host("mount", ["mount", "--rbind", "--make-rslave", f"/{tree}", target])
        binds = {
            self.cache / "apt": root / "var/cache/apt/archives",
            self.cache / "pip": root / "root/.cache/pip",
            self.cache / "cairn": root / "root/.cache/cairn",
        }
        for src, dst in binds.items():
            src.mkdir(parents=True, exist_ok=True)
            dst.mkdir(parents=True, exist_ok=True)
            self._run_host("mount", ["mount", "--bind", str(src), str(dst)])

    def clone(self) -> None:
        """The commit under test (HEAD of this repository), cloned as a user would."""
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        target = self.path / CLONE.lstrip("/")
        self._run_host(
            "clone", ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(target)]
        )
        self._run_host(
            "clone", ["git", "-C", str(target), "checkout", "--quiet", "--detach", commit]
        )

    def destroy(self) -> None:
        """End what runs inside, unmount everything below the root, remove it."""
        if not self.path.exists():
            return
        for _ in range(3):
            pids = _processes_in(self.path)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if not pids:
                break
            time.sleep(0.5)
        # cairn's own rule: unmount what is below, and never remove through a mount (the
        # host's /dev, a cache); an OSError says what is still mounted
        remove_tree(self.path)

    # ------------------------------------------------------------ running
    def run(self, step: str, script: str, *, timeout: float = 1800) -> str:
        """Run `script` with bash inside the root, in /root/cairn; its output on failure."""
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "CI": "true",
            **{k: os.environ[k] for k in PASSED_ENV if k in os.environ},
        }
        cmd = [
            "chroot",
            str(self.path),
            "/bin/bash",
            "-euo",
            "pipefail",
            "-c",
            f"cd {CLONE}\n{script}",
        ]
        return self._run(step, cmd, env=env, timeout=timeout)

    def _run_host(self, step: str, cmd: list[str]) -> str:
        return self._run(step, cmd, env=None, timeout=900)

    def _run(self, step: str, cmd: list[str], *, env: dict[str, str] | None, timeout: float) -> str:
        start = time.monotonic()
        with self.log.open("a") as log:
            log.write(f"\n=== {step}: {shlex.join(cmd)}\n")
            log.flush()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                text=True,
                start_new_session=True,
            )
            try:
                out, _ = proc.communicate(timeout=timeout)
            except BaseException:
                # a time-out, Ctrl-C or SIGTERM: the whole group goes, then the caller cleans up
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
            log.write(out)
        seconds = time.monotonic() - start
        if proc.returncode != 0:
            tail = "\n".join(out.splitlines()[-25:])
            raise StepFailed(step, f"exit {proc.returncode} after {seconds:.0f} s:\n{tail}")
        self.steps.append(StepResult(step, round(seconds, 1)))
        return out

    def timings(self) -> dict[str, float]:
        """Seconds per step name, its runs added up, in the order the steps ran."""
        totals: dict[str, float] = {}
        for s in self.steps:
            totals[s.name] = round(totals.get(s.name, 0) + s.seconds, 1)
        return totals


# ---------------------------------------------------------------- the check
def check_readme(root: FreshRoot, *, whole_family: bool = False) -> dict[str, Any]:
    """The README's set-up command in the root, then cairn's main jobs once each on what it built.

    The README's first command is `./scripts/setup && .venv/bin/cairn build examples/qapm`:
    it runs as written, restricted to the `base` image unless `whole_family`.
    """
    main_job, _tests = readme_commands(root.path / CLONE.lstrip("/") / "README.md")
    setup, _, build = main_job.partition(" && ")
    if setup != "./scripts/setup" or not build.startswith(".venv/bin/cairn build examples/qapm"):
        raise StepFailed("readme", f"the README's first command changed: {main_job!r}")
    root.run("set-up (README)", setup)
    # setup must have installed the emulator itself: the kernel's handler is the host's
    root.run(
        "set-up installed its engines",
        "test -e /usr/lib/binfmt.d/qemu-aarch64.conf\n"
        "for t in arch-test mmdebstrap skopeo buildah pigz; do command -v $t; done",
    )
    build_cmd = build if whole_family else f"{build} --image base"
    root.run("build base (README)", f"{build_cmd} --json > /root/build.json")
    built = json.loads((root.path / "root/build.json").read_text())
    if not whole_family:
        # a Dockerfile image too (buildah and skopeo as the set-up installed them), amd64 only
        root.run("build tools", f"{build} --image tools --platform linux/amd64 >/dev/null")
    arm64 = "oci:examples/qapm/out/oci:base"
    analysis = json.loads(
        root.run("analyze", f".venv/bin/cairn analyze {arm64} --platform linux/arm64 --json")
    )
    compat = json.loads(
        root.run("compat", f".venv/bin/cairn compat /usr/bin/ls --target {arm64} --json")
    )
    root.run(
        "init + doctor",
        ".venv/bin/cairn init /root/hello --lang go --family examples/qapm >/dev/null\n"
        ".venv/bin/cairn doctor /root/hello --json > /root/doctor.json",
    )
    doctor = json.loads((root.path / "root/doctor.json").read_text())
    # cairn as a user installs it: a wheel of this checkout in a virtualenv of its own,
    # run away from the source tree, its data files read from the installed package
    version, setup = root.run(
        "wheel, installed as a user",
        "python3 -m venv /root/user\n"
        "/root/user/bin/pip wheel -q --no-deps -w dist .\n"
        "/root/user/bin/pip install -q dist/cairn-*.whl\n"
        "cd /\n"
        "/root/user/bin/cairn --version\n"
        "/root/user/bin/cairn setup --check --json",
    ).split("\n", 1)
    return {
        "build": built,
        "analysis": analysis,
        "compat": compat,
        "doctor": doctor,
        "version": version,
        "setup": json.loads(setup),
    }


@contextlib.contextmanager
def terminating_cleanly() -> Iterator[None]:
    """SIGTERM raises, so that every root is unmounted and removed as on Ctrl-C."""

    def raise_interrupted(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/fresh-machine", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("suites", nargs="*", default=list(SUITES), choices=SUITES)
    parser.add_argument(
        "--whole-family", action="store_true", help="build every image, as the README does"
    )
    parser.add_argument("--mirror", default=MIRROR, help="Debian mirror for the roots")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("fresh machine: needs root (mmdebstrap, mount, chroot)", file=sys.stderr)
        return 2
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    if dirty:
        print("fresh machine: uncommitted changes are not tested (HEAD is cloned)", file=sys.stderr)
    with terminating_cleanly():
        for suite in args.suites:
            log = Path(tempfile.gettempdir()) / f"cairn-fresh-{suite}.log"
            log.unlink(missing_ok=True)
            try:
                with FreshRoot(suite, log, args.mirror) as root:
                    result = check_readme(root, whole_family=args.whole_family)
            except StepFailed as e:
                print(f"{e}\n(the whole log: {log})", file=sys.stderr)
                return 1
            except (KeyboardInterrupt, Interrupted):
                print(f"fresh machine: interrupted; the {suite} root is removed", file=sys.stderr)
                return 130
            images = ", ".join(i["name"] for i in result["build"]["images"])
            times = ", ".join(f"{name} {sec:.0f} s" for name, sec in root.timings().items())
            print(f"fresh machine {suite}: ok (built {images}; {times})")
            if args.whole_family:
                for image in result["build"]["images"]:
                    sizes = ", ".join(
                        f"{p['platform']} {p['uncompressed_bytes'] / 1e6:.1f} MB"
                        for p in image["platforms"]
                    )
                    print(f"  {image['name']}: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
