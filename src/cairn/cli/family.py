"""The family's commands: build, plan, config, lock, refresh, push, merge."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cairn.cli.app import app
from cairn.cli.common import (
    CaFileOpt,
    FamilyDir,
    ImageOpt,
    JobsOpt,
    JsonOpt,
    OutputOpt,
    PassphraseFileOpt,
    PlainHttpOpt,
    PlatformOpt,
    RegistryRetriesOpt,
    RegistryTimeoutOpt,
    SignKeyOpt,
    TlsVerifyOpt,
    VexAdvisoriesOpt,
    _console,
    _say,
    _warn,
    registry_access,
    signing_key,
)
from cairn.output import dumps

if TYPE_CHECKING:
    from cairn.family.fragment import Builder
    from cairn.family.spec import Family


@app.command()
def build(
    family_dir: FamilyDir,
    image: Annotated[
        list[str] | None, typer.Option("--image", "-i", help="Build only this image (repeatable).")
    ] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "--platform", "-p", help="Build only for this platform, e.g. linux/arm64 (repeatable)."
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="oci:DIR or docker-archive:FILE[:REPO:TAG]; default from cairn.toml.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON on stdout.")
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Package cache; default $XDG_CACHE_HOME/cairn.", show_default=False),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Download every package afresh.")
    ] = False,
    jobs: Annotated[int, typer.Option(min=1, help="Platforms built at the same time.")] = 2,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even what is unchanged.")] = False,
    builder: Annotated[
        str, typer.Option(help="Engine for Dockerfile images: buildah or docker (BuildKit).")
    ] = "buildah",
    push: Annotated[
        str | None,
        typer.Option("--push", help="Then push every image to REGISTRY/PREFIX/NAME:TAG."),
    ] = None,
    plain_http: PlainHttpOpt = False,
    tls_verify: TlsVerifyOpt = True,
    ca_file: CaFileOpt = None,
    registry_timeout: RegistryTimeoutOpt = None,
    registry_retries: RegistryRetriesOpt = None,
    load: Annotated[
        bool, typer.Option("--load", help="Then load the images into Docker (DOCKER_HOST).")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Echo every engine command.")
    ] = False,
) -> None:
    """Build the family's images for every platform (default: all of cairn.toml).

    Images whose inputs have not changed since they were built into the layout
    are kept, not rebuilt (see cairn plan). Package versions come from
    cairn.lock when there is one.
    """
    from cairn.cachedir import default_cache_dir
    from cairn.family.build import build as run_build
    from cairn.family.jobs import BuildOptions
    from cairn.family.publish import check_destination, load_all, publish
    from cairn.family.spec import load_family
    from cairn.oci.registry import RetryPolicy
    from cairn.report.build import render_build
    from cairn.report.console import progress, setup_logging

    setup_logging(verbose)
    family = load_family(family_dir)
    opts = BuildOptions(
        images=tuple(image or ()),
        platforms=tuple(platform or ()),
        output=output,
        cache_dir=None if no_cache else (cache_dir or default_cache_dir()),
        jobs=jobs,
        force=force,
        builder=_builder(builder),
    )
    policy = RetryPolicy.from_env(registry_timeout, registry_retries)
    if push:
        check_destination(push)
    with progress(quiet=as_json) as shown:
        result = run_build(family, opts, shown)
    _warn(result.warnings)
    say = _say(as_json)
    if push:
        pushed = publish(
            family,
            opts,
            push,
            access=registry_access(plain_http, tls_verify, ca_file),
            say=say,
            policy=policy,
        )
        result.pushed.extend(pushed)
    if load:
        load_all(family, opts, say=say)
    if as_json:
        print(dumps(result))
    else:
        render_build(result, _console())


@app.command()
def plan(
    family_dir: FamilyDir,
    image: ImageOpt = None,
    platform: PlatformOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Plan to rebuild everything.")] = False,
    emit: Annotated[
        str | None,
        typer.Option(
            help="Instead, write the family for other builders: bake, github-actions or "
            "gitlab-ci (to the conventional file, or --emit-file; - for stdout)."
        ),
    ] = None,
    emit_file: Annotated[
        str | None, typer.Option(help="Where --emit writes; - for stdout.")
    ] = None,
    registry: Annotated[str, typer.Option(help="REGISTRY/PREFIX the emitted bake tags name.")] = "",
) -> None:
    """Say what cairn build would build and why, without building anything."""
    from cairn.family.jobs import BuildOptions, plan_build
    from cairn.family.lock import load_lock, lock_warnings
    from cairn.family.results import PlanResult, PlanStep
    from cairn.family.spec import load_family
    from cairn.report.build import render_plan

    family = load_family(family_dir)
    if emit is not None:
        _emit(family, emit, emit_file, registry)
        return
    opts = BuildOptions(
        images=tuple(image or ()), platforms=tuple(platform or ()), output=output, force=force
    )
    steps = plan_build(family, opts)
    jobs = tuple((s.image, s.platform) for s in steps)
    result = PlanResult(
        output or family.output,
        [PlanStep(s.image.name, s.platform.name, s.action, s.reason, s.input) for s in steps],
        lock_warnings(family, load_lock(family), jobs),
    )
    if as_json:
        print(dumps(result))
    else:
        _warn(result.warnings)
        render_plan(result, _console())


def _emit(family: Family, kind: str, target: str | None, registry: str) -> None:
    from cairn.errors import UsageError
    from cairn.family.emit import DEFAULT_FILES, EMITS, emit
    from cairn.family.pipeline import repository_root
    from cairn.oci.layout import write_atomically

    if kind not in EMITS:
        raise UsageError(
            f"--emit {kind} is not something cairn writes.", f"Try: {', '.join(EMITS)}."
        )
    if target == "-":
        sys.stdout.write(emit(family, kind, registry, Path.cwd()))
        return
    # a pipeline file belongs at its repository's root, wherever in it this runs; a bake
    # file beside cairn.toml, whose output it reads the roots from
    home = repository_root(Path.cwd()) if kind != "bake" else family.directory
    path = Path(target) if target else home / DEFAULT_FILES[kind]
    write_atomically(path, emit(family, kind, registry, path.parent).encode())
    print(f"wrote {path}")


@app.command()
def config(family_dir: FamilyDir, as_json: JsonOpt = False) -> None:
    """The family as cairn resolves it: every image (variants expanded) with its defaults
    and inherited values, and the table each value comes from."""
    from cairn.family.config import describe
    from cairn.family.spec import load_family
    from cairn.report.config import render_config

    described = describe(load_family(family_dir))
    if as_json:
        print(dumps(described))
    else:
        render_config(described, _console())


@app.command()
def lock(
    family_dir: FamilyDir,
    update: Annotated[
        bool, typer.Option("--update", help="Lock the archive's newest versions for every image.")
    ] = False,
    image: ImageOpt = None,
    platform: PlatformOpt = None,
    jobs: JobsOpt = 2,
    as_json: JsonOpt = False,
) -> None:
    """Write cairn.lock: the exact version of every package of every image and platform.

    Entries that still answer cairn.toml are kept unless --update is given.
    """
    from cairn.family.jobs import BuildOptions, plan_jobs
    from cairn.family.lock import lock_family, lock_path
    from cairn.family.spec import load_family
    from cairn.parallel import run_parallel
    from cairn.report.build import render_lock

    family = load_family(family_dir)
    opts = BuildOptions(images=tuple(image or ()), platforms=tuple(platform or ()))
    rows = lock_family(
        family,
        plan_jobs(family, opts),
        update=update,
        run=lambda tasks: run_parallel(tasks, jobs),
    )
    if as_json:
        from cairn.family.results import LockedImage, LockResult

        locked = [
            LockedImage(r.image, r.platform, r.state, r.packages, list(r.changed)) for r in rows
        ]
        print(dumps(LockResult(str(lock_path(family)), locked)))
    else:
        render_lock(rows, lock_path(family), _console())


@app.command()
def refresh(
    family_dir: FamilyDir,
    check: Annotated[
        bool,
        typer.Option("--check", help="Only report the updates; exit 1 when there are any."),
    ] = False,
    image: ImageOpt = None,
    platform: PlatformOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    jobs: JobsOpt = 2,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Package cache; default $XDG_CACHE_HOME/cairn.", show_default=False),
    ] = None,
) -> None:
    """Find installed packages that Debian has newer versions of (security and point
    releases included); without --check, lock those and rebuild the images that have them
    and their descendants."""
    from cairn.cachedir import default_cache_dir
    from cairn.family.jobs import BuildOptions
    from cairn.family.refresh import refresh as run_refresh
    from cairn.family.spec import load_family
    from cairn.report.build import render_build, render_refresh
    from cairn.report.console import progress

    family = load_family(family_dir)
    opts = BuildOptions(
        images=tuple(image or ()),
        platforms=tuple(platform or ()),
        output=output,
        cache_dir=cache_dir or default_cache_dir(),
        jobs=jobs,
    )
    with progress(quiet=as_json) as shown:
        result, built = run_refresh(family, opts, check_only=check, progress=shown)
    if as_json:
        print(dumps(result))
    else:
        render_refresh(result, _console())
        if built is not None:
            render_build(built, _console())
    if check and result.updates:
        raise typer.Exit(1)


@app.command()
def push(
    family_dir: FamilyDir,
    destination: Annotated[
        str, typer.Argument(help="REGISTRY/PREFIX: images go to REGISTRY/PREFIX/NAME:TAG.")
    ],
    image: ImageOpt = None,
    output: OutputOpt = None,
    plain_http: PlainHttpOpt = False,
    tls_verify: TlsVerifyOpt = True,
    ca_file: CaFileOpt = None,
    registry_timeout: RegistryTimeoutOpt = None,
    registry_retries: RegistryRetriesOpt = None,
    sign_key: SignKeyOpt = None,
    passphrase_file: PassphraseFileOpt = None,
    advisories: VexAdvisoriesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Push what is built (every image as its multi-arch index, digests preserved) under
    the tags cairn.toml gives, with its signatures and attestations; blobs the registry has
    are not sent again."""
    from cairn.family.jobs import BuildOptions
    from cairn.family.publish import publish
    from cairn.family.spec import load_family
    from cairn.oci.registry import RetryPolicy

    opts = BuildOptions(images=tuple(image or ()), output=output)
    policy = RetryPolicy.from_env(registry_timeout, registry_retries)
    if advisories and sign_key is None:
        from cairn.errors import UsageError

        raise UsageError(
            "--advisories makes signed OpenVEX statements, and no --sign-key was given.",
            "Try: --sign-key KEY with --advisories, or leave --advisories out.",
        )
    if sign_key is not None:
        from cairn.trust.operations import push_signed

        key = signing_key(sign_key, passphrase_file)
        pushed = push_signed(
            family_dir,
            opts,
            destination,
            key,
            access=registry_access(plain_http, tls_verify, ca_file),
            say=_say(as_json),
            policy=policy,
            advisories=tuple(advisories or ()),
        )
    else:
        pushed = publish(
            load_family(family_dir),
            opts,
            destination,
            access=registry_access(plain_http, tls_verify, ca_file),
            say=_say(as_json),
            policy=policy,
        )
    if as_json:
        from cairn.family.results import PushResult

        print(dumps(PushResult(pushed)))


@app.command()
def login(
    registry: Annotated[
        str,
        typer.Argument(
            help="REGISTRY[:PORT], or REGISTRY/NAMESPACE for credentials of that namespace only.",
            show_default=False,
        ),
    ],
    username: Annotated[
        str, typer.Option("--username", "-u", help="The account's name.", show_default=False)
    ],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password (or token) from standard input: the only way it is taken.",
        ),
    ] = False,
    authfile: Annotated[
        Path | None,
        typer.Option(
            "--authfile",
            help="Keep the credentials here (default: $REGISTRY_AUTH_FILE, else "
            "$XDG_RUNTIME_DIR/containers/auth.json, else /run/containers/$UID/auth.json).",
            show_default=False,
        ),
    ] = None,
    plain_http: PlainHttpOpt = False,
    tls_verify: TlsVerifyOpt = True,
    ca_file: CaFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check credentials against a registry, then keep them where skopeo, podman and every
    part of cairn read them (containers-auth.json). For CI jobs:
    printf %s "$CI_REGISTRY_PASSWORD" | cairn login "$CI_REGISTRY" -u "$CI_REGISTRY_USER"
    --password-stdin."""
    import sys

    from cairn.errors import UsageError
    from cairn.oci.login import login as run
    from cairn.oci.login import read_password

    if not password_stdin:
        raise UsageError(
            "cairn login takes the password from standard input only (a command line is "
            "seen by every user of the machine and kept in shell histories).",
            'Try: printf %s "$PASSWORD" | cairn login REGISTRY -u USER --password-stdin',
        )
    result = run(
        registry,
        username,
        read_password(sys.stdin),
        access=registry_access(plain_http, tls_verify, ca_file),
        authfile=authfile,
    )
    if as_json:
        print(dumps(result))
    else:
        print(f"Login succeeded: {result.username} at {result.registry}, kept in {result.authfile}")


@app.command()
def merge(
    family_dir: FamilyDir,
    layouts: Annotated[
        list[Path],
        typer.Argument(help="OCI layout directories, e.g. one per platform.", show_default=False),
    ],
    output: OutputOpt = None,
) -> None:
    """Join layouts built apart (one per platform, say) into one: each image becomes one
    multi-platform index. Blobs are copied and their digests checked."""
    from cairn.family.merge import merge_layouts
    from cairn.family.spec import load_family

    family = load_family(family_dir)
    merged = merge_layouts(family, layouts, output)
    for m in merged:
        print(f"{m.name}: {', '.join(m.platforms)} {m.digest}")
    _warn(
        [
            f"{m.name} has no {', '.join(m.missing)} image in these layouts."
            for m in merged
            if m.missing
        ]
    )


def _builder(value: str) -> Builder:
    from cairn.errors import UsageError
    from cairn.family.fragment import BUILDERS

    if value not in BUILDERS:
        raise UsageError(
            f"--builder {value} is not an engine cairn drives.", "Try: buildah or docker."
        )
    return value
