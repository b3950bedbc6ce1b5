"""Every course notebook runs top to bottom with papermill and is committed clean."""
import re

import pytest

from helpers import paths
from tools import run_course

NOTEBOOKS = run_course.notebooks()


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3, "notebooks/ should hold the numbered course notebooks"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_clean(nb):
    cells = run_course.cells(nb)
    dirty = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{nb.name}: cells {dirty} carry outputs; clear them before committing"
    first_code = next(c for c in cells if c["cell_type"] == "code")
    assert "parameters" in first_code.get("metadata", {}).get("tags", []), f"{nb.name}: first code cell must be tagged 'parameters'"


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(nb, tiny_model_dir):
    seconds = run_course.run_notebook(nb, out_dir=paths.output_dir("runs", "executed"))
    print(f"{nb.name}: {seconds:.1f} s")


# one wrongly typed parameter per notebook: the first code cell after the parameters must stop it
WRONG_PARAMETER = {"00": ("MODEL", 5, "str, got int 5"), "01": ("MODEL", 5, "str, got int 5"),
                   "02": ("MODEL", 5, "str, got int 5"), "03": ("N_CHECK", "12", "int, got str '12'"),
                   "04": ("VALID_RATIO", "0.05", "float, got str '0.05'"), "05": ("R", "16", "int, got str '16'"),
                   "06": ("N_VALID", 2.5, "int, got float 2.5"), "07": ("MODEL", 5, "str, got int 5"),
                   "08": ("PROCESSES", "2", "int, got str '2'")}


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_wrong_parameter_type_fails_with_a_clear_message(nb, monkeypatch):
    """What papermill runs, without a kernel: the parameters cell, the override, then the next code cell."""
    name, value, message = WRONG_PARAMETER[nb.name[:2]]
    parameters, first, *_ = ["".join(c["source"]) for c in run_course.cells(nb) if c["cell_type"] == "code"]
    monkeypatch.chdir(nb.parent)
    namespace: dict = {}
    exec(parameters, namespace)
    assert name in namespace, f"{nb.name}: {name} is not in the parameters cell"
    namespace[name] = value
    with pytest.raises(TypeError, match=re.escape(f"parameter {name} must be {message}")):
        exec(first, namespace)


@pytest.mark.notebook
def test_papermill_injects_parameters_before_the_check(tmp_path):
    import papermill as pm

    nb = next(p for p in NOTEBOOKS if p.name.startswith("05"))
    name, value, message = WRONG_PARAMETER["05"]
    with pytest.raises(pm.PapermillExecutionError) as err:
        run_course.run_notebook(nb, parameters={name: value}, out_dir=tmp_path)
    assert err.value.ename == "TypeError"
    assert f"parameter {name} must be {message}" in err.value.evalue
    assert err.value.exec_count <= 3, "the check must come before any work"
