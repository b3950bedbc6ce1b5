"""Instructor copies leak no outputs, no filled-in answers and no solution cells."""
import json
import shutil
import sys

import pytest

from helpers import paths
from tools import clean_copies, run_course

sys.path.insert(0, str(paths.PROJECT_ROOT))
from solutions.answers import ANSWERS  # noqa: E402


def _fill(src: str, key: str, value, style: int) -> str:
    """An answer as instructors write it: one line, spread over lines, or inside the check call."""
    if style == 0:
        return src.replace("answer = None", f"answer = {value!r}")
    if style == 1:
        return src.replace("answer = None", f"answer = (\n    {value!r}\n)  # SECRET")
    return src.replace("answer = None\n", "").replace(f'check.answer("{key}", answer)',
                                                      f'check.answer("{key}", {value!r})  # SECRET')


def _solved_and_run(src, dst):
    """Copies of the notebooks as an instructor leaves them: answers filled, outputs, a solution cell."""
    dst.mkdir()
    for nb_path in src:
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            cell["execution_count"] = 7
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "SECRET OUTPUT\n"}]
            cell["metadata"]["scrolled"] = True
            src_text = "".join(cell["source"])
            for n, (key, value) in enumerate(ANSWERS.items()):
                if f'check.answer("{key}"' in src_text:
                    cell["source"] = _fill(src_text, key, value, style=n % 3)
        nb["cells"].append({"cell_type": "code", "metadata": {"tags": ["solution"]}, "execution_count": 1,
                            "outputs": [], "source": "SOLUTION_CELL = 42"})
        nb["metadata"]["widgets"] = {"state": "SECRET WIDGET STATE"}
        (dst / nb_path.name).write_text(json.dumps(nb))


def test_clean_copies_leak_nothing(tmp_path):
    originals = run_course.notebooks()
    _solved_and_run(originals, tmp_path / "solved")
    written = clean_copies.write_clean_copies(tmp_path / "solved", tmp_path / "clean")
    assert [p.name for p in written] == [p.name for p in originals]
    for path in written:
        text = path.read_text()
        assert "SECRET" not in text and "SOLUTION_CELL" not in text
        nb = json.loads(text)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb["cells"] if c["cell_type"] == "code")
        original = json.loads((paths.PROJECT_ROOT / "notebooks" / path.name).read_text())
        assert ["".join(c["source"]) for c in nb["cells"]] == ["".join(c["source"]) for c in original["cells"]], \
            f"{path.name}: the clean copy must read exactly like the student notebook"


def test_an_unknown_exercise_cell_is_an_error():
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["exercise"]}, "outputs": [], "execution_count": 1,
                     "source": "# 99.9 — not a course exercise\nanswer = 3\ncheck.answer(\"99.9\", answer)"}],
          "metadata": {}}
    with pytest.raises(ValueError, match="99.9"):
        clean_copies.clean_notebook(nb)


def test_cli_writes_into_the_folder_given(tmp_path):
    assert clean_copies.main(["--out", str(tmp_path / "hand-out")]) == 0
    assert sorted(p.name for p in (tmp_path / "hand-out").iterdir()) == [p.name for p in run_course.notebooks()]
    shutil.rmtree(tmp_path / "hand-out")
