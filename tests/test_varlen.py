"""helpers.packed_attention: one varlen call per packed row (CPU: a stand-in kernel; GPU: torch's flash
kernel against per-segment SDPA, and through unsloth), and environment's unsloth-first import order."""
import sys
import types
import warnings

import pytest
import torch
import torch.nn.functional as F

from helpers import environment, packed_attention as pa

CUDA = torch.cuda.is_available()
gpu = pytest.mark.skipif(not CUDA, reason="torch's flash kernel needs a CUDA GPU")


def _segments(q, k, v, lengths):
    """Per-segment causal SDPA reference: (T, H, D) out, each sample attended on its own."""
    outs, start = [], 0
    for n in lengths:
        s = slice(start, start + n)
        outs.append(F.scaled_dot_product_attention(
            q[s].transpose(0, 1), k[s].transpose(0, 1), v[s].transpose(0, 1), is_causal=True,
            enable_gqa=q.shape[1] != k.shape[1]).transpose(0, 1))
        start += n
    return torch.cat(outs)


def _positions(lengths, rows=1):
    ids = torch.cat([torch.arange(n) for n in lengths])
    return ids.reshape(rows, -1)


def test_cu_seqlens_from_the_collators_packed_position_ids():
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    collate = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)
    rows = [{"input_ids": list(range(1, 10)), "seq_lengths": [4, 5]}, {"input_ids": list(range(1, 8)), "seq_lengths": [1, 6]}]
    batch = collate(rows)
    cu, longest = pa.cu_seqlens(batch["position_ids"])
    assert cu.dtype == torch.int32 and cu.tolist() == [0, 4, 9, 10, 16] and longest == 6
    with pytest.raises(ValueError, match="start each packed row with 0"):
        pa.cu_seqlens(torch.tensor([[1, 2, 0, 1]]))


def test_one_kernel_call_per_row_with_kv_heads_uncopied():
    lengths, heads, kv_heads, dim = [3, 1, 7, 5], 4, 2, 8
    total = sum(lengths)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, total, h, dim, generator=g) for h in (heads, kv_heads, kv_heads))
    seen = []

    def stand_in(q_, k_, v_, cu, longest, causal, scale, window):  # the flash kernel's arguments, computed on CPU
        seen.append((k_.shape, k_.data_ptr(), v_.data_ptr(), cu.tolist(), longest, causal, window))
        per = (cu[1:] - cu[:-1]).tolist()
        return _segments(q_, k_, v_, per)

    out = pa.packed_attention(q, k, v, _positions(lengths), kernel=stand_in)
    assert len(seen) == 1, "one kernel call for the whole packed row"
    assert seen[0] == ((total, kv_heads, dim), k.data_ptr(), v.data_ptr(), [0, 3, 4, 11, 16], 7, True, {})
    torch.testing.assert_close(out[0], _segments(q[0], k[0], v[0], lengths))


def test_varlen_attention_refuses_what_the_kernel_cannot_do():
    q, k = torch.zeros(4, 4, 8), torch.zeros(4, 2, 8)
    cu = torch.tensor([0, 4], dtype=torch.int32)
    with pytest.raises(ValueError, match="enable_gqa=True"):
        pa.varlen_attention(q, k, k, cu, cu, 4, 4)
    with pytest.raises(ValueError, match="not a multiple"):
        pa.varlen_attention(q, torch.zeros(4, 3, 8), torch.zeros(4, 3, 8), cu, cu, 4, 4, enable_gqa=True)
    got = []
    pa.varlen_attention(q, k, k, cu, cu, 4, 4, enable_gqa=True, window_size=(2, 0),
                        kernel=lambda *a: got.append(a[5:]))
    assert got == [(True, None, {"window_size_left": 2, "window_size_right": 0})]


def test_version_problem_names_both_versions(monkeypatch):
    monkeypatch.setattr(pa, "version", lambda name: "2026.11.2")
    monkeypatch.setattr(torch, "__version__", "2.11.0+cu130")
    msg = pa.version_problem()
    assert "unsloth 2026.11.2" in msg and f"unsloth {pa.PINNED_UNSLOTH}" in msg and "torch 2.11.0+cu130" in msg
    monkeypatch.setattr(pa, "version", lambda name: pa.PINNED_UNSLOTH)
    assert pa.version_problem() is None
    monkeypatch.setattr(torch, "__version__", "2.12.1")
    assert pa.version_problem() is None  # unsloth's own varlen route takes grouped-query heads there


@pytest.fixture
def fake_dispatch(monkeypatch):
    """A stand-in for unsloth.utils.attention_dispatch with the names install() and attention_route() read."""
    ad = types.SimpleNamespace(_TORCH_VARLEN_ATTN=None, _LEAN_VARLEN=False, HAS_FLASH_ATTENTION=False, XFORMERS="xformers",
                               _torch_varlen_packed=None, _varlen_attn_call=None, _sdpa_packed_segments=None,
                               select_attention_backend=lambda use_varlen=False: "sdpa")
    utils = types.SimpleNamespace(attention_dispatch=ad)
    for name, mod in {"unsloth": types.SimpleNamespace(utils=utils), "unsloth.utils": utils,
                      "unsloth.utils.attention_dispatch": ad}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(pa, "VERSION_PROBLEM", None)
    monkeypatch.setitem(pa._STATE, "problem", None)
    return ad


def test_install_falls_back_with_one_line_naming_what_is_missing(fake_dispatch, monkeypatch):
    del fake_dispatch._LEAN_VARLEN
    with pytest.warns(UserWarning, match="has no _LEAN_VARLEN .*per-segment SDPA") as got:
        route = pa.install()
    assert len(got) == 1 and route.name == "per-segment-sdpa" and "_LEAN_VARLEN" in route.reason
    assert fake_dispatch._TORCH_VARLEN_ATTN is None  # nothing patched
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pa.install()  # the same problem warns once


@pytest.mark.skipif(CUDA, reason="checks the no-kernel fallback of a CPU machine")
def test_install_without_a_kernel_says_so(fake_dispatch):
    with pytest.warns(UserWarning, match="CUDA GPU of compute capability 8.0"):
        assert pa.install().name == "per-segment-sdpa"


def test_attention_route_reads_the_dispatch(fake_dispatch):
    assert "install() has not run" in pa.attention_route("unsloth").reason
    fake_dispatch._TORCH_VARLEN_ATTN = pa.varlen_attention
    assert pa.attention_route("unsloth").name == "flash-varlen"
    fake_dispatch._TORCH_VARLEN_ATTN = object()
    assert pa.attention_route("unsloth").name == "torch-varlen"
    fake_dispatch.HAS_FLASH_ATTENTION = True
    assert pa.attention_route("unsloth").name == "flash-attn"
    assert pa.attention_route("bnb-cuda").name == "sdpa-block-mask"


def test_import_first_runs_the_target_once(tmp_path, monkeypatch):
    (tmp_path / "course_fake_target.py").write_text("import sys\nsys.course_fake_runs = getattr(sys, 'course_fake_runs', 0) + 1\n")
    (tmp_path / "course_fake_first.py").write_text("import course_fake_target\nLOADED_FIRST = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    order = []

    def first():
        import course_fake_first  # noqa: F401  (imports the target itself)

        order.append("first")

    finder = environment.ImportFirst(first, names=("course_fake_target",))
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    try:
        import course_fake_target

        assert order == ["first"] and sys.course_fake_runs == 1 and finder not in sys.meta_path
        assert course_fake_target.__spec__.origin == str(tmp_path / "course_fake_target.py")
        assert "course_fake_first" in sys.modules
    finally:
        for name in ("course_fake_target", "course_fake_first"):
            sys.modules.pop(name, None)
        del sys.course_fake_runs


def test_import_unsloth_first_respects_the_switch(monkeypatch):
    monkeypatch.setenv(environment.UNSLOTH_FIRST_ENV, "0")
    assert environment.import_unsloth_first() is False


# ----------------------------------------------------------------------------- GPU: the real kernel
def _packed(lengths, heads=32, kv_heads=8, dim=128, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    return [torch.randn(sum(lengths), h, dim, device="cuda", dtype=torch.bfloat16, generator=g).requires_grad_()
            for h in (heads, kv_heads, kv_heads)]


LENGTHS = [1, 37, 512, 100, 100, 100, 900, 2, 396]


@gpu
def test_flash_varlen_matches_per_segment_sdpa():
    q, k, v = _packed(LENGTHS)
    cu = torch.tensor([0, *torch.tensor(LENGTHS).cumsum(0).tolist()], dtype=torch.int32, device="cuda")
    out = pa.varlen_attention(q, k, v, cu, cu, max(LENGTHS), max(LENGTHS), window_size=(-1, 0), enable_gqa=True)
    grad = torch.randn_like(out)
    got = [out, *torch.autograd.grad(out, (q, k, v), grad)]
    ref_out = _segments(q, k, v, LENGTHS)
    want = [ref_out, *torch.autograd.grad(ref_out, (q, k, v), grad)]
    for name, a, b in zip(("out", "dq", "dk", "dv"), got, want):
        rel = ((a.float() - b.float()).norm() / b.float().norm()).item()
        assert rel < 1e-2, (name, rel)


@gpu
def test_flash_varlen_keeps_samples_apart():
    q, k, v = _packed(LENGTHS)
    cu = torch.tensor([0, *torch.tensor(LENGTHS).cumsum(0).tolist()], dtype=torch.int32, device="cuda")
    run = lambda q_, k_, v_: pa.varlen_attention(q_, k_, v_, cu, cu, 900, 900, window_size=(-1, 0), enable_gqa=True)
    other = slice(38, 550)  # the third sample
    q2, k2, v2 = (x.detach().clone() for x in (q, k, v))
    for x in (q2, k2, v2):
        x[other] = torch.randn_like(x[other])
    a, b = run(q, k, v), run(q2, k2, v2)
    keep = torch.ones(sum(LENGTHS), dtype=torch.bool, device="cuda")
    keep[other] = False
    assert torch.equal(a[keep], b[keep]), "changing one sample changed another's output"
    assert not torch.equal(a[other], b[other])
    dq, dk, dv = torch.autograd.grad(a[keep].float().sum(), (q, k, v))
    assert all(d[other].abs().max().item() == 0 for d in (dq, dk, dv)), "gradient leaked into the third sample"


@gpu
@pytest.mark.skipif(not environment.unsloth_available(), reason="the unsloth route")
def test_unsloth_route_one_call_per_layer_equal_to_per_segment(tmp_path, monkeypatch):
    import importlib.util

    from helpers import paths, train

    spec = importlib.util.spec_from_file_location("gpu_shape_bench", paths.PROJECT_ROOT / "bench" / "gpu_shape_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    shape = dict(bench.SHAPE_SMOKE, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=3)
    folder = bench.make_random_model(tmp_path / "model", shape, log=lambda *_: None)
    cfg = train.TrainConfig(model=str(folder), max_length=512, dropout=0.0)
    model, tok, path = train.build_model(cfg)
    assert path.name == "unsloth" and pa.attention_route("unsloth").name == "flash-varlen"
    lengths = [5, 60, 60, 200, 7, 180]
    ids = torch.randint(0, 150000, (1, sum(lengths)), generator=torch.Generator().manual_seed(1)).cuda()
    pos = _positions(lengths).cuda()
    packed = torch.tensor(lengths, dtype=torch.int32)  # what unsloth's collator wrapper adds beside position_ids
    from unsloth.utils import attention_dispatch as ad

    def step():
        model.zero_grad(set_to_none=True)
        before = pa.CALLS["flash_varlen"]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=ids, position_ids=pos, packed_seq_lengths=packed).logits.float()
        calls = pa.CALLS["flash_varlen"] - before
        logits.logsumexp(-1).mean().backward()
        grads = torch.cat([p.grad.float().reshape(-1) for p in model.parameters() if p.grad is not None])
        return logits.detach(), grads, calls

    varlen = step()
    assert varlen[2] == shape["num_hidden_layers"], "one varlen call per layer in the forward"
    monkeypatch.setattr(ad, "_TORCH_VARLEN_ATTN", None)  # unsloth's per-segment route
    segments = step()
    assert segments[2] == 0
    rel = lambda a, b: ((a - b).norm() / b.norm()).item()
    assert rel(varlen[0], segments[0]) < 1e-2 and rel(varlen[1], segments[1]) < 3e-2
    start = sum(lengths[:3])
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        alone = model(input_ids=ids[:, start:start + 200]).logits.float()  # the fourth sample on its own
    assert rel(varlen[0][:, start:start + 200], alone) < 1e-2

