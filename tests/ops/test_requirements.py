"""The image installs the runtime lock only: it must hold every runtime dependency and no test or lint tool."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY_TOOLS = {"pytest", "pytest-asyncio", "hypothesis", "lifetimes", "aiosmtpd", "ruff", "mypy", "promql-parser"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lock: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-r")):
            continue
        name, _, version = line.partition("==")
        assert version, f"{lock.name}: {line!r} is not pinned with =="
        pins[_normalise(name)] = version
    return pins


def _runtime_closure(roots: list[str]) -> set[str]:
    """Every distribution the runtime requirements pull in, following extras and markers as pip does."""
    seen: dict[str, set[str]] = {}
    pending = [Requirement(spec) for spec in roots]
    while pending:
        requirement = pending.pop()
        name = _normalise(requirement.name)
        already = seen.get(name)
        if already is not None and set(requirement.extras) <= already:
            continue
        extras = (already or set()) | set(requirement.extras)
        seen[name] = extras
        for spec in importlib.metadata.distribution(requirement.name).requires or []:
            child = Requirement(spec)
            if child.marker is None or any(child.marker.evaluate({"extra": extra}) for extra in extras | {""}):
                pending.append(child)
    return set(seen)


def test_runtime_lock_holds_every_runtime_dependency_and_no_dev_tool() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _pins(ROOT / "requirements.lock")
    needed = _runtime_closure(project["dependencies"])
    assert needed - set(runtime) == set(), "runtime dependencies missing from requirements.lock"
    assert set(runtime) - needed == set(), "requirements.lock holds packages no runtime dependency needs"
    assert DEV_ONLY_TOOLS & set(runtime) == set()


def test_dev_lock_extends_the_runtime_lock_without_repinning_it() -> None:
    dev_lock = ROOT / "requirements-dev.lock"
    assert "-r requirements.lock" in dev_lock.read_text().splitlines()
    dev = _pins(dev_lock)
    assert set(dev) & set(_pins(ROOT / "requirements.lock")) == set()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["optional-dependencies"]["dev"]:
        assert _normalise(Requirement(spec).name) in dev, f"{spec} is not pinned in requirements-dev.lock"


def test_installed_versions_match_the_locks() -> None:
    for lock in ("requirements.lock", "requirements-dev.lock"):
        for name, version in _pins(ROOT / lock).items():
            assert importlib.metadata.version(name) == version, f"{name} installed differs from {lock}"


def test_image_installs_the_runtime_lock_only() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied_or_installed = [line for line in dockerfile.splitlines() if line.startswith(("COPY", "RUN", "ADD"))]
    assert any("-r requirements.lock" in line for line in copied_or_installed)
    assert not any("requirements-dev" in line for line in copied_or_installed)
    assert re.search(r"pip install[^\n]*--no-deps \.", dockerfile), "the project itself must not pull unpinned deps"
