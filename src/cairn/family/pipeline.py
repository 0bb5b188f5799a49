"""The family as CI jobs: one model that GitHub Actions and GitLab CI are both written from.

One job per image and platform, on a runner of that platform (arm64 builds
natively there, no emulation), and a `publish` job. Every job runs in the
user's repository, which holds the family and nothing of cairn: it installs
cairn as a package ($CAIRN_PACKAGE, by default the version that wrote the
file; a path to a wheel works too) into a virtualenv of the job's own, then
the engines its platform needs (`cairn setup --install`). A build job starts
from its parent's layout for the same platform (the parent job's artifact,
cairn-parts/PARENT-ARCH), builds its image into cairn-parts/NAME-ARCH and
leaves that as its artifact. `publish` joins every part with `cairn merge`
and pushes when $CAIRN_REGISTRY is set; otherwise it says so and keeps the
merged layout as its artifact.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from cairn import __version__
from cairn.errors import UsageError
from cairn.family.spec import Family, Image
from cairn.platforms import Platform, parse_platform

PARTS = "cairn-parts"  # one layout per build job: cairn-parts/NAME-ARCH
VENV = ".cairn-venv"  # each job's own virtualenv, in its checkout
CAIRN = f"{VENV}/bin/cairn"
AS_ROOT = f"$SUDO {CAIRN}"  # installing engines and building need root; merging and pushing not
PUBLISHED = "cairn-published"  # the merged layout the publish job keeps

# what a pipeline's user sets (GitHub: repository variables; GitLab: CI/CD variables). cairn
# is not on PyPI (a project of that name there is another one), so no package is assumed.
VARIABLES = {
    "CAIRN_PACKAGE": "",
    "CAIRN_REGISTRY": "",
    "CAIRN_REGISTRY_USER": "",
    "CAIRN_PUSH_OPTIONS": "",
}


@dataclass(frozen=True)
class CiJob:
    """One job, as both CI systems run it."""

    id: str
    platform: Platform  # the runner's
    needs: tuple[str, ...]
    script: tuple[str, ...]  # shell lines, run in one shell, stopping at the first failure
    takes: str | None  # the part (an artifact of the job it needs) it starts from
    leaves: str  # the path it leaves as its artifact


# The CI's own registry and job credentials, as each CI names them (GitLab: CI_REGISTRY,
# CI_REGISTRY_IMAGE, CI_REGISTRY_USER, CI_REGISTRY_PASSWORD; GitHub: ghcr.io, the repository,
# github.actor and GITHUB_TOKEN), mapped by the emitted file onto these names.
CI_REGISTRY_VARIABLES = (
    "CAIRN_CI_REGISTRY",
    "CAIRN_CI_REGISTRY_IMAGE",
    "CAIRN_CI_USER",
    "CAIRN_CI_PASSWORD",
)

# How `publish` finds where to push and logs in: CAIRN_REGISTRY (else the CI's own registry
# image, lower case as registries want it); CAIRN_REGISTRY_USER and CAIRN_REGISTRY_PASSWORD
# (sent only to CAIRN_REGISTRY's host; else the CI's job credentials, sent only to the CI's
# own registry). The password goes
# through a pipe from the shell's printf (a builtin: on no command line) into cairn login,
# which keeps it in an auth file of the job's own, removed when the job's shell exits. A
# signing key (CAIRN_SIGN_KEY: a file variable's path, or the PEM itself) signs the images;
# its passphrase is CAIRN_KEY_PASSPHRASE.
PUBLISH_LOGIN = (
    'CAIRN_DESTINATION=$(printf %s "${CAIRN_REGISTRY:-${CAIRN_CI_REGISTRY_IMAGE:-}}" '
    "| tr '[:upper:]' '[:lower:]')",
    "CAIRN_JOB_DIR=$(mktemp -d) && trap 'rm -rf \"$CAIRN_JOB_DIR\"' EXIT",
    'case "${CAIRN_SIGN_KEY:-}" in -----BEGIN*) printf \'%s\\n\' "$CAIRN_SIGN_KEY" '
    '> "$CAIRN_JOB_DIR/sign.key"; CAIRN_SIGN_KEY="$CAIRN_JOB_DIR/sign.key";; esac',
    # a login goes to the job's own auth file (REGISTRY_AUTH_FILE: then the only one read);
    # without one, the job's user's own logins and helpers serve
    'if [ -n "${CAIRN_REGISTRY:-}" ] && [ -n "${CAIRN_REGISTRY_PASSWORD:-}" ]; then '
    'export REGISTRY_AUTH_FILE="$CAIRN_JOB_DIR/auth.json"; '
    'printf %s "$CAIRN_REGISTRY_PASSWORD" | '
    f'{CAIRN} login "${{CAIRN_DESTINATION%%/*}}" -u "${{CAIRN_REGISTRY_USER:-}}" '
    "--password-stdin; "
    'elif [ -n "${CAIRN_CI_PASSWORD:-}" ] && '
    '[ "${CAIRN_DESTINATION%%/*}" = "${CAIRN_CI_REGISTRY:-}" ]; then '
    'export REGISTRY_AUTH_FILE="$CAIRN_JOB_DIR/auth.json"; '
    f'printf %s "$CAIRN_CI_PASSWORD" | {CAIRN} login "$CAIRN_CI_REGISTRY" '
    '-u "$CAIRN_CI_USER" --password-stdin; fi',
)


def _part(image: Image, platform: Platform) -> str:
    return f"{image.name}-{platform.debian_arch}"


def job_id(image: Image, platform: Platform) -> str:
    return "build-" + _part(image, platform).replace(".", "-")


def _install(platform: Platform) -> tuple[str, ...]:
    """cairn into the job's virtualenv, then the engines this platform needs."""
    return (
        f': "${{CAIRN_PACKAGE:?is not set: set it to a cairn {__version__} wheel (a path or '
        f'URL) or to a requirement your package index serves, such as cairn=={__version__}}}"',
        # as root (a container job) or through sudo (a hosted runner's user)
        'SUDO=$([ "$(id -u)" = 0 ] || echo sudo)',
        f"python3 -m venv {VENV} 2>/dev/null || {{ $SUDO apt-get update -qq && "
        "$SUDO apt-get install -y -qq --no-install-recommends python3-venv && "
        f"python3 -m venv {VENV}; }}",
        f'{VENV}/bin/pip install -q --disable-pip-version-check "$CAIRN_PACKAGE"',
        f"{AS_ROOT} setup --install --platform {platform.name}",
    )


def repository_root(start: Path) -> Path:
    """The git repository `start` is in (its top directory), else `start` itself."""
    here = start.resolve()
    return next((d for d in (here, *here.parents) if (d / ".git").exists()), here)


def _in_repository(family: Family, root: Path) -> str:
    """The family's directory as the pipeline's checkout names it."""
    try:
        return family.directory.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        raise UsageError(
            f"A pipeline runs in the repository that holds the family, and {family.directory} "
            f"is not inside {root}, where this runs.",
            "Try: run cairn plan --emit inside the family's repository.",
        ) from None


def ci_jobs(family: Family, cwd: Path | None = None) -> tuple[CiJob, ...]:
    """Every build job, parents first, then `publish`; paths relative to the root of the
    repository `cwd` is in (where the pipeline runs), else to `cwd`."""
    root = repository_root(cwd or Path.cwd())
    spec = shlex.quote(_in_repository(family, root))
    jobs: list[CiJob] = []
    for image in family.images:
        for platform in image.platforms:
            part = f"{PARTS}/{_part(image, platform)}"
            script: list[str] = []
            takes = None
            needs: tuple[str, ...] = ()
            if image.parent is not None:
                parent = family.image(image.parent)
                takes = f"{PARTS}/{_part(parent, platform)}"
                needs = (job_id(parent, platform),)
                # before anything is installed: a missing artifact fails at once
                script.append(
                    f'[ -d {takes} ] || {{ echo "cairn: job {needs[0]} left no {takes}: '
                    f'this job builds on it; run {needs[0]} first and keep its artifact." >&2; '
                    "exit 1; }"
                )
            script += _install(platform)
            if takes is not None:
                script.append(f"rm -rf {part} && cp -a {takes} {part}")
            script.append(
                f"{AS_ROOT} build {spec} --image {image.name} --platform {platform.name} "
                f"--output oci:{part}"
            )
            jobs.append(CiJob(job_id(image, platform), platform, needs, tuple(script), takes, part))
    host = parse_platform("linux/amd64")  # merging and pushing run anywhere
    publish = (
        *_install(host),
        f"{CAIRN} merge {spec} {PARTS}/* --output oci:{PUBLISHED}",
        *PUBLISH_LOGIN,
        'if [ -n "$CAIRN_DESTINATION" ]; then '
        f'{CAIRN} push {spec} "$CAIRN_DESTINATION" --output oci:{PUBLISHED} '
        '${CAIRN_SIGN_KEY:+--sign-key "$CAIRN_SIGN_KEY"} $CAIRN_PUSH_OPTIONS; '
        "else echo \"cairn: no registry (CAIRN_REGISTRY, or the CI's own), so nothing is "
        f"pushed; the merged layout {PUBLISHED} is kept as this job's artifact.\"; fi",
    )
    jobs.append(CiJob("publish", host, tuple(j.id for j in jobs), publish, None, PUBLISHED))
    return tuple(jobs)
