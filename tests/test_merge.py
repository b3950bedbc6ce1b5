"""helpers.merge and helpers.serve: merge into full precision, prove it, refuse bad input, serve."""
import json
import shlex
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch
from safetensors.torch import load_file

import helpers
from helpers import adapters, merge, paths, serve

TINY = "tiny-qwen3"
PROMPTS = [[{"role": "user", "content": "What is 2 + 3?"}],
           [{"role": "user", "content": "Output only a JSON object with name (string). name=Alice."}],
           [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "你好，介绍一下你自己。"}]]


@pytest.fixture(scope="module")
def adapter_a(tmp_path_factory, tiny_model_dir):
    return adapters.demo_adapter(TINY, tmp_path_factory.mktemp("adapters") / "a", seed=0)


@pytest.fixture(scope="module")
def adapter_b(tmp_path_factory, tiny_model_dir):
    return adapters.demo_adapter(TINY, tmp_path_factory.mktemp("adapters") / "b", seed=1)


@pytest.fixture(scope="module")
def merged_dir(tmp_path_factory, adapter_a):
    return merge.merge(TINY, adapter_a, tmp_path_factory.mktemp("out") / "merged", max_shard_size="20MB")


@pytest.fixture(scope="module")
def reference(adapter_a):
    """Logits of the fp32 base alone and of base + adapter (unmerged)."""
    peft_model, tok = merge.base_with_adapter(TINY, adapter_a)
    with_adapter = merge.prompt_logits(peft_model, tok, PROMPTS)
    with peft_model.disable_adapter():
        base = merge.prompt_logits(peft_model, tok, PROMPTS)
    return {"base": base, "adapter": with_adapter, "model": peft_model, "tok": tok}


def test_demo_adapter_is_marked_and_changes_the_model(adapter_a, reference):
    assert adapters.is_demo(adapter_a)
    weights = load_file(str(adapter_a / "adapter_model.safetensors"))
    b = [w for k, w in weights.items() if "lora_B" in k]
    assert b and all(w.abs().max() > 0 for w in b), "a demo adapter needs non-zero B to change anything"
    shift = merge.logits_diff(reference["adapter"], reference["base"])["max_abs_diff"]
    assert shift > 100 * merge.TOLERANCE[torch.float32]


def test_merged_folder_is_a_plain_sharded_model(merged_dir):
    names = {p.name for p in merged_dir.iterdir()}
    shards = sorted(merged_dir.glob("model-*.safetensors"))
    assert len(shards) >= 2 and "model.safetensors.index.json" in names
    assert {"config.json", "generation_config.json", "tokenizer_config.json", "tokenizer.json"} <= names
    keys = set(json.loads((merged_dir / "model.safetensors.index.json").read_text())["weight_map"])
    assert not [k for k in keys if "lora" in k or "base_layer" in k]
    model = merge.load_merged(merged_dir)
    assert type(model).__name__ == "Qwen3ForCausalLM" and not hasattr(model, "peft_config")
    tok = helpers.load_tokenizer(str(merged_dir))
    assert tok.encode("Hello world") == [9707, 1879]


def test_merged_weight_is_w_plus_scaled_ba(merged_dir, adapter_a, tiny_model_dir):
    """Independent of PEFT's merge: W' = W + (alpha / r) · B · A, read from the files."""
    cfg = json.loads((adapter_a / "adapter_config.json").read_text())
    lora = load_file(str(adapter_a / "adapter_model.safetensors"))
    a = next(w for k, w in lora.items() if "layers.1.mlp.down_proj.lora_A" in k)
    b = next(w for k, w in lora.items() if "layers.1.mlp.down_proj.lora_B" in k)
    name = "model.layers.1.mlp.down_proj.weight"
    base = helpers.load_model(TINY).state_dict()[name]
    merged = merge.load_merged(merged_dir).state_dict()[name]
    expected = base + cfg["lora_alpha"] / cfg["r"] * (b @ a)
    assert torch.allclose(merged, expected, atol=1e-6)
    assert not torch.allclose(merged, base, atol=1e-4)


def test_merged_logits_and_greedy_match_base_plus_adapter(merged_dir, reference):
    merged = merge.load_merged(merged_dir)
    got = merge.prompt_logits(merged, reference["tok"], PROMPTS)
    diff = merge.logits_diff(got, reference["adapter"])
    assert diff["max_abs_diff"] < merge.TOLERANCE[torch.float32] and diff["argmax_agree"] == 1.0
    assert merge.effect_error(reference["base"], reference["adapter"], got) < 1e-4
    want = merge.greedy(reference["model"], reference["tok"], PROMPTS, max_new_tokens=16)
    assert merge.greedy(merged, reference["tok"], PROMPTS, max_new_tokens=16) == want


def test_existing_output_is_refused_unless_overwrite(merged_dir, adapter_a):
    before = sorted(p.name for p in merged_dir.iterdir())
    with pytest.raises(FileExistsError, match="overwrite=True"):
        merge.merge(TINY, adapter_a, merged_dir)
    assert sorted(p.name for p in merged_dir.iterdir()) == before
    stale = merged_dir / "model-00009-of-00009.safetensors"
    stale.write_bytes(b"stale")
    merge.merge(TINY, adapter_a, merged_dir, overwrite=True, max_shard_size="20MB")
    assert not stale.exists() and sorted(p.name for p in merged_dir.iterdir()) == before


def test_overwrite_never_deletes_a_folder_that_is_not_a_model(tmp_path, adapter_a):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    with pytest.raises(FileExistsError, match="not deleting"):
        merge.merge(TINY, adapter_a, tmp_path, overwrite=True)
    assert keep.read_text() == "mine"


def test_adapter_from_another_base_gives_a_clear_error(tmp_path, tiny_model_dir):
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(str(tiny_model_dir))
    cfg.hidden_size, cfg.intermediate_size = 64, 192
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(str(tmp_path / "other-base"))
    helpers.load_tokenizer(TINY).save_pretrained(str(tmp_path / "other-base"))
    foreign = adapters.demo_adapter(str(tmp_path / "other-base"), tmp_path / "foreign")
    with pytest.raises(ValueError, match="does not fit this model") as err:
        merge.merge(TINY, foreign, tmp_path / "merged")
    assert "size mismatch" in str(err.value) and "hidden size 128" in str(err.value)
    assert not (tmp_path / "merged").exists()


def test_merging_into_4bit_loses_much_of_the_update(adapter_a, tiny_model_dir):
    r = merge.merge_into_4bit(TINY, adapter_a, PROMPTS)
    assert r["layers"] == 4 * 7
    assert r["delta_rel_error"] > 0.2, r  # the full-precision merge: ~1e-7
    assert r["effect_error"] > 0.1
    assert r["logits_vs_unmerged"]["max_abs_diff"] > 1000 * merge.TOLERANCE[torch.float32]
    assert r["peft_warnings"]


def test_set_adapter_switches_between_two_adapters(adapter_a, adapter_b, reference):
    from helpers import adapters

    model, tok = merge.base_with_adapter(TINY, adapter_a, name="a")
    adapters.attach(model, adapter_b, name="b")
    model.set_adapter("a")
    la = merge.prompt_logits(model, tok, PROMPTS)
    model.set_adapter("b")
    lb = merge.prompt_logits(model, tok, PROMPTS)
    assert merge.logits_diff(la, reference["adapter"])["max_abs_diff"] < merge.TOLERANCE[torch.float32]
    assert merge.logits_diff(la, lb)["max_abs_diff"] > 100 * merge.TOLERANCE[torch.float32]
    rows = merge.adapter_replies(model, tok, PROMPTS, max_new_tokens=12)
    assert set(rows[0]) == {"prompt", "base", "a", "b"}
    assert any(r["a"] != r["b"] for r in rows)


def test_pick_adapter_prefers_trained_then_makes_a_labelled_demo(tmp_path, monkeypatch, adapter_a):
    import shutil

    monkeypatch.setattr(paths, "CHECKPOINTS", tmp_path)
    said = []
    demo = adapters.pick_adapter("", TINY, run="t", log=said.append)
    assert adapters.is_demo(demo) and demo.parent == tmp_path and "UNTRAINED" in said[-1]
    trained = tmp_path / "sft-lora-x"
    shutil.copytree(adapter_a, trained)
    (trained / adapters.DEMO_MARK).unlink()
    assert adapters.pick_adapter("", TINY, run="t", log=said.append) == trained
    assert adapters.second_adapter(trained, TINY, run="t", log=said.append).name == "demo-lora-t-b"
    with pytest.raises(FileNotFoundError, match="adapter_config.json missing"):
        adapters.pick_adapter(str(tmp_path), TINY, run="t")


def test_run_adapter_prefers_the_runs_own_over_a_newer_one(tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(paths, "CHECKPOINTS", tmp_path)
    assert adapters.run_adapter("day2") is None
    for i, name in enumerate(("sft-lora-day2", "sft-lora-ddp-demo")):   # the DDP demo written last
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text("{}")
        os.utime(tmp_path / name / "adapter_config.json", (1000 + i, 1000 + i))
    assert adapters.newest_adapter() == tmp_path / "sft-lora-ddp-demo"
    assert adapters.run_adapter("day2") == tmp_path / "sft-lora-day2"
    assert adapters.run_adapter("other") == tmp_path / "sft-lora-ddp-demo"


def test_merged_dir_name():
    assert merge.merged_dir("r1") == paths.CHECKPOINTS / "merged-r1"
    with pytest.raises(ValueError):
        merge.merged_dir("a/b")


# ----------------------------------------------------------------------------- serving
def test_vllm_commands_parse_back_to_the_right_arguments(tmp_path):
    folder = tmp_path / "with space" / "merged-x"
    args = shlex.split(serve.vllm_merged_command(folder, max_model_len=4096).replace("\\\n", " "))
    assert args[:3] == ["vllm", "serve", str(folder)]
    assert args[args.index("--max-model-len") + 1] == "4096" and args.count("--max-model-len") == 1
    lora = shlex.split(serve.vllm_lora_command("unsloth/Qwen3-4B-Instruct-2507", folder, "sft", r=24)
                       .replace("\\\n", " "))
    assert lora[2] == "unsloth/Qwen3-4B-Instruct-2507" and "--enable-lora" in lora
    assert lora[lora.index("--lora-modules") + 1] == f"sft={folder}"
    assert lora[lora.index("--max-lora-rank") + 1] == "32"  # vLLM's next allowed cap above r=24
    assert [serve.lora_rank_cap(r) for r in (1, 8, 9, 64)] == [8, 8, 16, 64]
    with pytest.raises(ValueError):
        serve.lora_rank_cap(1024)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_probe_says_why_when_nothing_answers():
    ok, why = serve.probe(f"http://127.0.0.1:{_free_port()}/v1", timeout=0.5)
    assert not ok and "no OpenAI-compatible server" in why


class _FakeOpenAI(BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):
        self._send({"object": "list", "data": [{"id": "day2-merged", "object": "model"}]} if self.path == "/v1/models"
                   else None)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, body))
        text = f"echo: {body['messages'][-1]['content']}"
        self._send({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})

    def _send(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200 if payload is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_client_talks_to_an_openai_compatible_server():
    server = HTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        assert serve.probe(url) == (True, "day2-merged")
        reply = serve.chat(url, "day2-merged", [{"role": "user", "content": "hi"}], max_tokens=8)
    finally:
        server.shutdown()
    assert reply == "echo: hi"
    path, body = _FakeOpenAI.seen[-1]
    assert path == "/v1/chat/completions" and body["model"] == "day2-merged" and body["max_tokens"] == 8
