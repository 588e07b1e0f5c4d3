"""Local conversations for the tiny recipe's TRL stages (no Hub).

- `builtin:reasoning-chats` (mid-training): a user problem and an assistant answer that reasons first, in
  SmolLM3's think format: `<think>\n...worked steps...\n</think>\n` then the answer line. The problems come
  from the seeded reasoning generators of the pretraining corpora (pretrain/data/corpora.py: bubble sort,
  Euclid, Collatz, running totals, linear systems) with seeds of their own.
- `builtin:reasoning-prompts` (the tiny teacher's prompts, `make synth`): problems of the same generators,
  with other seeds, none of them in reasoning-chats; only the user turn.
- `builtin:preference-prompts` (the tiny preference pairs, `make prefs`): problems of the same generators in
  neither of the two sets above, with the `answer` a correct solution ends with (to check the strong model).
- `builtin:preferences` (APO, no-think mode): chatterbot questions, the corpus answer as `chosen` and another
  question's answer or the answer cut off mid-sentence as `rejected`: the tiny stand-in for the Tulu 3
  preference mixture.
- `builtin:chats-no-think` (SFT, no-think mode): the English question / answer pairs of the PyPI package
  `chatterbot-corpus` (BSD), one or two turns per conversation.
- `builtin:reasoning-answers` (SFT, no-think mode): the reasoning-chats conversations answered directly, the
  think block removed (smoltalk2 likewise has reasoning prompts in both modes), so that the mode, not the
  kind of question, decides whether the model thinks.
- `builtin:chats-think` (SFT, think mode): the chatterbot pairs with a short think block written here from a
  template (what was asked, that a short reply fits); a format example for the tiny recipe, not a teacher's
  reasoning.
- `builtin:tool-chats` (SFT, no-think mode): arithmetic through a calculator tool: the user asks, the
  assistant calls the tool (`<tool_call>`), the `tool` message returns the result, the assistant answers;
  `chat_template_kwargs` carries the tool's description (`xml_tools`).

The `test` splits hold conversations whose prompts appear in no `train` conversation, for held-out losses.

Usage: dataset("reasoning-chats", "train") -> datasets.Dataset with columns id, messages (, chat_template_kwargs)
"""
from __future__ import annotations

import json
import random
import zlib

SPLITS = {"train": (20251202, 400), "test": (20251203, 60)}  # seed, number of conversations
PROMPT_SEED, N_PROMPTS = 20251204, 120
PREF_PROMPT_SEED, PAIR_SEED = 20251207, 20251208
TOOL_SPLITS = {"train": (20251205, 200), "test": (20251206, 30)}
NAMES = ("reasoning-chats", "reasoning-answers", "reasoning-prompts", "preference-prompts", "chats-no-think",
         "chats-think", "tool-chats", "preferences")
CALCULATOR = json.dumps({"type": "function", "function": {
    "name": "calculator", "description": "Evaluate an arithmetic expression with + - * and integers.",
    "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}}})

# The XML tools section as the template writes a `tools=[calculator]` argument; smoltalk2's `xml_tools` kwarg is
# written into the header as it is given, so the tiny data gives the finished text.
XML_TOOLS = ("You may call one or more functions to assist with the user query.\n\nYou are provided with function "
             "signatures within <tools></tools> XML tags:\n\n<tools>\n" + CALCULATOR + "\n</tools>\n\nFor each "
             "function call, return a json object with function name and arguments within <tool_call></tool_call> "
             "XML tags.")


def _conversation(trace: str) -> list[dict]:
    problem, _, rest = trace.partition("\n\nReasoning:\n")
    steps, _, answer = rest.rpartition("\nAnswer: ")
    user = problem.removeprefix("Problem: ").strip()
    return [{"role": "user", "content": user},
            {"role": "assistant", "content": f"<think>\n{steps.strip()}\n</think>\nAnswer: {answer.strip()}"}]


def conversations(split: str) -> list[dict]:
    from pretrain.data.corpora import TRACES

    seed, n = SPLITS[split]
    r = random.Random(seed)
    held_out = {c["messages"][0]["content"] for c in conversations("train")} if split == "test" else set()
    out, seen = [], set(held_out)
    while len(out) < n:
        kind = r.choice(TRACES)
        messages = _conversation(kind(r, r.randint(3, 6)))
        if messages[0]["content"] in seen:
            continue
        seen.add(messages[0]["content"])
        out.append({"id": f"{split}-{len(out):04d}-{kind.__name__[4:]}", "messages": messages})
    return out


def reasoning_prompts(seed: int = PROMPT_SEED, n: int = N_PROMPTS, prefix: str = "prompt",
                      exclude: tuple = ()) -> list[dict]:
    """n problems (the user turn, and the `answer` a correct solution ends with) that no reasoning-chats
    conversation holds, nor any of the `exclude` prompt sets."""
    from pretrain.data.corpora import TRACES

    r = random.Random(seed)
    seen = {c["messages"][0]["content"] for split in SPLITS for c in conversations(split)}
    seen |= {row["messages"][0]["content"] for rows in exclude for row in rows}
    out = []
    while len(out) < n:
        kind = r.choice(TRACES)
        user, answer = _conversation(kind(r, r.randint(3, 6)))
        if user["content"] not in seen:
            seen.add(user["content"])
            out.append({"id": f"{prefix}-{len(out):04d}-{kind.__name__[4:]}", "messages": [user],
                        "answer": answer["content"].rpartition("Answer: ")[2]})
    return out


def preference_prompts() -> list[dict]:
    """The prompts of the tiny preference pairs: problems of the same generators, in none of reasoning-chats and
    reasoning-prompts (the synth teacher's prompts, which SFT trains on)."""
    return reasoning_prompts(PREF_PROMPT_SEED, N_PROMPTS, "pref", exclude=(reasoning_prompts(),))


def preferences(split: str) -> list[dict]:
    """Local non-reasoning preference pairs (the tiny stand-in for the Tulu 3 preference mixture): a chatterbot
    question and its corpus answer as `chosen`; as `rejected`, in turn, the answer to another question of the
    same split (an off-topic reply) or, for answers of six words or more, its first half (cut off
    mid-sentence); in no-think mode."""
    r = random.Random(PAIR_SEED)
    singles = [(c["messages"][i]["content"], c["messages"][i + 1]["content"]) for c in chatterbot_chats(split)
               for i in range(0, len(c["messages"]), 2)]
    out = []
    for i, (question, answer) in enumerate(singles):
        words = answer.split()
        if i % 2 and len(words) >= 6:  # an answer cut off mid-sentence
            other = " ".join(words[:len(words) // 2]).rstrip(".,;:!?")
        else:  # an off-topic reply
            other_question, other = question, answer
            while other_question == question or other == answer:
                other_question, other = singles[r.randrange(len(singles))]
        out.append({"id": f"{split}-pair-{i:04d}", "prompt": [{"role": "user", "content": question}],
                    "chosen": [{"role": "assistant", "content": answer}],
                    "rejected": [{"role": "assistant", "content": other}],
                    "chat_template_kwargs": {"enable_thinking": False}})
    return out


def _is_test(text: str) -> bool:
    return zlib.crc32(text.strip().lower().encode()) % 10 == 0  # 1 in 10, stable across runs and machines


def chatterbot_chats(split: str) -> list[dict]:
    """chatterbot-corpus's English pairs (question, first answer), two per conversation where a file has more;
    a question goes to `test` by a hash of its text, so no test question is trained on."""
    from importlib.resources import files

    import yaml

    out = []
    for f in sorted(files("chatterbot_corpus").joinpath("data/english").iterdir(), key=lambda f: f.name):
        if not f.name.endswith(".yml"):
            continue
        pairs = [(c[0], c[1]) for c in yaml.safe_load(f.read_text(encoding="utf-8")).get("conversations", [])
                 if len(c) >= 2 and isinstance(c[0], str) and isinstance(c[1], str)]
        pairs = [p for p in pairs if _is_test(p[0]) == (split == "test")]
        for i in range(0, len(pairs), 2):
            messages = []
            for q, a in pairs[i:i + 2]:
                messages += [{"role": "user", "content": q.strip()}, {"role": "assistant", "content": a.strip()}]
            out.append({"id": f"{split}-{f.name[:-4]}-{i // 2:03d}", "messages": messages})
    return out


def without_thinking(rows: list[dict]) -> list[dict]:
    """The same conversations with each assistant turn's think block removed: the direct answer."""
    return [{**c, "id": f"{c['id']}-direct", "messages": [
        {**m, "content": m["content"].rpartition("</think>")[2].strip()} if m["role"] == "assistant" else m
        for m in c["messages"]]} for c in rows]


def with_thinking(rows: list[dict]) -> list[dict]:
    """The same conversations with a short, templated think block before each assistant answer."""
    def think(question: str, answer: str) -> str:
        kind = "a question" if question.rstrip().endswith("?") else "a remark"
        return (f"<think>\nThe user writes {kind}: \"{question}\". It is small talk, so a short reply in one or "
                f"two sentences fits.\n</think>\n{answer}")

    out = []
    for c in rows:
        messages, question = [], ""
        for m in c["messages"]:
            question = m["content"] if m["role"] == "user" else question
            messages.append({**m, "content": think(question, m["content"])} if m["role"] == "assistant" else m)
        out.append({**c, "id": f"{c['id']}-think", "messages": messages})
    return out


def tool_chats(split: str) -> list[dict]:
    seed, n = TOOL_SPLITS[split]
    r = random.Random(seed)
    held_out = {c["messages"][0]["content"] for c in tool_chats("train")} if split == "test" else set()
    words = {"+": ("plus", "the sum of {a} and {b}"), "-": ("minus", "{a} take away {b}"),
             "*": ("times", "the product of {a} and {b}")}
    out, seen = [], set(held_out)
    while len(out) < n:
        op = r.choice("+-*")
        a, b = r.randint(12, 999), r.randint(2, 99 if op == "*" else 999)
        word, phrase = words[op]
        question = r.choice([f"What is {a} {word} {b}?", f"Please compute {phrase.format(a=a, b=b)}.",
                             f"Use the calculator: {a} {op} {b}"])
        if question in seen:
            continue
        seen.add(question)
        call = json.dumps({"name": "calculator", "arguments": {"expression": f"{a} {op} {b}"}})
        result = {"+": a + b, "-": a - b, "*": a * b}[op]
        out.append({"id": f"{split}-tool-{len(out):04d}", "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": f"<tool_call>\n{call}\n</tool_call>"},
            {"role": "tool", "content": str(result)},
            {"role": "assistant", "content": f"{a} {word} {b} is {result}."}],
            "chat_template_kwargs": {"xml_tools": XML_TOOLS}})
    return out


def dataset(name: str, split: str):
    from datasets import Dataset

    splits = {"reasoning-prompts": ("train",), "preference-prompts": ("train",)}.get(name, ("train", "test"))
    if name not in NAMES or split not in splits:
        raise KeyError(f"builtin:{name} split {split}")
    rows = {"reasoning-chats": conversations, "chats-no-think": chatterbot_chats, "tool-chats": tool_chats,
            "reasoning-answers": lambda s: without_thinking(conversations(s)),
            "chats-think": lambda s: with_thinking(chatterbot_chats(s)),
            "reasoning-prompts": lambda _: reasoning_prompts(), "preference-prompts": lambda _: preference_prompts(),
            "preferences": preferences}[name](split)
    return Dataset.from_list(rows)
