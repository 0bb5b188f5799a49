"""What differs between languages: the family's images a project builds and runs on, the
recipes' commands, the editor's extensions. Everything else is the same for every project."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cairn.errors import UsageError


@dataclass(frozen=True)
class Language:
    name: str
    build_image: str  # the family image the build stage (and the dev container) uses
    runtime_image: str  # the family image the final stage runs on
    # the tag to name when only a registry prefix is known (the example family's)
    default_tags: dict[str, str]
    recipes: dict[str, str]  # setup, fmt, lint, test, build, clean: shell commands
    extensions: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    port: int | None = None


LANGUAGES: dict[str, Language] = {
    "go": Language(
        name="go",
        build_image="golang",
        # CGO_ENABLED=0: a static binary, which needs no libc
        runtime_image="static",
        default_tags={"golang": "1.26", "static": "trixie"},
        recipes={
            "setup": "go mod download",
            "fmt": "gofmt -w .",
            "lint": "go vet ./...",
            "test": "go test ./...",
            "build": "CGO_ENABLED=0 go build -trimpath -o bin/{{ image }} .",
            "clean": "rm -rf bin",
        },
        extensions=("golang.go", "skellock.just", "ms-azuretools.vscode-docker"),
        settings={
            "go.toolsManagement.autoUpdate": False,
            "go.useLanguageServer": True,
            "gopls": {
                "ui.semanticTokens": True,
                "formatting.gofumpt": False,
                "ui.diagnostic.staticcheck": True,
            },
            "[go]": {"editor.formatOnSave": True, "editor.defaultFormatter": "golang.go"},
        },
    ),
    "python": Language(
        name="python",
        build_image="python-build",
        runtime_image="python-runtime",
        default_tags={"python-build": "3.13", "python-runtime": "3.13"},
        recipes={
            "setup": "python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt",
            "fmt": ".venv/bin/ruff format .",
            "lint": ".venv/bin/ruff check .",
            "test": "python3 -m unittest discover -s tests -t . -v",
            "build": "python3 -m compileall -q app",
            "clean": "rm -rf .venv && find . -name __pycache__ -prune -exec rm -rf {} +",
        },
        extensions=(
            "ms-python.python",
            "charliermarsh.ruff",
            "skellock.just",
            "ms-azuretools.vscode-docker",
        ),
        settings={
            "python.defaultInterpreterPath": "${containerWorkspaceFolder}/.venv/bin/python",
            "[python]": {
                "editor.formatOnSave": True,
                "editor.defaultFormatter": "charliermarsh.ruff",
            },
        },
    ),
    "node": Language(
        name="node",
        build_image="node-build",
        runtime_image="node-runtime",
        default_tags={"node-build": "20", "node-runtime": "20"},
        recipes={
            "setup": "npm ci",
            "fmt": "npx --yes prettier@3 --write src test *.mjs",
            "lint": "node --check server.mjs && node --check build.mjs",
            "test": "npm test",
            "build": "npm run build",
            "clean": "rm -rf dist node_modules",
        },
        extensions=("esbenp.prettier-vscode", "skellock.just", "ms-azuretools.vscode-docker"),
        settings={"editor.formatOnSave": True, "editor.defaultFormatter": "esbenp.prettier-vscode"},
        port=8080,
    ),
    "java": Language(
        name="java",
        build_image="java-build",
        runtime_image="java-runtime",
        default_tags={"java-build": "21", "java-runtime": "21"},
        recipes={
            "setup": "mvn -B -q dependency:go-offline",
            "fmt": "mvn -B -q spotless:apply",
            "lint": "mvn -B -q spotless:check",
            "test": "mvn -B -q test",
            "build": "mvn -B -q package -DskipTests",
            "clean": "mvn -B -q clean",
        },
        extensions=("vscjava.vscode-java-pack", "skellock.just", "ms-azuretools.vscode-docker"),
        settings={"java.configuration.updateBuildConfiguration": "automatic"},
        port=8080,
    ),
}


def language(name: str) -> Language:
    try:
        return LANGUAGES[name]
    except KeyError:
        raise UsageError(
            f"cairn init does not know the language '{name}'.",
            f"Try: --lang {' | '.join(LANGUAGES)}.",
        ) from None
