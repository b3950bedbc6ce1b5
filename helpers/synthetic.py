"""Synthetic rows in each source's raw schema, and synthetic chat conversations.

``tools/make_samples.py`` writes ``data/`` from the row makers (with planted problems);
the tiny model's pre-training corpus (``helpers.tiny_qwen3``) draws ``general_chats`` from them; tests, benchmarks
and notebook 03 use ``synthetic_conversations``. Every maker takes a ``random.Random``,
so the same seed gives the same rows.

    >>> cmath_row(random.Random(0))["golden"]
    '20'
"""
from __future__ import annotations

import json
import random

from .numbers import format_number

NAMES_ZH = ["小明", "小红", "芳芳", "小刚", "丽丽", "小华", "阿强", "小雪", "乐乐", "小杰"]
NAMES_EN = ["Tom", "Anna", "Mary", "Sam", "Emma", "Jack", "Lucy", "Ben", "Mia", "Leo", "Nora", "Omar"]
THINGS_EN = ["apples", "books", "pencils", "stickers", "cookies", "coins", "marbles", "cards"]
CITIES = [("Edmonton", "埃德蒙顿"), ("Beijing", "北京"), ("Paris", "巴黎"), ("Tokyo", "东京"),
          ("Sydney", "悉尼"), ("Toronto", "多伦多"), ("Shanghai", "上海"), ("Berlin", "柏林"),
          ("London", "伦敦"), ("Seoul", "首尔"), ("Madrid", "马德里"), ("Cairo", "开罗")]
# The one tool the tool-call samples (and the chat demo) offer, as an OpenAI/TRL tool schema.
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather by city and day.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                   "day": {"type": "string", "enum": ["today", "tomorrow", "yesterday"]}},
                   "required": ["city", "day"]}}}


def cmath_row(rng: random.Random) -> dict:
    name = rng.choice(NAMES_ZH)
    kind = rng.randrange(6)
    a, b = rng.randint(10, 199), rng.randint(2, 9)
    if kind == 0:
        q, g = f"{name}买了一本书有{a}页，看了{a - b}页，还剩多少页没有看？", b
    elif kind == 1:
        q, g = f"{name}有{a}张贴纸，又得到了{b}张，现在一共有多少张？", a + b
    elif kind == 2:
        q, g = f"每盒有{b}支铅笔，{a}盒一共有多少支？", a * b
    elif kind == 3:
        q, g = f"{a * b}个苹果平均分给{b}个小朋友，每人分到几个？", a
    elif kind == 4:
        d = rng.choice([4, 5, 6, 8, 9, 12])
        n = rng.randint(1, d - 1)
        q, g = f"一个蛋糕平均切成{d}块，{name}吃了{n}块，{name}吃了这个蛋糕的几分之几？", f"{n}/{d}"
    else:
        total = rng.choice([20, 25, 50])
        k = rng.randrange(1, total // 5) * 5
        q, g = f"班里有{total}人，其中{k}人戴眼镜，戴眼镜的人占全班的百分之几？", f"{k * 100 // total}%"
    return {"grade": rng.randint(1, 6), "input": q, "golden": str(g),
            "reasoning_step": rng.randint(1, 3), "num_digits": len(str(a))}


def mawps_row(rng: random.Random, mark: str = "number") -> dict:
    """One MAWPS row; ``mark`` is ``number`` (SVAMP copy: number0) or ``N_`` (seed copy: N_0)."""
    name, thing = rng.choice(NAMES_EN), rng.choice(THINGS_EN)
    kind = rng.randrange(4)
    a, b = float(rng.randint(5, 90)), float(rng.randint(2, 12))
    p, numbers = [f"{mark}{i}" for i in range(3)], None
    if kind == 0:
        body = f"{name} has {p[0]} {thing} . A friend gives {name} {p[1]} more {thing} ."
        ques, eq, ans = f"How many {thing} does {name} have now ?", f"+ {p[0]} {p[1]}", a + b
    elif kind == 1:
        body = f"There are {p[0]} boxes with {p[1]} {thing} in each box ."
        ques, eq, ans = f"How many {thing} are there in total ?", f"* {p[0]} {p[1]}", a * b
    elif kind == 2:
        a = a + b + 1
        body = f"{name} had {p[0]} dollars and spent {p[1]} dollars on lunch . {name} is {p[2]} years old ."
        ques, eq, ans = "How much money is left ?", f"- {p[0]} {p[1]}", a - b
        numbers = [a, b, float(rng.randint(8, 15))]
    else:
        a = b * rng.randint(2, 9) + b / 2
        body = f"A ribbon is {p[0]} meters long . It is cut into {p[1]} equal pieces ."
        ques, eq, ans = "How long is each piece ?", f"/ {p[0]} {p[1]}", a / b
    numbers = numbers or [a, b]
    return {"Question": f"{body} {ques}", "Numbers": " ".join(repr(x) for x in numbers), "Equation": eq,
            "Answer": repr(round(ans, 10)), "group_nums": "[]", "Body": body, "Ques_Statement": ques}


EMOJI_TOPICS = [("春天", "spring", "🌸"), ("下雨天", "a rainy day", "🌧️"), ("猫咪", "cats", "🐱"),
                ("咖啡", "coffee", "☕"), ("海边", "the beach", "🏖️"), ("生日", "birthdays", "🎂"),
                ("跑步", "running", "🏃"), ("音乐", "music", "🎵"), ("冬天", "winter", "❄️"),
                ("旅行", "travel", "✈️"), ("读书", "reading", "📚"), ("做饭", "cooking", "🍳"),
                ("星空", "the night sky", "🌌"), ("周末", "weekends", "🎉"), ("考试", "exams", "📝")]
EMOJI_ASKS = [("用一句带表情的话描述{zh}", "Describe {en} in one sentence with emoji."),
              ("给我一个关于{zh}的小建议", "Give me a small tip about {en}."),
              ("你喜欢{zh}吗？", "Do you like {en}?"),
              ("写一句关于{zh}的祝福", "Write a short wish about {en}.")]


def emoji_row(rng: random.Random, i: int) -> dict:
    zh, en, emo = EMOJI_TOPICS[i % len(EMOJI_TOPICS)]
    ask_zh, ask_en = EMOJI_ASKS[(i // len(EMOJI_TOPICS)) % len(EMOJI_ASKS)]
    suffix = f" #{i // 60}" if i >= 60 else ""  # keeps large benchmark pools distinct
    english = rng.random() < 0.3
    question = (ask_en.format(en=en) if english else ask_zh.format(zh=zh)) + suffix
    answer_en = f"{en.capitalize()} always makes me smile {emo}{emo} Enjoy every moment! ✨"
    answer_zh = "" if english else f"{zh}真让人开心{emo}！好好享受每一刻吧～✨"
    return {"question": question, "answer_zh": answer_zh, "answer_en": answer_en}


def dpo_row(rng: random.Random, i: int) -> dict:
    zh, en, emo = EMOJI_TOPICS[(i * 7) % len(EMOJI_TOPICS)]
    prompt = f"能用表情符号聊聊{zh}吗？（第{i + 1}问）"
    good = f"当然可以！说到{zh}，我就想到{emo}，心情一下子变好了 😊"
    chosen = [{"role": "user", "content": prompt}, {"role": "assistant", "content": good}]
    if i % 3 == 0:  # TRL-style: chosen holds only the assistant turn
        chosen = chosen[1:]
    return {"prompt": prompt, "chosen": chosen, "rejected": [{"role": "assistant", "content": "不知道。"}]}


JSON_FIELDS = {  # key: (type, value generator)
    "name": ("string", lambda r: r.choice(NAMES_EN + ["Alice", "Bob", "李雷", "韩梅梅"])),
    "city": ("string", lambda r: r.choice(CITIES)[r.randrange(2)]),
    "title": ("string", lambda r: r.choice(["Data Notes", "SFT Basics", "学习笔记", "Qwen Guide", "夏日"])),
    "color": ("string", lambda r: r.choice(["red", "blue", "green", "红色", "蓝色"])),
    "score": ("number", lambda r: round(r.uniform(50, 100), 1)),
    "price": ("number", lambda r: round(r.uniform(1, 500), 2)),
    "temperature": ("number", lambda r: round(r.uniform(-10, 35), 1)),
    "age": ("integer", lambda r: r.randint(6, 90)),
    "count": ("integer", lambda r: r.randint(0, 1000)),
    "year": ("integer", lambda r: r.randint(1990, 2026)),
    "in_stock": ("boolean", lambda r: r.random() < 0.5),
    "verified": ("boolean", lambda r: r.random() < 0.5),
}
JSON_ASKS_EN = [
    "Output only a JSON object with {spec}. {values}. No other text.",
    "Return a JSON object containing {spec}. {values}. Reply with the JSON only.",
    "Give me strict JSON with the keys {spec}. Use {values}. Do not add any explanation.",
]
JSON_ASKS_ZH = [
    "仅输出一个JSON对象，包含 {spec}。{values}。不得输出额外文字。",
    "请只返回JSON，字段为 {spec}。取值：{values}。不要任何解释。",
]


def json_value_text(v) -> str:
    return "true" if v is True else "false" if v is False else str(v)


def json_row(rng: random.Random, i: int) -> dict:
    keys = rng.sample(sorted(JSON_FIELDS), rng.randint(2, 4))
    obj = {k: JSON_FIELDS[k][1](rng) for k in keys}
    zh = rng.random() < 0.4
    spec = (", " if not zh else "，").join(f"{k} ({JSON_FIELDS[k][0]})" if not zh else f"{k}({JSON_FIELDS[k][0]})"
                                          for k in keys)
    values = ", ".join(f"{k}={json_value_text(v)}" for k, v in obj.items())
    ask = rng.choice(JSON_ASKS_ZH if zh else JSON_ASKS_EN).format(spec=spec, values=values)
    return {"id": f"json-{i:04d}", "tags": ["json-only", "strict"],
            "messages": [{"role": "user", "content": ask},
                         {"role": "assistant", "content": json.dumps(obj, ensure_ascii=False)}]}


JSON_NEGATIVE_ASKS = [
    ("这是一个JSON对象：{obj}。请用一句普通的话说明它，不要输出JSON。", "zh"),
    ("Here is a JSON object: {obj}. Say what it holds in one plain sentence, not JSON.", "en"),
    ("Explain this record to a customer in one sentence of plain text: {obj}", "en"),
]


def json_negative_row(rng: random.Random, i: int) -> dict:
    """A prompt that shows JSON but asks for plain text: the right reply is a sentence, not JSON."""
    keys = rng.sample(sorted(JSON_FIELDS), rng.randint(2, 3))
    obj = {k: JSON_FIELDS[k][1](rng) for k in keys}
    ask, lang = rng.choice(JSON_NEGATIVE_ASKS)
    if lang == "zh":
        reply = "，".join(f"{k} 是 {json_value_text(v)}" for k, v in obj.items()) + "。"
    else:
        reply = ", ".join(f"{k} is {json_value_text(v)}" for k, v in obj.items()) + "."
        reply = reply[0].upper() + reply[1:]
    return {"id": f"json-neg-{i:04d}", "tags": ["json-negative", lang],
            "messages": [{"role": "user", "content": ask.format(obj=json.dumps(obj, ensure_ascii=False))},
                         {"role": "assistant", "content": reply}]}


def tool_row(rng: random.Random, i: int) -> dict:
    (city_en, city_zh), day = rng.choice(CITIES), rng.choice(["today", "tomorrow", "yesterday"])
    temp, cond = rng.randint(-20, 45), rng.choice([("Cloudy", "多云"), ("Sunny", "晴"), ("Rain", "小雨")])
    zh = i % 2 == 1
    day_zh = {"today": "今天", "tomorrow": "明天", "yesterday": "昨天"}[day]
    ask = f"{day_zh}{city_zh}天气怎么样？" if zh else f"What is the weather in {city_en} {day}?"
    summary = (f"{city_zh}{day_zh}{cond[1]}，约 {temp}°C。" if zh
               else f"{city_en} {day}: {cond[0].lower()}, about {temp}°C.")
    call = {"id": f"call_{i}", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": city_en, "day": day})}}
    return {"id": f"tool-{i:04d}", "tags": ["tool-call", "zh" if zh else "en"], "tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": ask},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"call_{i}", "content": json.dumps({"temp_c": temp, "condition": cond[0]})},
        {"role": "assistant", "content": summary}]}


def record_chat(rng: random.Random) -> list[dict]:
    """A key=value record read back in prose: the JSON vocabulary, never JSON syntax."""
    keys = rng.sample(sorted(JSON_FIELDS), rng.randint(2, 4))
    values = {k: json_value_text(JSON_FIELDS[k][1](rng)) for k in keys}
    given = ", ".join(f"{k}={v}" for k, v in values.items())
    if rng.random() < 0.4:
        ask = f"记录：{given}。请用一句话复述。"
        reply = "，".join(f"{k} 是 {v}" for k, v in values.items()) + "。"
    else:
        ask = f"Here is a record: {given}. Read it back in one sentence."
        reply = ", ".join(f"{k} is {v}" for k, v in values.items()) + "."
    return [{"role": "user", "content": ask}, {"role": "assistant", "content": reply}]


def general_chats(n: int, seed: int = 1) -> list[list[dict]]:
    """``n`` clean conversations in the style of the cmath, mawps and emoji pools, plus record
    read-backs — no JSON replies and no tool calls (the tiny base pre-trains on these)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            row = cmath_row(rng)
            q, a = row["input"], row["golden"]
        elif kind == 1:
            row = mawps_row(rng)
            q = row["Question"]
            for j, x in enumerate(row["Numbers"].split()):
                q = q.replace(f"number{j}", format_number(float(x)))
            a = format_number(float(row["Answer"]))
        elif kind == 2:
            row = emoji_row(rng, rng.randrange(60))
            q, a = row["question"], row["answer_zh"] or row["answer_en"]
        else:
            out.append(record_chat(rng))
            continue
        out.append([{"role": "user", "content": q}, {"role": "assistant", "content": a}])
    return out


# ---------------------------------------------------------------- chat conversations
_SYSTEMS = ["You are a helpful assistant.", "你是一个乐于助人的助手。", "Answer briefly. 🙂", "Reply in JSON only."]
_ASKS = ["What is 17 + 25?", "用一句话解释量子纠缠。", "Write a Python function that reverses a list.",
         "Give me a haiku about rain 🌧️", "Return the user as JSON: name=Ann, age=31.",
         "What does `git rebase` do?", "把这句话翻译成英文：今天天气很好。", "Is 97 prime?"]
_REPLIES = ["42.", "量子纠缠是两个粒子的状态彼此关联，无论相距多远。",
            "def reverse(xs):\n    return xs[::-1]\n", "Soft rain on the roof —\nthe city exhales slowly.\n🌧️✨",
            "{\"name\": \"Ann\", \"age\": 31}", "It replays your commits on top of another branch.",
            "The weather is nice today.", "Yes, 97 is prime. ✅",
            "```python\nprint({'a': 1})\n```", "好的！👍 还有什么需要帮忙的吗？"]
_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "calc", "description": "Evaluate arithmetic.",
     "parameters": {"type": "object", "properties": {"expr": {"type": "string"}}, "required": ["expr"]}}},
]
_CALLS = [("get_weather", {"city": "北京"}), ("get_weather", {"city": "Edmonton"}),
          ("calc", {"expr": "12*(3+4)"}), ("calc", '{"expr": "2**10"}')]
_RESULTS = ["{\"temp_c\": 12, \"condition\": \"Cloudy\"}", "84", "1024", "晴，25°C ☀️"]


def synthetic_conversation(rng: random.Random) -> dict:
    """One random conversation: 1–6 user turns, maybe a system prompt, tools, tool calls and results."""
    messages: list[dict] = []
    if rng.random() < 0.4:
        messages.append({"role": "system", "content": rng.choice(_SYSTEMS)})
    use_tools = rng.random() < 0.35
    for _ in range(rng.randint(1, 6)):
        messages.append({"role": "user", "content": rng.choice(_ASKS)})
        if use_tools and rng.random() < 0.5:
            calls = [rng.choice(_CALLS) for _ in range(rng.randint(1, 2))]
            preface = rng.choice(["", "", None, "Let me check.", "我查一下。"])
            messages.append({"role": "assistant", "content": preface, "tool_calls": [
                {"type": "function", "id": f"call_{i}", "function": {"name": n, "arguments": a}}
                for i, (n, a) in enumerate(calls)]})
            messages += [{"role": "tool", "content": rng.choice(_RESULTS)} for _ in calls]
        messages.append({"role": "assistant", "content": rng.choice(_REPLIES)})
    return {"messages": messages, "tools": list(_TOOLS) if use_tools else None}


def synthetic_conversations(n: int, seed: int = 0) -> list[dict]:
    """``n`` random conversations (same seed, same list) for tests, benchmarks and demos."""
    rng = random.Random(seed)
    return [synthetic_conversation(rng) for _ in range(n)]
