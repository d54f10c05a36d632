"""Each service's Dockerfile (there is no Docker engine here, so the files are checked, and the
build's uv step is replayed in a copy of exactly the build context the Dockerfile sees)."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO_ROOT, require_or_skip

SERVICES = sorted(p.parent.name for p in (REPO_ROOT / "services").glob("*/pyproject.toml"))


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int


def instructions(service: str) -> list[Instruction]:
    text = (REPO_ROOT / "services" / service / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)
    result, stage = [], -1
    for raw in logical.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        result.append(Instruction(keyword.upper(), " ".join(args.split()), stage))
    return result


def final_stage(items: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in items)
    return [i for i in items if i.stage == last]


def copy_sources(items: list[Instruction]) -> list[str]:
    sources = []
    for item in items:
        if item.keyword == "COPY" and "--from=" not in item.args:
            parts = [p for p in item.args.split() if not p.startswith("--")]
            sources += parts[:-1]
    return sources


def dockerignore() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path).parts
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(parts[depth - 1], bare):
                return True
    return False


def workspace_members() -> list[str]:
    root = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    members: list[str] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += sorted(str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob(pattern)
                          if (p / "pyproject.toml").is_file())
    return members


def package_name(service: str) -> str:
    pyproject = tomllib.loads((REPO_ROOT / "services" / service / "pyproject.toml").read_text())
    return str(pyproject["project"]["name"])


@pytest.mark.parametrize("service", SERVICES)
def test_every_copied_file_exists_and_is_not_excluded_from_the_build_context(
    service: str,
) -> None:
    patterns = dockerignore()
    sources = copy_sources(instructions(service))
    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"{service}: COPY {source} does not exist"
        assert not ignored(source, patterns), f"{service}: COPY {source} is in .dockerignore"
    # uv reads the workspace from every member's pyproject.toml and the lock.
    for member in workspace_members():
        assert f"{member}/pyproject.toml" in sources, f"{service}: missing {member}/pyproject.toml"
    assert {"uv.lock", "pyproject.toml"} <= set(sources)
    # Source code: the kernel and this service only.
    code = [s for s in sources if not s.endswith(("pyproject.toml", "uv.lock"))]
    assert sorted(code) == sorted(["core/gas_core", f"services/{service}/gas_{service}"])


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_installs_its_own_package_frozen_without_dev_tools(service: str) -> None:
    items = instructions(service)
    syncs = [i.args for i in items if i.keyword == "RUN" and "uv sync" in i.args]
    assert syncs
    for command in syncs:
        assert "--frozen" in command and "--no-dev" in command
        assert re.findall(r"--package (\S+)", command) == [package_name(service)]
    entrypoint = next(i.args for i in final_stage(items) if i.keyword == "ENTRYPOINT")
    assert entrypoint == f'["python", "-m", "gas_{service}"]'
    assert (REPO_ROOT / "services" / service / f"gas_{service}" / "__init__.py").is_file()


@pytest.mark.parametrize("service", SERVICES)
def test_the_final_stage_is_slim_non_root_labelled_and_stops_on_sigterm(service: str) -> None:
    items = instructions(service)
    assert max(i.stage for i in items) >= 1, "multi-stage"
    args = {i.args.split("=", 1)[0]: i.args.split("=", 1)[1]
            for i in items if i.keyword == "ARG" and "=" in i.args}
    final = final_stage(items)
    base = final[0].args.split()[0]
    assert base == "${PYTHON_IMAGE}" and "-slim" in args["PYTHON_IMAGE"]
    # The build stage uses the same base, so the copied virtualenv's interpreter link holds.
    assert any(i.keyword == "FROM" and i.args.startswith("${PYTHON_IMAGE} AS build")
               for i in items)
    text = " ".join(i.args for i in final)
    assert "uv" not in [i.args.split()[-1] for i in final if i.keyword == "COPY"]
    assert not re.search(r"\b(gcc|g\+\+|build-essential|make|apt-get install)\b", text)
    copies_from = [i.args for i in final if i.keyword == "COPY"]
    assert copies_from == ["--from=build /app/.venv /app/.venv"]
    (user,) = [i.args for i in final if i.keyword == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    assert [i.args for i in final if i.keyword == "STOPSIGNAL"] == ["SIGTERM"]
    labels = " ".join(i.args for i in final if i.keyword == "LABEL")
    for key in ("title", "description", "version", "revision", "source"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert f'org.opencontainers.image.title="gas-{service}"' in labels


@pytest.mark.parametrize("service", SERVICES)
def test_the_locked_install_of_the_build_context_holds_only_runtime_packages(
    service: str, tmp_path: Path
) -> None:
    """Replays the image's `uv sync` (dry run, offline) in a copy of the Dockerfile's context."""
    uv = shutil.which("uv")
    require_or_skip(uv is not None, "uv is not on PATH")
    context = tmp_path / "context"
    for source in copy_sources(instructions(service)):
        target = context / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO_ROOT / source).is_dir():
            shutil.copytree(REPO_ROOT / source, target,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO_ROOT / source, target)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    env["UV_PROJECT_ENVIRONMENT"] = str(tmp_path / "venv")
    result = subprocess.run(
        [str(uv), "sync", "--frozen", "--no-dev", "--no-editable", "--package",
         package_name(service), "--dry-run", "--offline"],
        check=False, cwd=context, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    installed = set(re.findall(r"^ \+ ([\w.-]+)(?:==| @ )", result.stdout + result.stderr,
                                flags=re.MULTILINE))
    assert {package_name(service), "gas-core"} <= installed, result.stdout + result.stderr
    assert not installed & {"pytest", "moto", "ruff", "mypy", "gas-cli", "playwright"}
    others = {package_name(s) for s in SERVICES if s != service}
    assert not installed & others, installed & others


# -- images/build.py: the buildah builds (`make images`) ---------------------------------------


def test_the_build_script_reads_the_same_copied_sources_as_these_checks() -> None:
    from images.build import SERVICES as BUILT
    from images.build import copied_sources

    assert sorted(BUILT) == SERVICES
    for service in SERVICES:
        dockerfile = REPO_ROOT / "services" / service / "Dockerfile"
        assert copied_sources(dockerfile) == copy_sources(instructions(service))


def test_an_image_is_rebuilt_when_a_file_it_copies_changes_and_only_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from images import build

    for name in ("services/web/Dockerfile", "core/gas_core/a.py", "docs/a.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "services/web/Dockerfile", tmp_path / "services/web/Dockerfile")
    (tmp_path / "core/gas_core/a.py").write_text("A = 1\n")
    (tmp_path / "docs/a.md").write_text("docs\n")
    monkeypatch.setattr(build, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(build, "copied_sources", lambda dockerfile: ["core/gas_core"])
    monkeypatch.setattr(build, "inspect_image", lambda name, template: f"id-of-{name}")

    def digest() -> str:
        return build.context_digest("web", "py", "uv")

    first = digest()
    (tmp_path / "docs/a.md").write_text("other docs\n")
    (tmp_path / "core/gas_core/__pycache__").mkdir()
    (tmp_path / "core/gas_core/__pycache__/a.cpython-311.pyc").write_bytes(b"\0")
    assert digest() == first  # outside the context, or left out by .dockerignore
    (tmp_path / "core/gas_core/a.py").write_text("A = 2\n")
    assert digest() != first
    changed = digest()
    assert build.context_digest("web", "other-py", "uv") != changed  # a new base


def test_a_ca_bundle_never_goes_into_an_image_built_on_public_bases(tmp_path: Path) -> None:
    from images.build import build_all

    bundle = tmp_path / "proxy-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(SystemExit, match="local bases only"):
        build_all(["web"], python_image="python:3.11-slim-bookworm",
                  uv_image="ghcr.io/astral-sh/uv:0.13", ca_bundle=bundle)
    # Nor does any Dockerfile or the release build take one.
    release = (REPO_ROOT / ".github/workflows/ci.yaml").read_text()
    for text in [release, *((REPO_ROOT / "services" / s / "Dockerfile").read_text()
                            for s in SERVICES)]:
        assert not re.search(r"SSL_CERT_FILE|UV_NATIVE_TLS|CA_BUNDLE|\.crt\b|\.pem\b", text)
