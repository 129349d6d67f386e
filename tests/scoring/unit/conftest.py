"""CDNOW fixtures. lifetimes is the reference implementation, used here only as a test oracle."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():
    # lifetimes imports pkg_resources, deprecated in recent setuptools
    warnings.simplefilter("ignore")
    import lifetimes
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
    from lifetimes.utils import summary_data_from_transaction_data


@pytest.fixture(scope="session")
def cdnow_weeks() -> pd.DataFrame:
    """The 2,357-customer CDNOW cohort summary shipped with lifetimes, time in weeks."""
    return load_cdnow_summary_data_with_monetary_value()


@pytest.fixture(scope="session")
def cdnow_days() -> pd.DataFrame:
    """The full CDNOW master file (23,570 customers) summarised in days, as the service does."""
    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"
    tx = pd.read_csv(
        path, sep=r"\s+", skiprows=1, header=None, names=["id", "date", "n", "amount"], dtype={"id": str, "date": str}
    )
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    summary = summary_data_from_transaction_data(
        tx, "id", "date", monetary_value_col="amount", observation_period_end="1998-06-30", freq="D"
    )
    assert len(summary) == 23_570
    assert np.all(summary["recency"] <= summary["T"])
    return summary
