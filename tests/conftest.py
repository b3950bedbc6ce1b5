"""Shared test set-up: offline, caches under the project, one tokenizer per session."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

import helpers  # noqa: E402,F401  (sets the cache environment)
from helpers import paths  # noqa: E402

SHARED = paths.PROJECT_ROOT.parent / "shared"
SHARED_DATASETS = SHARED / "datasets"


def pytest_collection_modifyitems(items):
    """Modules that run notebooks first: under ``make test``'s two workers they take one, the rest the other."""
    notebook_modules = {item.module.__name__ for item in items if item.get_closest_marker("notebook")}
    items.sort(key=lambda item: item.module.__name__ not in notebook_modules)


@pytest.fixture(scope="session")
def tok():
    return helpers.load_tokenizer("tiny-qwen3")


@pytest.fixture(scope="session")
def tiny_model_dir():
    from helpers.tiny_qwen3.build import tiny_model_dir

    return tiny_model_dir()


@pytest.fixture(scope="session")
def course_dataset(tmp_path_factory):
    """The course's default mix (notebook 04's pipeline on data/), built once per session into a temp folder.

    Tests read this one, never runs/dataset/: notebook 04, run by another test worker, rewrites that.
    """
    from helpers import data

    out = tmp_path_factory.mktemp("dataset") / "qwen3_sft_mixed"
    data.build(out, tokenizer=None)
    return out


@pytest.fixture(scope="session")
def course_splits(course_dataset):
    from helpers import data

    return data.load_splits(course_dataset)
