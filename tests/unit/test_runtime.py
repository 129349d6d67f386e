"""Process-wide tuning the shared runtime applies at start-up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from libs.common.runtime import OLDER_GC_THRESHOLDS, YOUNG_GC_THRESHOLD, tune_garbage_collector
from services.profile.bootstrap import DEFINITION as PROFILE


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_each_service_gets_its_young_generation_threshold(restored_gc: None) -> None:
    tune_garbage_collector()
    assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *OLDER_GC_THRESHOLDS)
    # Profile's batches keep millions of objects alive until they commit: it collects less often.
    tune_garbage_collector(PROFILE.young_gc_threshold)
    assert gc.get_threshold() == (PROFILE.young_gc_threshold, *OLDER_GC_THRESHOLDS)
    assert PROFILE.young_gc_threshold > YOUNG_GC_THRESHOLD
