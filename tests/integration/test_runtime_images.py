"""The example family's runtime images: built for amd64 and arm64 with qemu's binfmt
handler turned off (so nothing of arm64 runs while they are built), twice, to the
same digests; then real programs run on them as nonroot, arm64 ones under qemu.

Programs are compiled here for each platform (gcc, g++ and their aarch64 cross
compilers; javac), or are the image's own interpreters. A program runs in the
unpacked image with its own /proc, like a container: `unshare --mount-proc` and
`chroot --userspec=65532:65532`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import (
    EXAMPLE,
    RUNTIME_IMAGES,
    Built,
    cairn,
    cairn_json,
    only,
)

from cairn.family.refresh import installed_versions
from cairn.oci.layout import OciLayout
from cairn.oci.unpack import unpack_layers
from cairn.platforms import parse_platform

pytestmark = pytest.mark.usefixtures("binfmt_registered")

PLATFORMS = ("linux/amd64", "linux/arm64")
GCC = {"linux/amd64": "gcc", "linux/arm64": "aarch64-linux-gnu-gcc"}
GXX = {"linux/amd64": "g++", "linux/arm64": "aarch64-linux-gnu-g++"}
UNSHARE = ("unshare", "--mount", "--pid", "--fork")
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


@pytest.fixture(scope="module")
def roots(
    runtime_family: Built, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], Path]:
    """Every runtime image of each platform, unpacked."""
    layout = OciLayout(runtime_family.store)
    out = {}
    for name in RUNTIME_IMAGES:
        for desc in layout.platform_manifests(name):
            assert desc.platform is not None
            manifest = layout.read_json(desc.digest)
            root = tmp_path_factory.mktemp(f"{name}-{desc.platform.debian_arch}")
            unpack_layers([layout.blob_path(layer["digest"]) for layer in manifest["layers"]], root)
            root.chmod(0o755)  # as the image's own root: nonroot must reach /usr
            out[(name, desc.platform.name)] = root
    assert len(out) == len(RUNTIME_IMAGES) * len(PLATFORMS)
    return out


def run_as_nonroot(root: Path, *argv: str, env: dict[str, str] | None = None) -> str:
    """argv in the image as uid 65532, with a /proc of its own; its output."""
    mounted = root / "proc"
    mounted.mkdir(exist_ok=True)
    res = subprocess.run(
        [*UNSHARE, f"--mount-proc={mounted}", CHROOT, "--userspec=65532:65532", str(root), *argv],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/nonroot", **(env or {})},
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, f"{argv} on {root.name} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def compile_c(tmp: Path, platform: str, source: str, *flags: str, cxx: bool = False) -> Path:
    src = tmp / ("prog.cc" if cxx else "prog.c")
    src.write_text(source)
    out = tmp / f"prog-{platform.rpartition('/')[2]}"
    compiler = (GXX if cxx else GCC)[platform]
    subprocess.run([compiler, "-O2", "-o", str(out), str(src), *flags], check=True)
    return out


def put(root: Path, program: Path) -> str:
    """The program copied into the image's /tmp; its path there."""
    shutil.copy2(program, root / "tmp" / program.name)
    return f"/tmp/{program.name}"


# A TLS client's check of a server certificate with OpenSSL's default trust (the CA
# bundle), loaded at run time: the image's libssl, with no headers needed here.
TLS_CHECK = r"""
#include <dlfcn.h>
#include <stdio.h>
typedef void *(*fp)();
int main(int argc, char **argv) {
    void *ssl = dlopen("libssl.so.3", RTLD_NOW | RTLD_GLOBAL);
    void *crypto = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_GLOBAL);
    if (!ssl || !crypto) { printf("dlopen: %s\n", dlerror()); return 2; }
    void *ctx = ((fp)dlsym(ssl, "SSL_CTX_new"))(((fp)dlsym(ssl, "TLS_client_method"))());
    if (((int (*)(void *))dlsym(ssl, "SSL_CTX_set_default_verify_paths"))(ctx) != 1) return 3;
    void *store = ((fp)dlsym(ssl, "SSL_CTX_get_cert_store"))(ctx);
    void *bio = ((fp)dlsym(crypto, "BIO_new_file"))(argv[1], "r");
    void *cert = ((fp)dlsym(crypto, "PEM_read_bio_X509"))(bio, 0, 0, 0);
    if (!cert) return 4;
    void *check = ((fp)dlsym(crypto, "X509_STORE_CTX_new"))();
    ((fp)dlsym(crypto, "X509_STORE_CTX_init"))(check, store, cert, 0);
    int ok = ((int (*)(void *))dlsym(crypto, "X509_verify_cert"))(check);
    int err = ((int (*)(void *))dlsym(crypto, "X509_STORE_CTX_get_error"))(check);
    const char *why = ((const char *(*)(long))dlsym(crypto, "X509_verify_cert_error_string"))(err);
    printf("%s\n", ok == 1 ? "verified" : why);
    return 0;
}
"""

CXX_PROGRAM = r"""
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
int main() {
    std::map<std::string, int> m{{"cc", 42}};
    try { throw std::runtime_error("thrown"); }
    catch (const std::exception &e) { std::cout << e.what() << " " << m.at("cc") << "\n"; }
}
"""

PYTHON_CHECK = r"""
import ctypes, decimal, json, os, sqlite3, ssl, zlib
assert ssl.create_default_context().cert_store_stats()["x509_ca"] > 100
assert sqlite3.connect(":memory:").execute("select 6*7").fetchone() == (42,)
assert zlib.decompress(zlib.compress(b"x" * 1000)) == b"x" * 1000
assert decimal.Decimal("0.1") + decimal.Decimal("0.2") == decimal.Decimal("0.3")
libc = ctypes.CDLL(None)
libc.iconv_open.restype = ctypes.c_void_p
libc.iconv_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
P = ctypes.POINTER
libc.iconv.argtypes = [ctypes.c_void_p, P(ctypes.c_void_p), P(ctypes.c_size_t),
                       P(ctypes.c_void_p), P(ctypes.c_size_t)]
libc.iconv.restype = ctypes.c_size_t
def convert(data, to, frm):
    cd = libc.iconv_open(to, frm)
    assert cd not in (None, ctypes.c_void_p(-1).value), f"iconv_open {frm} -> {to} failed"
    src = ctypes.create_string_buffer(data, len(data))
    dst = ctypes.create_string_buffer(256)
    inp, outp = ctypes.c_void_p(ctypes.addressof(src)), ctypes.c_void_p(ctypes.addressof(dst))
    inleft, outleft = ctypes.c_size_t(len(data)), ctypes.c_size_t(256)
    n = libc.iconv(cd, ctypes.byref(inp), ctypes.byref(inleft), ctypes.byref(outp),
                   ctypes.byref(outleft))
    assert n != ctypes.c_size_t(-1).value and inleft.value == 0
    return dst.raw[: 256 - outleft.value]
text = "中文 GB18030 𠀀".encode()
gb = convert(text, b"GB18030", b"UTF-8")
assert gb == "中文 GB18030 𠀀".encode("gb18030"), gb
assert convert(gb, b"UTF-8", b"GB18030") == text
print(json.dumps({"uid": os.getuid(), "gb18030": gb.hex()}))
"""

JAVA_CHECK = """
import java.security.KeyStore;
import javax.net.ssl.*;
public class TlsCheck {
    public static void main(String[] args) throws Exception {
        TrustManagerFactory f = TrustManagerFactory.getInstance(
            TrustManagerFactory.getDefaultAlgorithm());
        f.init((KeyStore) null);
        int n = ((X509TrustManager) f.getTrustManagers()[0]).getAcceptedIssuers().length;
        SSLContext c = SSLContext.getInstance("TLS");
        c.init(null, f.getTrustManagers(), null);
        System.out.println(n + " " + c.getProtocol() + " " + System.getProperty("user.name"));
    }
}
"""

NODE_CHECK = (
    "const c = require('crypto'), z = require('zlib');"
    "const h = c.createHash('sha256').update('cairn').digest('hex');"
    "const back = z.gunzipSync(z.gzipSync(Buffer.from(h))).toString();"
    "console.log(back === h ? 'node ok ' + process.getuid() : 'mismatch');"
)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_programs_run_on_the_runtimes_as_nonroot(
    roots: dict[tuple[str, str], Path], platform: str, tmp_path: Path
) -> None:
    static = compile_c(
        tmp_path, platform, 'int puts(const char*);int main(){puts("static");}', "-static"
    )
    root = roots[("static", platform)]
    assert run_as_nonroot(root, put(root, static)) == "static\n"

    # the CA bundle: a chain the test makes is refused, then trusted once its root is in it
    ca, leaf = _certificates(tmp_path)
    root = roots[("runtime", platform)]
    check = put(root, compile_c(tmp_path, platform, TLS_CHECK))
    shutil.copy2(leaf, root / "tmp/leaf.pem")
    assert "unable to get local issuer" in run_as_nonroot(root, check, "/tmp/leaf.pem")
    bundle = root / "etc/ssl/certs/ca-certificates.crt"
    shipped = bundle.read_text()
    try:
        bundle.write_text(shipped + ca.read_text())
        assert run_as_nonroot(root, check, "/tmp/leaf.pem") == "verified\n"
    finally:
        bundle.write_text(shipped)

    root = roots[("runtime-cc", platform)]
    cxx = compile_c(tmp_path, platform, CXX_PROGRAM, cxx=True)
    assert run_as_nonroot(root, put(root, cxx)) == "thrown 42\n"

    root = roots[("python-runtime", platform)]
    out = json.loads(run_as_nonroot(root, "/usr/bin/python3", "-c", PYTHON_CHECK))
    assert out == {"uid": 65532, "gb18030": "d6d0cec420474231383033302095328236"}

    root = roots[("java-runtime", platform)]
    (tmp_path / "TlsCheck.java").write_text(JAVA_CHECK)
    subprocess.run(
        ["javac", "--release", "17", "-d", str(root / "tmp"), str(tmp_path / "TlsCheck.java")],
        check=True,
    )
    trusted, protocol, user = run_as_nonroot(
        root, "/usr/lib/jvm/default-java/bin/java", "-cp", "/tmp", "TlsCheck"
    ).split()
    assert int(trusted) > 100 and protocol == "TLS" and user == "nonroot"

    root = roots[("node-runtime", platform)]
    assert run_as_nonroot(root, "/usr/bin/node", "-e", NODE_CHECK) == "node ok 65532\n"


def _certificates(tmp: Path) -> tuple[Path, Path]:
    """A root CA and a server certificate it signed (openssl on this machine)."""
    ca_key, ca, key, csr, leaf = (tmp / n for n in ("ca.key", "ca.pem", "l.key", "l.csr", "l.pem"))
    openssl = ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    subprocess.run(
        [
            *openssl,
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=cairn test root",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*openssl, "-subj", "/CN=service.test", "-keyout", str(key), "-out", str(csr)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            str(leaf),
        ],
        check=True,
        capture_output=True,
    )
    return ca, leaf


def test_only_debug_twins_have_a_shell(roots: dict[tuple[str, str], Path]) -> None:
    for (name, platform), root in roots.items():
        for tool in ("sh", "bash", "dash", "apt", "apt-get", "dpkg"):
            present = os.path.lexists(root / "usr/bin" / tool)
            assert present == (name.endswith("-debug") and tool == "sh"), (name, platform, tool)
        assert not (root / "var/lib/dpkg/status").exists()
        assert (root / "var/lib/dpkg/status.d/libc6").exists() != name.startswith("static")
        if name.endswith("-debug"):
            assert run_as_nonroot(root, "sh", "-c", "echo $((6 * 7)) $(id -u)") == "42 65532\n"


def test_runtime_files_are_made_by_cairn(roots: dict[tuple[str, str], Path]) -> None:
    root = roots[("runtime", "linux/arm64")]
    assert "nonroot:x:65532:65532:nonroot:/home/nonroot:" in (root / "etc/passwd").read_text()
    assert (root / "etc/group").read_text().count(":") == 9
    assert str((root / "etc/localtime").readlink()) == "/usr/share/zoneinfo/Etc/UTC"
    assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777
    home = (root / "home/nonroot").stat()
    assert (home.st_uid, home.st_gid, home.st_mode & 0o777) == (65532, 65532, 0o700)
    assert (root / "etc/resolv.conf").read_text() == ""
    gconv = {p.stem for p in root.glob("usr/lib/aarch64-linux-gnu/gconv/*.so")}
    assert {"GBK", "GB18030", "UNICODE"} <= gconv and "IBM037" not in gconv
    md5sums = (root / "var/lib/dpkg/status.d/libc6.md5sums").read_text().splitlines()
    assert md5sums and all((root / line.split("  ", 1)[1]).exists() for line in md5sums)


def test_analyze_sbom_and_trivy_agree_on_a_runtime(runtime_family: Built, tmp_path: Path) -> None:
    layout = runtime_family.store
    for name in ("static", "python-runtime-debug"):
        ref = f"oci:{layout}:{name}"
        report = cairn_json("analyze", ref, "--platform", "linux/amd64")
        assert report["package_managers"] == []
        assert report["shell"] is name.endswith("-debug")
        assert report["user"] == "65532"
        listed = {p["name"] for p in report["packages"]}
        sbom = json.loads(
            cairn("sbom", ref, "--platform", "linux/amd64", "--format", "cyclonedx-json").stdout
        )
        archive = tmp_path / f"{name}.tar"
        subprocess.run(
            ["skopeo", "copy", "-q", "--override-arch", "amd64", ref, f"docker-archive:{archive}"],
            check=True,
        )
        trivy = subprocess.run(
            [
                str(Path(sys.executable).parent / "trivy"),
                "image",
                "--input",
                str(archive),
                "--format",
                "cyclonedx",
                "--skip-db-update",
                "--offline-scan",
                "--quiet",
                "--cache-dir",
                str(tmp_path / "trivy-cache"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert _debs(sbom) == listed == _debs(json.loads(trivy.stdout)), name
        assert len(listed) >= 5


def _debs(bom: dict[str, Any]) -> set[str]:
    return {
        c["name"] for c in bom.get("components", []) if c.get("purl", "").startswith("pkg:deb/")
    }


def test_the_build_warns_of_scripts_it_does_not_do(runtime_family: Built) -> None:
    warnings = runtime_family.result["warnings"]
    assert (
        "java-runtime: openjdk-21-jre-headless: a runtime image runs no maintainer script, and "
        "this package's would make update-alternatives links (call such programs by their real "
        "path)." in warnings
    )
    # packages whose scripts cairn does itself are not named
    assert not [w for w in warnings if w.split(": ")[1] in ("ca-certificates", "tzdata", "libc6")]
    # a build that keeps every image says the same
    again = cairn_json(
        "build", str(EXAMPLE), *only(*RUNTIME_IMAGES), "--output", f"oci:{runtime_family.store}"
    )
    assert {p["action"] for i in again["images"] for p in i["platforms"]} == {"skip"}
    assert [w for w in again["warnings"] if "openjdk" in w] == [
        w for w in warnings if "openjdk" in w
    ]


def test_every_library_is_found_without_ld_so_cache(roots: dict[tuple[str, str], Path]) -> None:
    """No image has /etc/ld.so.cache; cairn compat resolves every ELF object of each image
    against the image itself as the loader searches it then (its built-in multiarch
    directories, and RPATHs). A library the image has is always found, but for OpenJDK's
    libjvm.so: the java launcher loads it from lib/server before the libraries that need
    it, and no ld.so.conf lists that directory either. What is missing is what no package of
    the image ships (the headless JRE's optional font and sound libraries)."""
    for (name, platform), root in roots.items():
        if name.endswith("-debug") or name == "static":
            continue
        assert not (root / "etc/ld.so.cache").exists()
        report = cairn_json(
            "compat", f"dir:{root}", "--target", f"dir:{root}", "--platform", platform
        )
        present = {p.name for p in root.rglob("*.so*")}
        missing = {
            r["detail"].split()[0]
            for o in report["objects"]
            for r in o["reasons"]
            if r["kind"] == "missing-library"
        }
        assert missing & present <= {"libjvm.so"}, (name, platform, missing & present)
        if name != "java-runtime":
            assert report["summary"]["will_not_load"] == 0, (name, platform, missing)
        assert report["summary"]["ok"] >= 5, (name, platform)


def test_the_lock_resolves_what_the_build_unpacked(runtime_family: Built, tmp_path: Path) -> None:
    """cairn lock resolves a runtime image as mmdebstrap's extract variant unpacks it: the
    same packages and versions as the build's status.d, script-only packages left out."""
    family = tmp_path / "qapm"
    shutil.copytree(EXAMPLE, family)
    images = ("static", "runtime", "python-runtime", "java-runtime")
    cairn("lock", str(family), *only(*images))
    locked = json.loads((family / "cairn.lock").read_text())["images"]
    layout = OciLayout(runtime_family.store)
    for name in images:
        for platform in PLATFORMS:
            built = installed_versions(layout, name, parse_platform(platform))
            assert locked[name][platform]["packages"] == built, (name, platform)
            assert not {"debconf", "perl-base", "dpkg"} & set(built)
