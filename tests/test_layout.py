"""The shape of ``helpers``: an acyclic import graph in layers, small modules, public names only,
and notebook 04's step headings in step with the pipeline's code."""
import ast
import importlib
import inspect
import re

import pytest

import helpers
from helpers import data, paths
from tools import run_course

HELPERS = paths.PROJECT_ROOT / "helpers"
MAX_LINES = 350
# Lower layers never import higher ones: the base, then loading models, then one module per
# notebook topic, then topics built on topics, then the notebook front-ends.
LAYERS = [
    {"names", "atomic", "paths", "params", "jsonl", "tool_schemas", "numbers", "conversation", "lora", "synthetic", "cpu_compat",
     "callbacks", "environment", "scoring", "exercises"},
    {"tiny_qwen3", "tiny_qwen3.cache", "tiny_qwen3.tokenizer", "tiny_qwen3.corpus", "tiny_qwen3.model",
     "tiny_qwen3.build", "models", "helpers"},
    {"templates", "tokens", "masks", "packing", "viz", "memory", "train_config", "distributed", "runs", "unsloth_patches", "packed_attention", "data.read",
     "data.row_checks", "data.manifest", "data.sources", "data.steps", "data.report", "data.pipeline", "data", "data.__main__"},
    {"train", "evaluate", "adapters", "merge", "chat", "serve"},
    {"widgets", "check", "check_training", "train_cli", "training_evals"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _name(path) -> str:
    rel = path.relative_to(HELPERS).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) or "helpers"


def _imports(path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import of a helpers module in ``path``, at any depth."""
    me = _name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package and package != "helpers" else []
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join(base + ([node.module] if node.module else []))
            names = [a.name for a in node.names]
            if not node.module:  # from . import x, y: each name is a module here
                found += [(".".join(base + [n]) or "helpers", []) for n in names]
            else:
                found.append((target or "helpers", names))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
            found.append((node.module.removeprefix("helpers.") if node.module != "helpers" else "helpers",
                          [a.name for a in node.names]))
    return found


MODULES = sorted(HELPERS.rglob("*.py"))
GRAPH = {_name(p): {t for t, _ in _imports(p) if t != _name(p)} for p in MODULES}


def test_every_module_has_a_layer():
    assert sorted(set(GRAPH) - set(LAYER)) == [], "add new modules to LAYERS"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_from_a_higher_layer(module):
    up = sorted(t for t in GRAPH[module] if t in LAYER and LAYER[t] > LAYER[module])
    assert up == [], f"{module} (layer {LAYER[module]}) imports {up}"


def test_import_graph_has_no_cycle():
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in GRAPH.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError(" → ".join(trail + [nxt]))
            if nxt in GRAPH and not state.get(nxt):
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in GRAPH:
        if not state.get(node):
            visit(node, [node])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(HELPERS)))
def test_modules_are_small_and_import_only_public_names(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES
    private = [(m, n) for m, names in _imports(path) for n in names if n.startswith("_")]
    assert private == [], f"imports private names {private}"


def test_intra_package_imports_sit_at_the_top():
    late = []
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level and id(node) not in top:
                late.append(f"{path.relative_to(HELPERS)}:{node.lineno}")
    assert late == []


def test_notebook_04_headings_follow_the_pipeline_steps():
    pipe = data.Pipeline()
    run = inspect.getsource(data.Pipeline.run)
    order = re.findall(r"self\.(\w+)", run.split("for step in", 1)[1].split("step()", 1)[0]) + ["validate"]
    numbered = [(int(re.match(r"Step (\d+):", getattr(pipe, m).__doc__).group(1)), m) for m in order]
    assert [n for n, _ in numbered] == list(range(1, 11))
    cells = run_course.cells(paths.PROJECT_ROOT / "notebooks" / "04_dataset.ipynb")
    headings = [re.match(r"## Step (\d+) · .*?\((.*)\)", "".join(c["source"]))
                for c in cells if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("## Step")]
    assert [int(h.group(1)) for h in headings] == list(range(1, 11))
    for (n, method), heading in zip(numbered, headings):
        first = re.findall(r"`(\w+)`", heading.group(2))[0]  # the step function the Pipeline method calls
        assert f".{first}(" in inspect.getsource(getattr(data.Pipeline, method)), (n, method, first)


@pytest.mark.parametrize("old", sorted(helpers.MOVED))
def test_an_old_import_path_names_the_new_module(old):
    with pytest.raises(ImportError, match=f"{old} has moved: use {re.escape(helpers.MOVED[old])}"):
        importlib.import_module(old)
