"""The tiny-qwen3 tokenizer is the real Qwen3 tokenizer: ids, round trips, tiktoken parity, template."""
import random
import unicodedata

import pytest

from helpers import templates
from helpers.tiny_qwen3 import tokenizer as fx

KNOWN = {"Hello world": [9707, 1879], "你好": [108386], "<|im_start|>user\n": [151644, 872, 198], "\n\n": [271]}

PIECES = [
    "Hello", " world", "你好", "，世界", "数学题", "小明有5个苹果", "😀", "🎉🎉", "👩‍💻", "🇨🇦", "def f(x):\n    return x**2\n",
    "for i in range(10): print(i)", "  ", "\t", "\n", "\n\n\n", " \n ", "   leading", "trailing   ", "It's", "we'LL",
    "I'm", "123456789", "3.14159", "1,000,000", "e\u0301", "Å", "ﬁ", "Ωmega", "naïve café", "日本語のテキスト",
    "한국어", "русский", "<b>html</b>", '{"a": 1}', "a+b=c", "¯\\_(ツ)_/¯", "\r\n", "tab\tsep", "😀😀😀 ok",
]


def mixed_strings(n=240, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 8))) for _ in range(n)]


@pytest.mark.parametrize("text,ids", KNOWN.items())
def test_known_encodings(tok, text, ids):
    assert tok.encode(text, add_special_tokens=False) == ids


def test_added_tokens_at_their_ids_with_flags(tok):
    decoder = tok.added_tokens_decoder
    assert len(fx.ADDED_TOKENS) == 26
    for offset, content in enumerate(fx.ADDED_TOKENS):
        idx = fx.FIRST_ADDED_ID + offset
        assert decoder[idx].content == content
        assert decoder[idx].special is (idx <= 151656), content
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == 151645
    assert tok.pad_token == "<|endoftext|>" and tok.pad_token_id == 151643
    assert tok.convert_tokens_to_ids("<think>") == 151667 and tok.convert_tokens_to_ids("</think>") == 151668


def test_round_trip(tok):
    strings = mixed_strings()
    assert len(strings) >= 200
    bad = [s for s in strings if tok.decode(tok.encode(s, add_special_tokens=False)) != unicodedata.normalize("NFC", s)]
    assert not bad, f"{len(bad)} strings do not round-trip, e.g. {bad[0]!r}"


def test_matches_tiktoken_with_same_ranks(tok):
    import tiktoken  # pinned in requirements.txt: a missing package must fail this test, not skip it
    from tiktoken.load import load_tiktoken_bpe

    enc = tiktoken.Encoding(
        "qwen", pat_str=fx.QWEN_SPLIT_REGEX, mergeable_ranks=load_tiktoken_bpe(str(fx.ranks_path())),
        special_tokens={t: fx.FIRST_ADDED_ID + i for i, t in enumerate(fx.ADDED_TOKENS)},
    )
    strings = mixed_strings()
    mismatches = [s for s in strings
                  if enc.encode(unicodedata.normalize("NFC", s)) != tok.encode(s, add_special_tokens=False)]
    assert mismatches == []
    # the NFC normaliser really runs: a decomposed é encodes like the composed one
    assert tok.encode("e\u0301") == tok.encode("\u00e9")


@pytest.mark.parametrize("generation_prompt", [False, True])
def test_chat_template_equals_trl_file_rendered_by_jinja(tok, generation_prompt):
    source = fx.trl_template("qwen3_instruct_2507")
    assert tok.chat_template == source
    examples = templates.load_examples()
    assert len(examples) >= 5
    for ex in examples.values():
        assert templates.render(tok, ex, add_generation_prompt=generation_prompt) == \
            templates.render_with_jinja(source, ex, add_generation_prompt=generation_prompt), ex["id"]


def test_tokenizer_build_is_byte_identical(tmp_path):
    fx.build_tokenizer(tmp_path / "a")
    fx.build_tokenizer(tmp_path / "b")
    for f in (tmp_path / "a").iterdir():
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name
