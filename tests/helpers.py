"""Small real images made by the tests themselves (no engine needed)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from cairn.oci.image import (
    Descriptor,
    LayerInfo,
    RunConfig,
    image_config,
    image_index,
    image_manifest,
)
from cairn.oci.layer import compress_layer
from cairn.oci.layout import OciLayout, Staging
from cairn.platforms import parse_platform

# The recipes every project cairn init writes must have.
PROJECT_RECIPES = (
    "default",
    "setup",
    "fmt",
    "lint",
    "test",
    "build",
    "docker-build",
    "docker-push",
    "docker-lint",
    "clean",
)


def tiny_image(
    stage: Staging,
    name: str,
    content: bytes,
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"),
) -> Descriptor:
    """Stage a one-file image index for `platforms` and name it `name`."""
    tar = stage.work / f"{name}-{hashlib.sha256(content).hexdigest()[:8]}.tar"
    with tarfile.open(tar, "w") as tf:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        tf.addfile(info, io.BytesIO(content))
    layer = compress_layer(tar, tar.with_suffix(".gz"))
    stage.adopt(layer.path, layer.digest)
    info_ = LayerInfo(layer.digest, layer.size, layer.diff_id, layer.uncompressed_size, "test")
    manifests = []
    for p in platforms:
        plat = parse_platform(p)
        config = stage.add(image_config(plat, (info_,), 0, RunConfig(cmd=("cat", "/hello.txt"))))
        manifests.append(stage.add(image_manifest(plat, config, (info_,), ())))
    index = stage.add(image_index(tuple(manifests), (("org.opencontainers.image.title", name),)))
    stage.set_ref(name, index)
    return index


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (and beside it, where staging lives) with its bytes."""
    return {
        str(p.relative_to(root.parent)): p.read_bytes()
        for p in sorted(root.parent.rglob("*"))
        if p.is_file()
    }


def layout_with(root: Path, **images: bytes) -> OciLayout:
    layout = OciLayout(root)
    with layout.staging() as stage:
        for name, content in images.items():
            tiny_image(stage, name, content)
    return layout


def with_ctrl_c(cmd: list[str]) -> list[str]:
    """`cmd`, started so that it takes Ctrl-C (SIGINT) as a foreground program does, even
    when the tests run as a background job: a shell starts those with SIGINT ignored, an
    ignored signal stays ignored across exec, and Python then raises no KeyboardInterrupt."""
    launch = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execvp(sys.argv[1], sys.argv[1:])"
    )
    return [sys.executable, "-c", launch, *cmd]


@contextlib.contextmanager
def http_server(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` serving on 127.0.0.1 (a thread a request) for the block: its HOST:PORT."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
