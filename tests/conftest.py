"""Shared test set-up: offline, caches under the project, one tokenizer per session."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

import helpers  # noqa: E402,F401  (sets the cache environment)
from helpers import paths  # noqa: E402

SHARED = paths.PROJECT_ROOT.parent / "shared"
SHARED_DATASETS = SHARED / "datasets"


@pytest.fixture(scope="session")
def tok():
    return helpers.load_tokenizer("tiny-qwen3")


@pytest.fixture(scope="session")
def tiny_model_dir():
    from helpers.tiny_qwen3.build import tiny_model_dir

    return tiny_model_dir()
