"""bench/gpu_shape_bench.py on CPU: the smoke shape builds, a worker measures, the checks can fail."""
import importlib.util

import pytest

from helpers import paths

spec = importlib.util.spec_from_file_location("gpu_shape_bench", paths.PROJECT_ROOT / "bench" / "gpu_shape_bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_smoke_worker_measures(tmp_path, tiny_model_dir):
    folder = bench.make_random_model(tmp_path / "model", bench.SHAPE_SMOKE, log=lambda *_: None)
    rows = [row for path in ("course", "plain") for row in bench.worker(path, str(folder), ["1x32"], steps=1, warmup=0)]
    assert len(rows) == 2 and all(r["ok"] for r in rows), rows
    for r in rows:
        assert r["route"] == "bnb-cpu" and r["tokens_per_s"] > 0 and r["peak_gib"] > 0 and r["estimate_gib"] > 0
    md = bench.markdown({"device": "cpu", "shape": bench.SHAPE_SMOKE, "when": "today", "steps": 1, "warmup": 0},
                        rows, None, bench.check(rows, None, smoke=True))
    # the course path keeps the course's 8-bit AdamW, the plain path Trainer's default
    assert "| course | bnb-cpu | adamw_8bit | 1x32 |" in md and "| plain | bnb-cpu | adamw_torch | 1x32 |" in md
    assert "SFTTrainer run did not complete" in md


def _row(path, tps, peak):
    return {"path": path, "route": "x", "shape": bench.TARGET_SHAPE, "batch": 16, "seq": 1024, "ok": True,
            "tokens_per_s": tps, "peak_gib": peak, "estimate_gib": 1.0, "mem_kind": "cuda"}


@pytest.mark.parametrize("course, plain, missed", [
    ((20000, 5.0), (4000, 40.0), []),
    ((10000, 5.0), (4000, 40.0), ["tok/s"]),
    ((20000, 8.0), (4000, 40.0), ["peak"]),
])
def test_target_check(course, plain, missed):
    sft = {"steps": 20}
    problems = bench.check([_row("course", *course), _row("plain", *plain)], sft, smoke=False)
    assert len(problems) == len(missed) and all(m in p for m, p in zip(missed, problems))
    assert bench.check([_row("course", *course), _row("plain", *plain)], sft, smoke=True) == []
