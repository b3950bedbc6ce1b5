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


ladder_spec = importlib.util.spec_from_file_location("oom_ladder_bench",
                                                     paths.PROJECT_ROOT / "bench" / "oom_ladder_bench.py")
ladder = importlib.util.module_from_spec(ladder_spec)
ladder_spec.loader.exec_module(ladder)


def test_ladder_settings_are_the_notebook_tables():
    from helpers import memory

    keys = [memory.config_key(s) for s in ladder.distinct_settings()]
    wanted = {memory.config_key(c) for _, c in memory.ladder_configs()} | {
        memory.config_key(c) for *_, c in memory.batch_configs()}
    assert len(keys) == len(set(keys)) == len(wanted) == 8 and set(keys) == wanted
    assert [s["r"] for s in ladder.distinct_settings()] == [16] * 7 + [8]  # one process per rank


def test_ladder_worker_trains_with_sfttrainer(tmp_path, tiny_model_dir):
    folder = bench.make_random_model(tmp_path / "model", bench.SHAPE_SMOKE, log=lambda *_: None)
    rows = ladder.run(str(folder), rank=8, seq_div=16)
    assert len(rows) == 1 and rows[0]["ok"] and rows[0]["steps"] == ladder.STEPS and rows[0]["seq_run"] == 64
    assert rows[0]["peak_gib"] > 0 and rows[0]["route"] == "bnb-cpu"
    md = ladder.markdown({"device": "cpu", "shape": bench.SHAPE_SMOKE, "route": "bnb-cpu", "when": "today"}, rows)
    from helpers import memory

    est = memory.estimate(memory.QWEN3_4B, **rows[0]["settings"])["total"]
    assert f"| 3. lower r 16 → 8 (and alpha) | {est:.2f} | {rows[0]['peak_gib']:.2f} |" in md
    assert md.count("– (see below)") == 9  # the other rungs were not run here


breakdown_spec = importlib.util.spec_from_file_location("peak_breakdown",
                                                        paths.PROJECT_ROOT / "bench" / "peak_breakdown.py")
breakdown = importlib.util.module_from_spec(breakdown_spec)
breakdown_spec.loader.exec_module(breakdown)


def test_peak_breakdown_replays_the_allocator_trace():
    mlp = [{"filename": "/x/site-packages/torch/nn/functional.py", "line": 1, "name": "silu"},
           {"filename": "/x/unsloth/kernels/fast_lora.py", "line": 70, "name": "forward"},
           {"filename": "/x/transformers/models/qwen3/modeling_qwen3.py", "line": 300, "name": "forward"}]
    head = [{"filename": "/x/unsloth_zoo/fused_losses/cross_entropy_loss.py", "line": 9, "name": "chunk"}]
    trace = [{"action": "alloc", "addr": 1, "size": 100, "frames": mlp},
             {"action": "alloc", "addr": 2, "size": 5, "frames": head},
             {"action": "free_completed", "addr": 2, "size": 5},
             {"action": "alloc", "addr": 3, "size": 30, "frames": mlp},
             {"action": "alloc", "addr": 4, "size": 10, "frames": []},  # the peak: 1000 + 140
             {"action": "free_requested", "addr": 1, "size": 100},  # not yet free: ignored
             {"action": "free_completed", "addr": 1, "size": 100},
             {"action": "free_completed", "addr": 99, "size": 500},  # a block held from before the step
             {"action": "alloc", "addr": 5, "size": 400, "frames": head}]  # 1000 + 40 - 500 + 400: below the peak
    r = breakdown.replay(trace, before=1000)
    gib = breakdown.GIB
    assert (r["before_gib"], r["peak_gib"], r["step_gib"]) == (1000 / gib, 1140 / gib, 140 / gib)
    assert [(g["site"], round(g["gib"] * gib), g["blocks"]) for g in r["groups"]] == [
        ("fast_lora.py:70 forward", 130, 2), ("autograd engine (no Python frame: a built-in op's backward)", 10, 1)]
    assert r["peak_during"] == []  # the peak block had no frames
    assert breakdown.site(mlp[:1]) == "torch silu"
    generated = {"filename": "/tmp/torchinductor_root/ab/cabc123.py", "line": 12, "name": "call"}
    assert breakdown.site([generated, *mlp[1:]]) == "compiled <- fast_lora.py:70 forward"


ab_spec = importlib.util.spec_from_file_location("mlp_ab_bench", paths.PROJECT_ROOT / "bench" / "mlp_ab_bench.py")
mlp_ab = importlib.util.module_from_spec(ab_spec)
ab_spec.loader.exec_module(mlp_ab)


def test_mlp_ab_plan():
    assert mlp_ab.parse_plan("4x1024:traced,16x1024:eager") == [("4x1024", "traced"), ("16x1024", "eager")]
    with pytest.raises(ValueError, match="'4x1024:fast'.*traced' or 'eager"):
        mlp_ab.parse_plan("4x1024:fast")
    with pytest.raises(ValueError, match="'4by1024:eager'.*BxS"):
        mlp_ab.parse_plan("4by1024:eager")


def test_committed_mlp_ab_backs_the_eager_mlp():
    """What helpers.train's eager fused MLP rests on, in the committed H200 A/B runs: at every shape
    eager peaks no higher than traced (to 0.01 GiB) and runs within 10 % of its speed or faster."""
    from helpers import memory

    runs = memory.load_results("mlp_ab")
    assert [r["name"] for r in runs] == ["mlp_ab-longest1024", "mlp_ab-longest4096"]
    for run in runs:
        assert [f"{r['shape']}:{r['mlp']}" for r in run["rows"]] == run["meta"]["plan"].split(",")
        for shape in {r["shape"] for r in run["rows"]}:
            by = {m: [r for r in run["rows"] if r["shape"] == shape and r["mlp"] == m] for m in ("eager", "traced")}
            assert by["eager"] and by["traced"], (run["name"], shape)
            assert max(r["peak_gib"] for r in by["eager"]) <= min(r["peak_gib"] for r in by["traced"]) + 0.01
            mean = {m: sum(r["tokens_per_s"] for r in rows) / len(rows) for m, rows in by.items()}
            assert mean["eager"] >= 0.9 * mean["traced"], (run["name"], shape, mean)
    assert {b["name"] for b in memory.load_results("peak_breakdown")} == {
        f"peak_breakdown-{p}" for p in ("course-16x1024", "course-16x1024-compiled-mlp", "course-tiled-16x1024")}


pipe_spec = importlib.util.spec_from_file_location("pipeline_bench", paths.PROJECT_ROOT / "bench" / "pipeline_bench.py")
pipe = importlib.util.module_from_spec(pipe_spec)
pipe_spec.loader.exec_module(pipe)


def _pipe_row(path, tps, peak=5.0, preset=None):
    return {"path": path, "ok": True, "tokens_per_s": tps, "peak_gib": peak, "preset": preset,
            "cap_gib": pipe.PRESET_CAPS[preset][0] if preset else None}


@pytest.mark.parametrize("course, packed, padded, synthetic, missed", [
    ((13000, 5.5), 4000, 1500, 18000, []),
    ((11000, 5.5), 3000, 1000, 15000, ["real tok/s"]),
    ((13000, 6.5), 4000, 1500, 18000, ["GiB"]),
    ((13000, 5.5), 4500, 1500, 18000, ["plain-packed"]),
    ((13000, 5.5), 4000, 1700, 18000, ["plain-padded"]),
    ((13000, 5.5), 4000, 1500, 21000, ["synthetic"]),
])
def test_pipeline_targets(course, packed, padded, synthetic, missed):
    rows = [_pipe_row("course", *course), _pipe_row("plain-packed", packed), _pipe_row("plain-padded", padded)]
    problems = pipe.check(rows, synthetic, smoke=False)
    assert len(problems) == len(missed) and all(m in p for m, p in zip(missed, problems)), problems
    assert pipe.check(rows, synthetic, smoke=True) == []


def test_preset_ceiling_and_failed_rows():
    rows = [_pipe_row("course", 13000, 14.5, preset="gpu-16gb"), _pipe_row("course", 13000, 20.0, preset="gpu-24gb"),
            {"ok": False, "path": "course", "preset": "gpu-80gb", "error": "OutOfMemoryError: CUDA out of memory"}]
    problems = pipe.check(rows, None, smoke=False)
    assert problems == ["course: OutOfMemoryError: CUDA out of memory", "gpu-16gb peaks at 14.50 GiB: ceiling 14.0 GiB"]
    md = pipe.markdown({"title": "t", "device": "d", "what": "w"}, rows[2:], problems)
    assert "| course | gpu-80gb | failed: OutOfMemoryError" in md and "ceiling 14.0 GiB" in md


def test_summarize_skips_the_warmup_steps():
    marks = [(0.0, 100, 50, 100), (10.0, 200, 100, 200), (11.0, 1200, 600, 1300), (13.0, 3200, 1600, 3500)]
    got = pipe.summarize(marks, warmup=2)
    assert got["timed_steps"] == 2 and got["tokens_per_s"] == (3200 - 200) / 3.0
    assert got["trained_tokens_per_s"] == 500.0 and got["padding_frac"] == 1 - 3000 / 3300


def test_realistic_chats_have_long_tails():
    rows = pipe.realistic_chats(400, seed=1)
    assert len(rows) == 400 and rows == pipe.realistic_chats(400, seed=1)
    replies = sorted(len(m["content"].split()) for r in rows for m in r["messages"] if m["role"] == "assistant")
    median = replies[len(replies) // 2]
    assert 150 < median < 400 and replies[-1] > 4 * median
    assert all(r["messages"][-1]["role"] == "assistant" for r in rows)


def test_committed_pipeline_results_show_the_targets():
    """The committed course-mix run: the course route at ≥ 12,000 real tok/s in ≤ 6 GiB, ≥ 3× plain packed,
    ≥ 8× plain padded, one flash varlen call per layer per forward; gpu-16gb ≤ 14 GiB under its 16 GiB cap."""
    from helpers import memory

    runs = {r["name"]: r for r in memory.load_results("pipeline_bench")}
    course_mix = runs["pipeline_bench-course-mix"]
    assert course_mix["problems"] == pipe.check(course_mix["rows"], course_mix["meta"]["synthetic_16x1024_tokens_per_s"],
                                                smoke=False) == []
    by = {r["path"]: r for r in course_mix["rows"]}
    assert set(by) == set(pipe.PATHS) and by["course"]["attention"].startswith("flash-varlen")
    layers = course_mix["meta"]["shape"]["num_hidden_layers"]
    assert by["course"]["flash_varlen_calls"] == 2 * layers * by["course"]["steps"]  # forward + checkpointed recompute
    presets = {r["preset"]: r for r in memory.load_results("presets")[0]["rows"]}
    assert presets["gpu-16gb"]["cap_gib"] == 16 and presets["gpu-16gb"]["peak_gib"] <= 14.0
    from helpers.train_config import resolve_preset

    for name, r in presets.items():  # the committed measurement is of the presets as they stand
        p = resolve_preset(name)
        assert (r["batch"], r["grad_accum"], r["max_length"]) == (p["batch_size"], p["grad_accum"], p["max_length"])
