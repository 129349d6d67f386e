"""The one skeleton of docs/architecture.md ("Inside a service"), held by the files themselves: the same names for
the same roles in every service, so the vocabulary does not drift again."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
# The console is a process beside the services (no schema, no topic); profile's use cases take what they need as
# arguments and share no dependencies object yet.
WITH_DEPS = ("ingest", "scoring", "campaign", "feedback", "insights")
ALL = sorted(p.name for p in SERVICES.iterdir() if (p / "bootstrap.py").exists())


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _functions(path: Path) -> list[str]:
    return [n.name for n in ast.walk(_tree(path)) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_every_service_has_the_same_parts() -> None:
    assert set(WITH_DEPS) <= set(ALL)
    for service in ALL:
        root = SERVICES / service
        missing = [
            p
            for p in ("bootstrap.py", "settings.py", "domain", "handlers", "adapters", "entrypoints")
            if not (root / p).exists()
        ]
        assert not missing, f"{service} lacks {missing}"


@pytest.mark.parametrize("service", WITH_DEPS)
def test_the_dependencies_object_is_named_after_its_service_in_handlers_deps(service: str) -> None:
    deps = SERVICES / service / "handlers" / "deps.py"
    classes = [n.name for n in _tree(deps).body if isinstance(n, ast.ClassDef)]
    assert f"{service.capitalize()}Deps" in classes


@pytest.mark.parametrize("service", ALL)
def test_the_settings_factory_lives_in_settings_py(service: str) -> None:
    factory = f"{service}_settings"
    defined = [
        path.relative_to(SERVICES).as_posix()
        for path in (SERVICES / service).rglob("*.py")
        if any(isinstance(n, ast.FunctionDef) and n.name == factory for n in _tree(path).body)
    ]
    assert defined == [f"{service}/settings.py"]


def test_adapters_are_named_by_what_they_hold_not_by_their_role() -> None:
    role = re.compile(r"^(repository|repo|store|dao)$|_(repo|repository|dao)$")
    named = [p for p in SERVICES.glob("*/adapters/*.py") if role.search(p.stem)]
    # insights keeps all of its SQL in one module, still named after its role: the one left to rename.
    assert [str(p.relative_to(SERVICES)) for p in named] == ["insights/adapters/store.py"]


def test_one_clock_every_now_goes_through_libs_common_clock() -> None:
    """`now()` is written only on a dependencies object, and each of those delegates to `libs.common.clock.as_of`."""
    for path in SERVICES.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        if "now" in _functions(path):
            assert path.name == "deps.py", f"{path}: now() belongs on the service's dependencies object"
            assert "as_of(" in path.read_text(), f"{path}: now() must use libs.common.clock.as_of"
