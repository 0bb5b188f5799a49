"""The cairn command line: parses, calls an operation, renders its result. Nothing else."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import typer.core

from cairn import __version__
from cairn.errors import CairnError, Interrupted
from cairn.output import dumps, to_json

if TYPE_CHECKING:
    from rich.console import Console

    from cairn.family.fragment import Builder
    from cairn.family.spec import Family
    from cairn.measure.gate import Condition
    from cairn.platforms import Platform

_stopped_by: list[int] = []  # the signal that stopped cairn, once one has


def _stop(signum: int, frame: object) -> None:
    """SIGTERM (like SIGINT) unwinds cairn: every engine is stopped and nothing half-written."""
    _stopped_by.append(signum)
    raise KeyboardInterrupt


class _Commands(typer.core.TyperGroup):
    """Every command: Ctrl-C or SIGTERM ends its engines and exits with one line."""

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            from cairn import engines

            engines.interrupt_all()
            signum = _stopped_by[0] if _stopped_by else signal.SIGINT
            what = "stopped by SIGTERM" if signum == signal.SIGTERM else "interrupted"
            stopped = Interrupted(f"cairn was {what}: its engines are stopped, nothing is written.")
            stopped.exit_code = 128 + signum
            raise stopped from None


app = typer.Typer(
    cls=_Commands,
    name="cairn",
    help="Build, measure and check a family of slim Debian container images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

FamilyDir = Annotated[
    Path,
    typer.Argument(help="Directory holding cairn.toml (or the file itself).", show_default=False),
]


ImageOpt = Annotated[
    list[str] | None, typer.Option("--image", "-i", help="Only this image (repeatable).")
]
PlatformOpt = Annotated[
    list[str] | None,
    typer.Option("--platform", "-p", help="Only this platform, e.g. linux/arm64 (repeatable)."),
]
OutputOpt = Annotated[
    str | None, typer.Option("--output", "-o", help="The oci:DIR store; default from cairn.toml.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
JobsOpt = Annotated[int, typer.Option(min=1, help="Platforms (or resolutions) run at once.")]
InsecureOpt = Annotated[
    bool, typer.Option("--insecure", help="Allow a plain-HTTP registry (e.g. on 127.0.0.1).")
]
RegistryTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--registry-timeout",
        help="Seconds a registry operation may go without sending or receiving a byte "
        "before it ends (default 180, or $CAIRN_REGISTRY_TIMEOUT).",
        show_default=False,
    ),
]
RegistryRetriesOpt = Annotated[
    int | None,
    typer.Option(
        "--registry-retries",
        help="Retries of a transient registry failure, with exponential back-off "
        "(default 3, or $CAIRN_REGISTRY_RETRIES).",
        show_default=False,
    ),
]

ImageArg = Annotated[
    str,
    typer.Argument(
        help="oci:DIR[:NAME], docker-archive:FILE, docker://REGISTRY/REPO:TAG, "
        "docker-daemon:REPO:TAG or dir:ROOTFS.",
        show_default=False,
    ),
]
OnePlatformOpt = Annotated[
    str | None,
    typer.Option(
        "--platform", "-p", help="Which platform of a multi-arch image (default: this host's)."
    ),
]
FailOnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--fail-on",
        help="Exit 1 when this holds, e.g. 'size>150MB', 'wasted>5MB', 'efficiency<95%', "
        "'packages>200', 'category:docs>1MB', 'findings>0' (repeatable).",
    ),
]
ScanFailOnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--fail-on",
        help="Exit 1 when this holds: 'actionable>0' counts the findings a newer Debian "
        "version fixes.",
    ),
]
HtmlOpt = Annotated[
    Path | None, typer.Option("--html", help="Also write a self-contained HTML report here.")
]
CategoriesOpt = Annotated[
    Path | None,
    typer.Option(
        "--categories",
        help="A TOML file of category rules (the format of cairn's categories.toml), "
        "tried before the built-in ones.",
    ),
]


def _platform(value: str | None) -> Platform | None:
    from cairn.platforms import parse_platform

    return parse_platform(value) if value else None


def _console(stderr: bool = False, highlight: bool = True) -> Console:
    """rich's Console, imported when first used: a command that prints JSON never pays for
    it."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=highlight)


def _warn(warnings: list[str]) -> None:
    err = _console(stderr=True, highlight=False)
    for w in warnings:
        err.print(f"[yellow]warning:[/yellow] {w}", soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        print(f"cairn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    pass


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
    insecure: InsecureOpt = False,
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
    from cairn.family.build import BuildOptions, load_all, publish
    from cairn.family.build import build as run_build
    from cairn.family.publish import check_destination
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
        pushed = publish(family, opts, push, insecure=insecure, say=say, policy=policy)
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
    from cairn.family.build import BuildOptions
    from cairn.family.build import plan as make_plan
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
    steps = make_plan(family, opts)
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
    from cairn.oci.layout import write_atomically

    if kind not in EMITS:
        raise UsageError(
            f"--emit {kind} is not something cairn writes.", f"Try: {', '.join(EMITS)}."
        )
    text = emit(family, kind, registry)
    if target == "-":
        sys.stdout.write(text)
        return
    path = Path(target or DEFAULT_FILES[kind])
    write_atomically(path, text.encode())
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
) -> None:
    """Write cairn.lock: the exact version of every package of every image and platform.

    Entries that still answer cairn.toml are kept unless --update is given.
    """
    from cairn.family.build import BuildOptions, plan_jobs, run_parallel
    from cairn.family.lock import lock_family, lock_path
    from cairn.family.spec import load_family
    from cairn.report.build import render_lock

    family = load_family(family_dir)
    opts = BuildOptions(images=tuple(image or ()), platforms=tuple(platform or ()))
    rows = lock_family(
        family,
        plan_jobs(family, opts),
        update=update,
        run=lambda tasks: run_parallel(tasks, jobs),
    )
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
    from cairn.family.build import BuildOptions
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
    insecure: InsecureOpt = False,
    registry_timeout: RegistryTimeoutOpt = None,
    registry_retries: RegistryRetriesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Push what is built (every image as its multi-arch index, digests preserved) under
    the tags cairn.toml gives; blobs the registry has are not sent again."""
    from cairn.family.build import BuildOptions, publish
    from cairn.family.spec import load_family
    from cairn.oci.registry import RetryPolicy

    family = load_family(family_dir)
    opts = BuildOptions(images=tuple(image or ()), output=output)
    policy = RetryPolicy.from_env(registry_timeout, registry_retries)
    pushed = publish(family, opts, destination, insecure=insecure, say=_say(as_json), policy=policy)
    if as_json:
        from cairn.family.results import PushResult

        print(dumps(PushResult(pushed)))


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


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="The project directory (created if missing).", show_default=False)
    ],
    lang: Annotated[str, typer.Option("--lang", help="go, python, node or java.")],
    family: Annotated[
        str,
        typer.Option(help="A family directory (holding cairn.toml) or a registry prefix."),
    ],
    services: Annotated[
        str, typer.Option(help="Services the dev container starts, e.g. redis,kafka.")
    ] = "",
    registry: Annotated[
        str | None,
        typer.Option(
            help="REGISTRY/PREFIX the family is pushed to (with a family directory); "
            "default localhost:5000/FAMILY-DIR-NAME.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace files an earlier init (or you) wrote.")
    ] = False,
) -> None:
    """Write a project's Dockerfile, .dockerignore, justfile, dev container and README
    section on the family's images (and a hello-world program in an empty directory)."""
    from cairn.scaffold.init import init_project

    result = init_project(
        directory, lang, family, services=services, registry=registry, force=force
    )
    _warn(list(result.warnings))
    for name in result.written:
        print(f"{'replaced' if name in result.overwritten else 'wrote'} {directory / name}")


@app.command()
def doctor(
    directory: Annotated[Path, typer.Argument(help="The project directory.", show_default=False)],
    family: Annotated[
        str | None,
        typer.Option(
            help="REGISTRY/PREFIX of the family's images (default: the Dockerfile's ARG FAMILY).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a project against the conventions cairn init writes: a multi-stage Dockerfile
    on pinned family images, the justfile's recipes, a multi-arch push, a dev container with
    the project's services, hadolint. Exit 1 when an error-level rule fails."""
    from cairn.report.doctor import render_doctor
    from cairn.scaffold.doctor import doctor as run_doctor

    report = run_doctor(directory, family)
    if as_json:
        print(dumps(report))
    else:
        render_doctor(report, _console())
    if report.errors:
        raise typer.Exit(1)


@app.command()
def compat(
    source: Annotated[
        str,
        typer.Argument(
            help="A file, a directory, a wheel, or an image (oci:, docker-archive:, docker://, "
            "docker-daemon:, dir:).",
            show_default=False,
        ),
    ],
    target: Annotated[
        str, typer.Option(help="The image (or dir:ROOTFS) the source should run on.")
    ],
    platform: OnePlatformOpt = None,
    as_json: JsonOpt = False,
    fail_on: Annotated[
        str | None,
        typer.Option(help="Exit 1 when an object is will-not-load (or risky, or worse)."),
    ] = None,
    show_ok: Annotated[
        bool, typer.Option("--show-ok", help="List the objects that are ok too.")
    ] = False,
) -> None:
    """Will it run there? Every ELF object of SOURCE resolved against TARGET's loader,
    libraries, symbol versions (glibc) or symbols (musl), without running anything."""
    from cairn.compat.scan import compat as run_compat
    from cairn.errors import UsageError
    from cairn.report.compat import render_compat

    if fail_on not in (None, "will-not-load", "risky"):
        raise UsageError(f"--fail-on {fail_on} is not a verdict.", "Try: will-not-load or risky.")
    result = run_compat(source, target, _platform(platform))
    if as_json:
        print(dumps(result))
    else:
        render_compat(result, _console(), show_ok=show_ok)
    worst = {"will-not-load": result.summary.will_not_load}
    worst["risky"] = result.summary.will_not_load + result.summary.risky
    if fail_on is not None and worst[fail_on]:
        raise typer.Exit(1)


@app.command()
def dns(
    name: Annotated[str, typer.Argument(help="The name a program looks up.", show_default=False)],
    hosts: Annotated[Path, typer.Option(help="The hosts file (/etc/hosts).")] = Path("/etc/hosts"),
    resolv: Annotated[Path, typer.Option(help="resolv.conf.")] = Path("/etc/resolv.conf"),
    nsswitch: Annotated[
        Path | None,
        typer.Option(help="nsswitch.conf for glibc (default: none, glibc's built-in order)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The steps getaddrinfo(NAME) takes on glibc and on musl (per version where musl
    changed), given hosts, resolv.conf and nsswitch.conf, and the pitfalls between them."""
    from cairn.compat.dns import resolutions
    from cairn.errors import UsageError
    from cairn.report.dns import render_dns

    texts = {}
    for label, path in (("hosts", hosts), ("resolv", resolv), ("nsswitch", nsswitch)):
        if path is None:
            continue
        try:
            texts[label] = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise UsageError(f"Reading --{label} {path} failed: {e.strerror}.") from None
    report = resolutions(name, texts["hosts"], texts["resolv"], texts.get("nsswitch"))
    if as_json:
        print(dumps(report))
    else:
        render_dns(report, _console())


def _gate(
    conditions: list[str] | None, allowed: tuple[str, ...], categories: Path | None = None
) -> list[Condition]:
    from cairn.measure.gate import parse_condition

    names: list[str] = []
    if any(c.strip().startswith("category:") for c in conditions or []):
        from cairn.measure.categories import Classifier, load_categories

        names = Classifier(load_categories(categories)).names
    return [parse_condition(c, allowed, names) for c in conditions or []]


def _judge(conditions: list[Condition], measured: dict[str, object]) -> list[str]:
    """The conditions that hold; before anything is printed, so that a condition the
    result cannot answer is a usage error, not half an output."""
    from cairn.measure.gate import check

    return check(conditions, measured)


def _enforce(failed: list[str]) -> None:
    if failed:
        err = _console(stderr=True, highlight=False)
        for message in failed:
            err.print(f"failed: {message}", markup=False, soft_wrap=True)
        raise typer.Exit(1)


def _write_text(path: Path, text: str) -> None:
    from cairn.oci.layout import write_atomically

    write_atomically(path, text.encode())


@app.command()
def analyze(
    image: ImageArg,
    platform: OnePlatformOpt = None,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
    categories: CategoriesOpt = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Where an image's bytes go: layers and waste (dive's figures and the corrected ones),
    size by category and by package, OS, libc, findings and what slimming would save.
    Layers are read as streams; nothing is extracted."""
    from cairn.measure.commands import analyze_image
    from cairn.measure.gate import ANALYSIS_METRICS

    conditions = _gate(fail_on, ANALYSIS_METRICS, categories)
    result = analyze_image(image, _platform(platform), categories)
    measured = to_json(result)
    failed = _judge(conditions, measured)
    if html is not None:
        from cairn.report.html import analysis_html

        _write_text(html, analysis_html(measured))
    if as_json:
        print(dumps(result))
    else:
        from cairn.report.measure import render_analysis

        render_analysis(measured, _console())
    _enforce(failed)


@app.command()
def compare(
    images: Annotated[list[str], typer.Argument(help="Two or more images.", show_default=False)],
    platform: OnePlatformOpt = None,
    as_json: JsonOpt = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the table as Markdown.")
    ] = False,
    html: HtmlOpt = None,
    categories: CategoriesOpt = None,
) -> None:
    """Images side by side, each row a measured figure: size, compressed size, packages,
    libc, package manager, shell, category sizes, findings."""
    from cairn.measure.commands import analyze_image
    from cairn.measure.results import Comparison, ComparisonRow
    from cairn.report.html import comparison_html
    from cairn.report.measure import comparison_markdown, comparison_rows, render_comparison

    results = [analyze_image(i, _platform(platform), categories) for i in images]
    analyses = [to_json(a) for a in results]
    rows = comparison_rows(analyses)
    names = [a["image"] for a in analyses]
    if html is not None:
        _write_text(html, comparison_html(rows, analyses))
    if as_json:
        print(dumps(Comparison(results, [ComparisonRow(r["metric"], r["values"]) for r in rows])))
    elif markdown:
        print(comparison_markdown(rows, names), end="")
    else:
        render_comparison(rows, names, _console())


@app.command()
def sbom(
    image: ImageArg,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="spdx-json (SPDX 2.3) or cyclonedx-json (1.5).")
    ] = "spdx-json",
    platform: OnePlatformOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """The image's packages as an SBOM, with package URLs and the licenses their copyright
    files state."""
    from cairn.errors import UsageError
    from cairn.measure.commands import sbom_document
    from cairn.measure.sbom import FORMATS

    if fmt not in FORMATS:
        raise UsageError(
            f"--format {fmt} is not an SBOM format cairn writes.",
            "Try: " + " or ".join(FORMATS) + ".",
        )
    text = json.dumps(sbom_document(image, _platform(platform), fmt), indent=2) + "\n"
    if output is None:
        print(text, end="")
    else:
        _write_text(output, text)


@app.command()
def scan(
    image: ImageArg,
    advisories: Annotated[
        list[str],
        typer.Option(
            "--advisories",
            "-a",
            help="Debian security tracker JSON or OSV records: a file, a directory or a URL "
            "(repeatable).",
        ),
    ],
    platform: OnePlatformOpt = None,
    as_json: JsonOpt = False,
    fail_on: ScanFailOnOpt = None,
) -> None:
    """Installed packages against advisories, each finding sorted into fixed (a newer Debian
    version fixes it), not-fixed, or wont-fix (unimportant, ignored)."""
    from cairn.measure.commands import scan_image
    from cairn.measure.gate import SCAN_METRICS
    from cairn.report.measure import render_scan

    conditions = _gate(fail_on, SCAN_METRICS)
    result = scan_image(image, _platform(platform), advisories)
    measured = to_json(result)
    failed = _judge(conditions, measured)
    if as_json:
        print(dumps(result))
    else:
        render_scan(measured, _console())
    _enforce(failed)


def _say(quiet: bool) -> Callable[[str], None]:
    err = _console(stderr=True, highlight=False)
    return (lambda text: None) if quiet else (lambda text: err.print(text, markup=False))


def _builder(value: str) -> Builder:
    from cairn.errors import UsageError
    from cairn.family.fragment import BUILDERS

    if value not in BUILDERS:
        raise UsageError(
            f"--builder {value} is not an engine cairn drives.", "Try: buildah or docker."
        )
    return value


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    try:
        app()
    except CairnError as e:
        err = _console(stderr=True, highlight=False)
        err.print(f"[bold red]error:[/bold red] {e.message}", markup=True, soft_wrap=True)
        if e.hint:
            err.print(e.hint, soft_wrap=True, markup=False)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(Interrupted.exit_code)
