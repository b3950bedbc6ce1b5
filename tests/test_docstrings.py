"""The examples in the modules' docstrings run and print what they say."""
import doctest
import importlib

import pytest

from helpers import paths

MODULES = ["helpers.conversation", "helpers.lora", "helpers.numbers", "helpers.train_config", "helpers.synthetic",
           "helpers.data.read"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.chdir(paths.PROJECT_ROOT)  # examples name files relative to the project
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
