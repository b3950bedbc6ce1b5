"""Solutions to the notebook exercises (kept out of the student notebooks).

``ANSWERS[key]`` is a correct answer to ``helpers.check`` exercise ``key``; ``WRONG[key]``
is a plausible wrong one with the feedback it must get (the tests use both).
"""
ANSWERS = {
    "01.1": "<|im_start|>assistant\n",
    "01.2": "user",
    "02.1": 151645,
    "02.2": 0,
    "03.1": 60,
    "03.2": 1,
    "04.1": {"cmath": 1, "mawps": 1, "emoji": 3, "json": 1, "tool": 0},
    "04.2": 60,
    "05.1": 77824,
    "05.2": 16,
    "06.1": 2.72,
    "06.2": (True, False),
}
WRONG = {
    "01.1": ("<|assistant|>", "no <|assistant|> token"),
    "01.2": ("tool", "renders it under another role"),
    "02.1": (151643, "<|endoftext|>"),
    "02.2": (3, "not what the collator keeps"),
    "03.1": (119, "every token"),
    "03.2": (2, "count the assistant turns"),
    "04.1": ({"cmath": 1, "mawps": 1, "emoji": 1, "json": 1, "tool": 1}, "emoji 20.0%"),
    "04.2": (100, "caps validation"),
    "05.1": (155648, "that is r=16"),
    "05.2": (1, "one factor only"),
    "06.1": (3.06, "averages per-sample perplexities"),
    "06.2": ((True, True), "compare the type of age"),
}
