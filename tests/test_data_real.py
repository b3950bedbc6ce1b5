"""The normalisers on the real public samples in ../shared/datasets (CMATH dev, MAWPS fold 0)."""
import re

import datasets
import pytest

from conftest import SHARED_DATASETS
from helpers.data.sources import normalize_cmath, normalize_mawps
from helpers.numbers import NUMBER_RE

datasets.disable_progress_bars()
CMATH = SHARED_DATASETS / "cmath" / "cmath_dev.jsonl"
MAWPS = sorted((SHARED_DATASETS / "mawps").glob("cv_mawps_fold0_*.csv"))
PLACEHOLDER = re.compile(r"\b(?:number|N_)\d+\b")
pytestmark = pytest.mark.skipif(not SHARED_DATASETS.is_dir(),
                                reason=f"real samples not present: {SHARED_DATASETS} does not exist")


def check(ds, report):
    assert report["rows_in"] == report["rows_out"] + sum(report["dropped"].values())
    for msgs in ds["messages"][:]:
        assert [m["role"] for m in msgs] == ["user", "assistant"]
        assert msgs[0]["content"].strip()
        assert NUMBER_RE.fullmatch(msgs[1]["content"]), msgs[1]["content"]


def test_cmath_dev():
    ds, report = normalize_cmath(CMATH)
    assert report["rows_in"] == 600
    check(ds, report)
    assert report["rows_out"] >= 590, report["dropped"]


@pytest.mark.parametrize("path", MAWPS, ids=lambda p: p.name)
def test_mawps_fold0(path):
    ds, report = normalize_mawps(path)
    check(ds, report)
    assert report["rows_out"] >= 0.98 * report["rows_in"], report["dropped"]
    questions = [m[0]["content"] for m in ds["messages"][:]]
    assert not [q for q in questions if PLACEHOLDER.search(q)]
    answers = [m[1]["content"] for m in ds["messages"][:]]
    assert not [a for a in answers if a.endswith(".0")]


def test_mawps_files_present():
    assert len(MAWPS) == 2, f"expected fold0 dev and train in {SHARED_DATASETS / 'mawps'}"
