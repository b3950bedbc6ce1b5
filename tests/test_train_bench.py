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
    rows = [_row("course", *course), _row(bench.TARGET_BASELINE, *plain), _row("plain", 20000, 1.0)]
    problems = bench.check(rows, sft, smoke=False)
    assert len(problems) == len(missed) and all(m in p for m, p in zip(missed, problems))
    assert bench.check(rows, sft, smoke=True) == []


def test_ratios_and_tiling_check():
    rows = [_row("course", 18000, 6.0), _row("course-tiled", 12000, 5.0), _row("plain", 9000, 40.0),
            _row("plain-no-amp", 4500, 40.0)]
    got = {(t["course"], t["plain"]): (t["speedup"], t["memory_share"]) for t in bench.ratios(rows)}
    assert got == {("course", "plain"): (2.0, 0.15), ("course", "plain-no-amp"): (4.0, 0.15),
                   ("course-tiled", "plain"): (12000 / 9000, 0.125), ("course-tiled", "plain-no-amp"): (12000 / 4500, 0.125)}
    for r, loss, grad in zip(rows, (12.0, 12.0, 12.1, 12.2), (0.45, 0.45, 0.4, 0.5)):
        r.update(first_loss=loss, first_grad_norm=grad)
    assert bench.tiling_mismatches(rows) == []  # plain rows may differ: another optimiser and dtype
    rows[1]["first_grad_norm"] = 0.47
    assert bench.tiling_mismatches(rows) == [
        f"tiled MLP changes step 1 at {bench.TARGET_SHAPE}: loss 0.00e+00 apart, grad norm 4.44% apart"]
