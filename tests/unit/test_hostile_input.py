"""Input made by an attacker, at the air gap: bundles, part lists and layouts that are
built to write without bound, to recurse, to block, to read through a link, or to print
escape sequences. Every one is refused with a named reason, before anything unsigned
is written (past a small cap) and never with a traceback; a property-based test feeds
damaged bundles to the reader and checks the same."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hypothesis.strategies as st
import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings

from cairn.errors import CairnError, ImageContentError, StoreError, UsageError
from cairn.oci.access import Access
from cairn.oci.attachments import fetch
from cairn.oci.distribution import Registry
from cairn.oci.image import Descriptor
from cairn.oci.layout import OciLayout
from cairn.oci.registry import RetryPolicy
from cairn.scratch import remove_tree, tree_bytes
from cairn.trust import bundle as bundle_format
from cairn.trust import keys, ustar
from cairn.trust.bundle import BundledImage, open_parts, read_bundle, write_bundle
from cairn.trust.delivery import _written
from cairn.trust.signing import sign_images
from cairn.trust.verify import first_failure, verify_image
from cairn.untrusted import json_document, printable
from tests.helpers import http_server, layout_with

KEY = keys.SigningKey(ec.generate_private_key(ec.SECP256R1()), "team")
OTHER = keys.SigningKey(ec.generate_private_key(ec.SECP256R1()), "other")
CAP = 1 << 20  # what may be written before the signature holds: nothing, here


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> OciLayout:
    layout = layout_with(tmp_path_factory.mktemp("store") / "oci", base=b"hello " * 100)
    sign_images(layout, [("base", "team.example/qapm/base", ("13",))], KEY)
    return layout


@pytest.fixture(scope="module")
def good(store: OciLayout) -> bytes:
    out = io.BytesIO()
    image = BundledImage("base", store.refs()["base"].digest, ("13",))
    write_bundle(store, [image], KEY, out)
    return out.getvalue()


def unzstd(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()


def members(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(unzstd(data)), mode="r") as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]


def header(name: bytes, size: int, kind: bytes = b"0", magic: bytes = b"ustar\x0000") -> bytes:
    """One raw tar header, checksum and all: what an attacker writes by hand."""
    h = bytearray(512)
    h[0 : len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = h[116:124] = b"0000000\0"
    h[124:136] = f"{size:011o}\0".encode()
    h[136:148] = b"00000000000\0"
    h[156:157] = kind
    h[257:265] = magic
    h[148:156] = b" " * 8
    h[148:156] = f"{sum(h):06o}\0 ".encode()
    return bytes(h)


def zstd(raw: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(raw)


def pack(entries: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            tar.addfile(bundle_format._member(name, len(data)), io.BytesIO(data))
    return zstd(raw.getvalue())


def resigned(entries: list[tuple[str, bytes]], manifest: dict[str, object]) -> bytes:
    """`entries` with the manifest replaced by `manifest`, signed by the team's key."""
    data = json.dumps(manifest).encode()
    signature = base64.b64encode(KEY.sign(data))
    swap = {bundle_format.MANIFEST: data, bundle_format.SIGNATURE: signature}
    return pack([(n, swap.get(n, d)) for n, d in entries])


def refused(data: bytes, into: Path) -> CairnError:
    into.mkdir(parents=True, exist_ok=True)
    with pytest.raises(CairnError) as caught:
        read_bundle(io.BytesIO(data), KEY.public, into)
    assert tree_bytes(into) <= CAP, "unsigned bytes were written"
    return caught.value


# -- each attack, made by a generator ---------------------------------------------------
def sparse_member() -> bytes:
    """83 bytes that GNU tar (and Python's tarfile) expand into a 20 GiB regular file."""
    raw = header(b"blobs/sha256/" + b"0" * 64, 0, kind=b"S", magic=b"ustar  \0")
    return zstd(raw + b"\0" * 1024)


def zeros_first() -> bytes:
    """A gigabyte of zeros, a few hundred bytes compressed, in front of everything."""
    return zstd(header(b"zeros", 1 << 30) + b"\0" * 4096)


def staircase() -> bytes:
    """Directories 1,800 deep."""
    raw = b"".join(header(b"a/" * min(n, 49), 0, kind=b"5") for n in range(1, 1800))
    return zstd(raw + b"\0" * 1024)


def long_name_record() -> bytes:
    """A GNU long-name record that says it is 512 MiB long."""
    return zstd(header(b"././@LongLink", 512 << 20, kind=b"L", magic=b"ustar  \0") + b"x" * 512)


def pax_record() -> bytes:
    return zstd(header(b"PaxHeaders/x", 512 << 20, kind=b"x") + b"x" * 512)


def many_members() -> bytes:
    raw = b"".join(header(f"m{n}".encode(), 1) + b"x" + b"\0" * 511 for n in range(200_000))
    return zstd(raw + b"\0" * 1024)


ATTACKS: dict[str, tuple[Callable[[], bytes], str]] = {
    "a GNU sparse member": (sparse_member, "not a POSIX ustar archive"),
    "a gigabyte of zeros first": (zeros_first, "where cairn-bundle.json belongs"),
    "a staircase of directories": (staircase, "regular files only"),
    "a 512 MiB long-name record": (long_name_record, "not a POSIX ustar archive"),
    "a 512 MiB PAX record": (pax_record, "regular files only"),
    "200,000 one-byte members": (many_members, "where cairn-bundle.json belongs"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_an_unsigned_bundle_is_refused_at_its_first_header(tmp_path: Path, attack: str) -> None:
    make, reason = ATTACKS[attack]
    error = refused(make(), tmp_path / "into")
    assert reason in str(error), str(error)
    assert error.exit_code == 7


def test_the_signed_head_decides_before_any_file(good: bytes, tmp_path: Path) -> None:
    entries = members(good)
    manifest = json.loads(dict(entries)[bundle_format.MANIFEST])
    blob = next(n for n, _ in entries if n.startswith("blobs/"))
    # a member whose header says more than its signed size: refused at the header
    grown = [(n, d + b"x" * 100 if n == blob else d) for n, d in entries]
    error = refused(pack(grown), tmp_path / "a")
    assert f"{blob} is" in str(error) and "signed size" in str(error)
    # an unlisted member, named to rewrite the screen: refused, its name escaped
    evil = "\x1b[2J\x1b[31mowned"
    error = refused(pack([*entries[:3], (evil, b"x"), *entries[3:]]), tmp_path / "b")
    assert "\\x1b[2J" in str(error) and "\x1b" not in str(error)
    # the signature of another key: nothing taken
    signature = base64.b64encode(OTHER.sign(dict(entries)[bundle_format.MANIFEST]))
    other = [(n, signature if n == bundle_format.SIGNATURE else d) for n, d in entries]
    assert "not signed by the key" in str(refused(pack(other), tmp_path / "c"))
    # signed, but nested 100,000 deep: a refusal, not a RecursionError
    deep = pack([(bundle_format.MANIFEST, b"[" * 100_000 + b"]" * 100_000), *entries[1:]])
    assert "not signed" in str(refused(deep, tmp_path / "d"))
    data = b"[" * 100_000 + b"]" * 100_000
    signature = base64.b64encode(KEY.sign(data))
    nested = pack([(bundle_format.MANIFEST, data), (bundle_format.SIGNATURE, signature),
                   *entries[2:]])  # fmt: skip
    assert "is damaged" in str(refused(nested, tmp_path / "e"))
    # sizes that do not add up, and more room than the disk has
    manifest["sizes"] = {**manifest["sizes"], blob: 1 << 45}
    error = refused(resigned(entries, manifest), tmp_path / "f")
    assert isinstance(error, StoreError) and "free" in str(error)


def test_a_good_bundle_is_taken_whole(good: bytes, tmp_path: Path, store: OciLayout) -> None:
    opened = read_bundle(io.BytesIO(good), KEY.public, tmp_path)
    assert [i.name for i in opened.images] == ["base"]
    assert opened.layout.refs()["base"].digest == store.refs()["base"].digest
    checks = verify_image(opened.layout, "base", KEY.public)
    assert all(c.ok for c in checks if c.check in ("signature", "blobs", "digest"))


def test_documents_come_first_and_layers_one_by_one(
    good: bytes, tmp_path: Path, store: OciLayout
) -> None:
    """A bundle holds its documents before its image layers, in the order its checksum
    list signs; unbundle checks the documents, then takes one layer at a time. A bundle
    whose members come in another order is refused."""
    entries = members(good)
    manifest = json.loads(dict(entries)[bundle_format.MANIFEST])
    files = [n for n, _ in entries[3:]]
    layers = {
        "blobs/sha256/" + layer["digest"].partition(":")[2]
        for m in store.platform_manifests("base")
        for layer in store.read_json(m.digest)["layers"]
    }
    count = manifest["documents"]
    assert layers and set(files[count:]) == layers and not layers & set(files[:count])
    assert files == [
        line.split("  ")[1] for line in dict(entries)["SHA256SUMS"].decode().splitlines()
    ]
    first_layer = files[count]
    moved = [*entries[:3], *(e for e in entries[3:] if e[0] == first_layer),
             *(e for e in entries[3:] if e[0] != first_layer)]  # fmt: skip
    assert "out of the order" in str(refused(pack(moved), tmp_path / "a"))
    into = tmp_path / "b"
    into.mkdir()
    reader = bundle_format.BundleReader(io.BytesIO(good), KEY.public, into)
    opened = reader.documents()
    assert opened.layout.refs()["base"].digest == store.refs()["base"].digest
    assert not any((into / name).exists() for name in layers)  # documents only, so far
    taken = {digest: b"".join(chunks) for digest, _, chunks in reader.layers()}
    assert {d.partition(":")[2] for d in taken} == {n.rsplit("/", 1)[1] for n in layers}
    assert all(hashlib.sha256(data).hexdigest() == d[7:] for d, data in taken.items())
    # a layer whose bytes are not the signed ones: its stream raises as it ends
    flipped = [(n, d[:-1] + bytes([d[-1] ^ 1]) if n == first_layer else d) for n, d in entries]
    reader = bundle_format.BundleReader(io.BytesIO(pack(flipped)), KEY.public, tmp_path / "c")
    (tmp_path / "c").mkdir()
    reader.documents()
    with pytest.raises(CairnError, match="does not match its checksum"):
        for _, _, chunks in reader.layers():
            b"".join(chunks)


def test_a_bundle_of_format_2_is_read_whole(good: bytes, tmp_path: Path) -> None:
    """Format 2 signed no count of documents: every file is taken into scratch, as then."""
    entries = members(good)
    manifest = json.loads(dict(entries)[bundle_format.MANIFEST])
    manifest["bundle_version"] = 2
    del manifest["documents"]
    opened = read_bundle(io.BytesIO(resigned(entries, manifest)), KEY.public, tmp_path)
    assert not opened.layers_apart
    assert all((tmp_path / name).is_file() for name, _ in entries[3:])


def test_part_lists_are_read_within_bounds(tmp_path: Path) -> None:
    for name, doc in {
        "empty-name": {"parts": [{"name": "", "size": 1, "sha256": "0" * 64}]},
        "path": {"parts": [{"name": "../x", "size": 1, "sha256": "0" * 64}]},
        "deep": json.loads("[" * 50 + "]" * 50),
    }.items():
        index = tmp_path / f"{name}.tar.zst.parts"
        index.write_text(json.dumps(doc))
        with pytest.raises(CairnError) as caught, open_parts(index):
            pass
        assert caught.value.exit_code == 7, caught.value
    huge = tmp_path / "huge.tar.zst.parts"
    huge.write_bytes(b"[" * (1 << 21))
    with pytest.raises(CairnError, match="damaged"), open_parts(huge):
        pass


def test_layouts_are_read_without_following_links(tmp_path: Path, store: OciLayout) -> None:
    copy = tmp_path / "oci"
    os.system(f"cp -a {store.root} {copy}")
    layout = OciLayout(copy)
    manifest = layout.platform_manifests("base")[0]
    layer = layout.read_json(manifest.digest)["layers"][0]["digest"]
    path = layout.blob_path(layer)
    # a layer replaced by 16 bytes: found by its hash
    path.write_bytes(b"0123456789abcdef")
    failed = first_failure(verify_image(layout, "base", KEY.public))
    assert failed is not None and failed.check == "blobs", failed
    # a link to /dev/zero, and a FIFO: refused at once, not read for ever
    for make in (lambda p: p.symlink_to("/dev/zero"), os.mkfifo):
        path.unlink()
        make(path)
        with pytest.raises(ImageContentError):
            layout.check_blob(layer)
        failed = first_failure(verify_image(layout, "base", KEY.public))
        assert failed is not None and failed.check == "blobs"
    # an index blob missing, a directory, no JSON: failed checks, no traceback
    index_blob = layout.blob_path(layout.refs()["base"].digest)
    for damage in ("missing", "directory", "text"):
        if index_blob.is_dir():
            index_blob.rmdir()
        index_blob.unlink(missing_ok=True)
        if damage == "directory":
            index_blob.mkdir()
        elif damage == "text":
            index_blob.write_text("not json")
        checks = verify_image(layout, "base", KEY.public)
        assert not all(c.ok for c in checks)


def test_bundle_output_goes_through_no_planted_link(tmp_path: Path, store: OciLayout) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root's own")
    out = tmp_path / "out.tar.zst"
    for pid in range(os.getpid() - 5, os.getpid() + 5):  # the old, predictable names
        (tmp_path / f".{out.name}.cairn-{pid}").symlink_to(secret)
    with _written(out) as f:
        f.write(b"bundle bytes")
    assert secret.read_text() == "root's own"
    assert out.read_bytes() == b"bundle bytes" and not out.is_symlink()


def test_scratch_removal_does_not_recurse(tmp_path: Path) -> None:
    deep = tmp_path / "stair"
    deep.mkdir()
    here = os.open(deep, os.O_RDONLY)
    for _ in range(3000):  # deeper than PATH_MAX and the recursion limit
        os.mkdir("d", dir_fd=here)
        nxt = os.open("d", os.O_RDONLY, dir_fd=here)
        os.close(here)
        here = nxt
    os.close(here)
    remove_tree(deep)
    assert not deep.exists()


def test_untrusted_json_and_text() -> None:
    for depth in (100, 10_000):  # within the parser's recursion, and past it
        with pytest.raises(ValueError, match="deeper"):
            json_document(b"[" * depth + b"]" * depth, "x")
    # escaped quotes by the megabyte: refused in linear time, not hours
    start = time.monotonic()
    with pytest.raises(ValueError, match="not JSON"):
        json_document(b'"' + b'\\"' * (1 << 20), "x")
    assert time.monotonic() - start < 2
    with pytest.raises(ValueError, match="larger"):
        json_document(b"[" + b"1," * (3 << 20) + b"1]", "x")
    assert printable("a\x1b]0;title\x07b\u202e") == "a\\x1b]0;title\\x07b\\u202e"


def test_strict_ustar_refuses_what_a_bundle_never_holds() -> None:
    assert ustar.parse_header(b"\0" * 512) is None
    good = header(b"blobs/sha256/" + b"a" * 64, 5)
    assert ustar.parse_header(good) == ustar.Member("blobs/sha256/" + "a" * 64, 5)
    damaged = good[:10] + b"X" + good[11:]
    with pytest.raises(ustar.Refused, match="checksum"):
        ustar.parse_header(damaged)
    for kind in (b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"g", b"x", b"L", b"K", b"S"):
        with pytest.raises(ustar.Refused):
            ustar.parse_header(header(b"x", 0, kind=kind))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_damaged_bundles_never_escape_or_crash(
    data: st.DataObject, good: bytes, tmp_path: Path
) -> None:
    """Bundles damaged at random (bytes flipped, cut, inserted; in the tar or in the
    compressed stream): refused or accepted, never a traceback, nothing written outside
    the scratch directory, and nothing of size before the signature holds; `cairn verify`
    and `cairn unbundle` (both read_bundle) give one verdict."""
    raw = bytearray(unzstd(good))
    where = data.draw(st.sampled_from(["tar", "zstd"]))
    target = raw if where == "tar" else bytearray(good)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "size"]))
        at = data.draw(st.integers(0, max(len(target) - 1, 0)))
        if kind == "flip":
            target[at] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del target[at : at + data.draw(st.integers(1, 2048))]
        elif kind == "insert":
            target[at:at] = data.draw(st.binary(min_size=1, max_size=1024))
        elif where == "tar" and len(target) >= 512:
            block = (at // 512) * 512  # a header's size field made huge
            target[block + 124 : block + 136] = b"77777777777\0"
    stream = zstd(bytes(target)) if where == "tar" else bytes(target)
    work = tmp_path / f"case-{os.urandom(4).hex()}"
    into = work / "into"
    into.mkdir(parents=True)
    outside = sorted(p.name for p in tmp_path.iterdir())
    try:
        read_bundle(io.BytesIO(stream), KEY.public, into)
    except (CairnError, UsageError) as e:
        assert e.exit_code in (2, 5, 6, 7), e
        assert tree_bytes(into) <= len(unzstd(good)), "more was written than the bundle holds"
    assert sorted(p.name for p in tmp_path.iterdir()) == outside
    assert {p.name for p in work.iterdir()} == {"into"}
    remove_tree(work)


# -- what a registry may answer --------------------------------------------------------
Answer = Callable[[http.server.BaseHTTPRequestHandler], None]


@contextlib.contextmanager
def hostile_registry(answers: dict[str, Answer]) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A registry on 127.0.0.1 answering GETs as `answers` say (by path prefix), and the
    (path, Authorization) of every request it was sent."""
    seen: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization", "")))
            answer = next((a for p, a in answers.items() if self.path.startswith(p)), None)
            if answer is None:
                _send(self, 401, WWW_Authenticate='Basic realm="elsewhere"')
            else:
                answer(self)

    with http_server(Handler) as host:
        yield host, seen


def _send(
    h: http.server.BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str
) -> None:
    h.send_response(status)
    for k, v in headers.items():
        h.send_header(k.replace("_", "-"), v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _client(host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """cairn's client of `host`, with credentials (u:SECRET) in REGISTRY_AUTH_FILE."""
    auth = tmp_path / "auth.json"
    pair = base64.b64encode(b"u:SECRET").decode()
    auth.write_text(json.dumps({"auths": {host: {"auth": pair}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    return Registry(Access().host(host), RetryPolicy(retries=0, stall_timeout=1.0))


def test_a_registry_cannot_lead_the_client_astray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a redirect to another origin that asks for credentials: none are sent there
    with hostile_registry({}) as (other, other_seen):
        redirect = {
            "/v2/r/manifests/": lambda h: _send(h, 302, Location=f"http://{other}/v2/r/manifests/x")
        }
        with hostile_registry(redirect) as (host, _), pytest.raises(CairnError):
            _client(host, tmp_path, monkeypatch).get_manifest("r", "x")
    assert other_seen and all(auth == "" for _, auth in other_seen), other_seen

    # a body dripped a byte at a time is ended, not waited for
    def drip(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(1 << 20))
        h.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(40):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.2)

    with hostile_registry({"/v2/r/manifests/": drip}) as (host, _):
        start = time.monotonic()
        with pytest.raises(CairnError):
            _client(host, tmp_path, monkeypatch).get_manifest("r", "x")
        assert time.monotonic() - start < 6

    # a body cut short of its Content-Length: a failure, not a shorter document
    def cut(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100")
        h.end_headers()
        h.wfile.write(b"abc")
        h.close_connection = True

    # a Location that is no URL: a named refusal, not a ValueError
    no_url: Answer = lambda h: _send(h, 302, Location="http://[::1/v2/r/manifests/x")  # noqa: E731
    for answer, needle in ((cut, "IncompleteRead"), (no_url, "no usable URL")):
        with (
            hostile_registry({"/v2/r/manifests/": answer}) as (host, _),
            pytest.raises(CairnError, match=needle),
        ):
            _client(host, tmp_path, monkeypatch).get_manifest("r", "x")

    # an attachment naming one blob 500 times: the blob is fetched once
    blob = os.urandom(1 << 16)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    layer = {"mediaType": "x", "digest": digest, "size": len(blob)}
    manifest = json.dumps({"config": layer, "layers": [layer] * 500}).encode()
    answers: dict[str, Answer] = {
        "/v2/r/manifests/": lambda h: _send(h, 200, manifest, Content_Type="x"),
        "/v2/r/blobs/": lambda h: _send(h, 200, blob),
    }
    with hostile_registry(answers) as (host, seen):
        fetched = fetch(_client(host, tmp_path, monkeypatch), "r", "sha256-x.att")
    assert fetched is not None and len(fetched.blobs) == 2  # the manifest, the blob
    assert sum(path.startswith("/v2/r/blobs/") for path, _ in seen) == 1


def test_hostile_descriptors_and_sizes_are_refused(tmp_path: Path, store: OciLayout) -> None:
    for bad in ({"mediaType": 1, "digest": "sha256:" + "0" * 64, "size": 1},
                {"mediaType": "x", "digest": 12, "size": 1},
                {"mediaType": "x", "digest": "sha256:" + "0" * 64, "size": True},
                "a string", {"mediaType": "x", "digest": "sha256:" + "0" * 64, "size": 1,
                             "annotations": "x"}):  # fmt: skip
        with pytest.raises(ImageContentError):
            Descriptor.from_json(bad)
    # a blob that is not its descriptor's size is refused before it is hashed
    layout = OciLayout(tmp_path / "oci")
    os.system(f"cp -a {store.root} {layout.root}")
    manifest = layout.platform_manifests("base")[0]
    layer = layout.read_json(manifest.digest)["layers"][0]
    with layout.blob_path(layer["digest"]).open("r+b") as f:
        f.truncate(1 << 40)  # a terabyte, sparse
    start = time.monotonic()
    with pytest.raises(ImageContentError, match="its descriptor says"):
        layout.check_blob(layer["digest"], layer["size"])
    assert time.monotonic() - start < 1
    # text printed with its line breaks kept, its other control characters escaped
    assert printable("a\nb\x1b", lines=True) == "a\nb\\x1b"


@pytest.mark.parametrize(
    "change",
    [
        {"bundle_version": 1e400},
        {"bundle_version": "2"},
        {"bundle_version": True},
        {"images": [{"name": "base", "digest": "sha256:" + "0" * 64, "tags": "13"}]},
        {"images": [{"name": "\x1b[2J", "digest": "sha256:" + "0" * 64, "tags": []}]},
    ],
)
def test_a_signed_manifest_of_odd_types_is_refused(
    good: bytes, tmp_path: Path, change: dict[str, object]
) -> None:
    entries = members(good)
    manifest = {**json.loads(dict(entries)[bundle_format.MANIFEST]), **change}
    assert refused(resigned(entries, manifest), tmp_path).exit_code == 7


def test_a_part_list_naming_a_part_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "b.000").write_bytes(b"x" * 100)
    digest = hashlib.sha256(b"x" * 100).hexdigest()
    row = {"name": "b.000", "size": 100, "sha256": digest}
    (tmp_path / "b.parts").write_text(json.dumps({"parts": [row] * 1000}))
    with pytest.raises(CairnError, match="twice"), open_parts(tmp_path / "b.parts"):
        pass


def test_bundle_ships_no_blob_that_is_not_its_digest(tmp_path: Path, store: OciLayout) -> None:
    layout = OciLayout(tmp_path / "oci")
    os.system(f"cp -a {store.root} {layout.root}")
    manifest = layout.platform_manifests("base")[0]
    layer = layout.read_json(manifest.digest)["layers"][0]["digest"]
    layout.blob_path(layer).write_bytes(b"sixteen bytes!!!")
    image = BundledImage("base", layout.refs()["base"].digest, ("13",))
    with pytest.raises(ImageContentError, match="does not match its digest"):
        write_bundle(layout, [image], KEY, io.BytesIO())
    # nor one that is a link out of the store
    layout.blob_path(layer).unlink()
    layout.blob_path(layer).symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_bytes(b"a file outside the store")
    with pytest.raises(ImageContentError, match="link"):
        write_bundle(layout, [image], KEY, io.BytesIO())
