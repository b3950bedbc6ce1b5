"""Every exercise checker accepts its solution and rejects a wrong answer with specific feedback."""
import json
import sys

import pytest

from helpers import check, paths
from tools import run_course

sys.path.insert(0, str(paths.PROJECT_ROOT))
from solutions.answers import ANSWERS, WRONG  # noqa: E402


@pytest.fixture(autouse=True)
def eval_logs(tmp_path, monkeypatch):
    """A notebook-06 run's logs for exercise 06.3: the tuned model leaks JSON in 2 general replies, the base in 0."""
    run = tmp_path / "eval" / "day2-test"
    run.mkdir(parents=True)
    for label, leaks in (("base", [False, False, False]), ("tuned", [True, False, True])):
        rows = [{"source": "general", "json_leak": leak} for leak in leaks] + [{"source": "json", "json_valid": True}]
        (run / f"{label}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    monkeypatch.setattr(paths, "EVAL", tmp_path / "eval")


@pytest.fixture(autouse=True)
def session_dataset(course_dataset, monkeypatch):
    """Exercise 05.3 reads the default dataset: here the session's, as notebook 04 may be rewriting runs/dataset/."""
    from helpers.data import steps

    monkeypatch.setattr(steps, "DEFAULT_OUT", course_dataset)


def _notebook_exercises():
    found = {}
    for nb in run_course.notebooks():
        for cell in run_course.cells(nb):
            if "exercise" in cell.get("metadata", {}).get("tags", []):
                src = "".join(cell["source"])
                key = src.split('check.answer("')[1].split('"')[0]
                found[key] = (nb.name, src)
    return found


def test_every_exercise_has_a_solution_and_a_wrong_answer():
    assert set(check.EXERCISES) == set(ANSWERS) == set(WRONG)


def test_notebooks_pose_every_exercise_unanswered():
    found = _notebook_exercises()
    assert set(found) == set(check.EXERCISES)
    for key, (name, src) in found.items():
        assert key.split(".")[0] == name[:2], f"exercise {key} belongs in notebook {key[:2]}, found in {name}"
        answer_lines = [ln for ln in src.splitlines() if ln.startswith("answer")]
        assert answer_lines == ["answer = None"], f"{name}: exercise {key} must be posed unanswered"
    counts = {}
    for key in found:
        counts[key[:2]] = counts.get(key[:2], 0) + 1
    assert all(1 <= n <= 3 for n in counts.values()), counts


@pytest.mark.parametrize("key", sorted(ANSWERS))
def test_solution_accepted(key):
    ok, feedback = check.judge(key, ANSWERS[key])
    assert ok, feedback


@pytest.mark.parametrize("key", sorted(WRONG))
def test_wrong_answer_rejected_with_specific_feedback(key):
    wrong, expected = WRONG[key]
    ok, feedback = check.judge(key, wrong)
    assert not ok
    assert expected in feedback and "Hint:" in feedback


def test_unanswered_prints_hint_without_raising(capsys):
    key = sorted(check.EXERCISES)[0]
    check.answer(key, None)
    assert "not answered yet" in capsys.readouterr().out
    with pytest.raises(KeyError, match="no exercise"):
        check.judge("99.9", 1)
