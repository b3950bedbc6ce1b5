"""Solutions to the notebook exercises (kept out of the student notebooks).

``ANSWERS[key]`` is a correct answer to ``helpers.check`` exercise ``key``; ``WRONG[key]``
is a plausible wrong one with the feedback it must get (the tests use both).
"""
ANSWERS = {
    "00.1": "bnb-cuda",
    "00.2": 0.96,
    "01.1": 3,
    "01.2": 2,
    "02.1": {"<tool_call>", "<tool_response>"},
    "02.2": "<|vision_pad|>",
    "03.1": 56,
    "03.2": 1,
    "04.1": {"cmath": 1, "mawps": 1, "emoji": 3, "json": 1, "tool": 0},
    "04.2": 60,
    "05.1": 14336,
    "05.2": 32,
    "05.3": 35,
    "06.1": 2.72,
    "06.2": (True, False),
    "06.3": "more",  # on the logs tests/test_check.py writes; in class, what the student's run shows
    "07.1": 0,
}
WRONG = {
    "00.1": ("unsloth", "only in requirements-gpu.txt"),
    "00.2": (19_400_000, "not a count"),
    "01.1": (2, "appends its header anyway"),
    "01.2": (3, "consecutive ones are merged"),
    "02.1": ({"<|im_start|>", "<tool_call>"}, "turn markers are special"),
    "02.2": ("<|im_end|>", "pad == eos"),
    "03.1": (58, "newline after each <|im_end|> goes too"),
    "03.2": (2, "count the assistant turns"),
    "04.1": ({"cmath": 1, "mawps": 1, "emoji": 1, "json": 1, "tool": 1}, "emoji 20.0%"),
    "04.2": (100, "caps validation"),
    "05.1": (38912, "that is all 7 projections"),
    "05.2": (16, "one GPU's share"),
    "05.3": (2, "the count at the preset's 512 tokens"),
    "06.1": (3.06, "averages per-sample perplexities"),
    "06.2": ((True, True), "compare the type of age"),
    "06.3": ("less", "the run says 'more'"),
    "07.1": (77824, "folded into W"),
}
