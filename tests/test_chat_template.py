"""The dual-mode chat template a recipe trains with, rendered by transformers, against the authors' renders.

Expected strings are derived by hand from the template the authors trained with: the `chat_template` of
alignment-handbook recipes/smollm3/sft/sft.yaml (huggingface/alignment-handbook
@ 925acdfe4b2b4e38c3dabd1851bc418f0b656351), rendered as transformers renders any chat template (trim_blocks,
lstrip_blocks). Line numbers below are of that template
string split at its `\\n`s. With the smollm3-3b recipe every shape must equal it character for character,
generation spans included; the tiny recipe changes only its own two values (think instructions, a fixed date).
"""
import json
from datetime import datetime

import pytest
from conftest import REPO, run_cli

# sft.yaml template lines 40 and 42: the two default instructions, in the authors' words
AUTHORS_THINK = (
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face. Your role as an assistant involves "
    "thoroughly exploring questions through a systematic thinking process before providing the final precise and "
    "accurate solutions. This requires engaging in a comprehensive cycle of analysis, summarizing, exploration, "
    "reassessment, reflection, backtracking, and iteration to develop well-considered thinking process. Please "
    "structure your response into two main sections: Thought and Solution using the specified format: <think> "
    "Thought section </think> Solution section. In the Thought section, detail your reasoning process in steps. "
    "Each step should include detailed considerations such as analysing questions, summarizing relevant findings, "
    "brainstorming new ideas, verifying the accuracy of the current steps, refining any errors, and revisiting "
    "previous steps. In the Solution section, based on various attempts, explorations, and reflections from the "
    "Thought section, systematically present the final solution that you deem correct. The Solution section should "
    "be logical, accurate, and concise and detail necessary steps needed to reach the conclusion.")
NO_THINK = "You are a helpful AI assistant named SmolLM, trained by Hugging Face."
TINY_THINK = ("You are a helpful AI assistant named SmolLM, trained by Hugging Face. Before you answer, you reason "
              "step by step inside <think> and </think>: you explore the question, work it out, check the result "
              "and correct yourself where needed. After </think> you give the final answer, clear and "
              "self-contained.")
EMPTY_THINK = "<think>\n\n</think>\n"  # lines 80 and 94: the no-think prefill
TOOL = {"type": "function", "function": {"name": "calculator", "description": "Évalue 6 × 7",
                                         "parameters": {"type": "object"}}}


def today():  # line 32: strftime_now("%d %B %Y") when the conversation is rendered
    return datetime.now().strftime("%d %B %Y")


def header(mode, instructions, xml="None", python="None", date=None):
    """Lines 14-67: metadata, custom instructions, XML and Python tools; the block ends in a blank line."""
    return ("<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\n"
            f"Today Date: {date or today()}\nReasoning Mode: {mode}\n\n## Custom Instructions\n\n{instructions}\n\n"
            f"## Tools\n\n### XML Tools\n\n{xml}\n\n### Python Tools\n\n{python}\n\n<|im_end|>\n")


def user(text):
    return f"<|im_start|>user\n{text}<|im_end|>\n"


def assistant(text, think=True):
    return "<|im_start|>assistant\n" + ("" if think else EMPTY_THINK) + text + "<|im_end|>\n"


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """The template each recipe trains with, as `python -m posttrain template RECIPE --out FILE` writes it."""
    out = {}
    for name in ("smollm3-3b", "tiny"):
        path = tmp_path_factory.mktemp("tpl") / "chat_template.jinja"
        done = run_cli("posttrain", "template", REPO / "recipes" / name, "--out", path)
        assert done.returncode == 0, done.stderr
        out[name] = path.read_text()
    return out


@pytest.fixture(scope="module")
def tok(tmp_path_factory, templates):
    from tests.eval_fixtures import make_tiny_tokenizer

    t = make_tiny_tokenizer(tmp_path_factory.mktemp("tok"), chat=True)
    t.chat_template = templates["smollm3-3b"]
    return t


def render(tok, messages, **kw):
    return tok.apply_chat_template(messages, tokenize=False, **kw)


SHAPES = {  # name: (messages, kwargs, expected render), every one with the smollm3-3b recipe's template
    "no system message: think mode, the authors' think instructions, an open generation prompt": (
        [{"role": "user", "content": "What is 2 + 2?"}], {"add_generation_prompt": True},
        header("/think", AUTHORS_THINK) + user("What is 2 + 2?") + "<|im_start|>assistant\n"),
    "enable_thinking=False: the prefill in every assistant turn and in the generation prompt": (
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"},
         {"role": "user", "content": "bye"}], {"enable_thinking": False, "add_generation_prompt": True},
        header("/no_think", NO_THINK) + user("hi") + assistant("Hello!", False) + user("bye")
        + "<|im_start|>assistant\n" + EMPTY_THINK),
    "enable_thinking=None is defined and false (lines 2-11): no-think": (
        [{"role": "user", "content": "hi"}], {"enable_thinking": None, "add_generation_prompt": True},
        header("/no_think", NO_THINK) + user("hi") + "<|im_start|>assistant\n" + EMPTY_THINK),
    "enable_thinking=True without a generation prompt": (
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], {"enable_thinking": True},
        header("/think", AUTHORS_THINK) + user("hi") + assistant("yo")),
    "multi-turn with earlier think blocks: leading newlines of an assistant turn removed (line 78), nothing else": (
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "\n\n<think>\nx\n</think>\nA \n"},
         {"role": "user", "content": "b"}, {"role": "assistant", "content": "B"}], {},
        header("/think", AUTHORS_THINK) + user("a") + assistant("<think>\nx\n</think>\nA \n") + user("b")
        + assistant("B")),
    "/no_think in the system message wins over enable_thinking=True; flags removed, trailing space stripped": (
        [{"role": "system", "content": "  Answer in French. /no_think \n"}, {"role": "user", "content": "hi"}],
        {"enable_thinking": True, "add_generation_prompt": True},
        header("/no_think", "  Answer in French.") + user("hi") + "<|im_start|>assistant\n" + EMPTY_THINK),
    "/think in the system message wins over enable_thinking=False": (
        [{"role": "system", "content": "/think"}, {"role": "user", "content": "hi"}], {"enable_thinking": False},
        header("/think", AUTHORS_THINK) + user("hi")),
    "a system message of flags only gives the default instructions of its mode": (
        [{"role": "system", "content": "/no_think"}, {"role": "user", "content": "hi"}], {},
        header("/no_think", NO_THINK) + user("hi")),
    "custom_instructions kwarg (smoltalk2's column) without a system message, written as given": (
        [{"role": "user", "content": "hi"}], {"enable_thinking": False, "custom_instructions": " Be terse. "},
        header("/no_think", " Be terse. ") + user("hi")),
    "a system message wins over the custom_instructions kwarg": (
        [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"}],
        {"custom_instructions": "Be terse."}, header("/think", "Be kind.") + user("hi")),
    "/system_override: only the instructions, leading whitespace kept, trailing stripped (lines 26-28)": (
        [{"role": "system", "content": "/system_override You are a pirate. /no_think  "},
         {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Arr"}], {"add_generation_prompt": True},
        "<|im_start|>system\n You are a pirate.<|im_end|>\n" + user("hi") + assistant("Arr", False)
        + "<|im_start|>assistant\n" + EMPTY_THINK),
    "tools=: the XML tools section written from the list (lines 47-55), each tool as JSON": (
        [{"role": "user", "content": "6 x 7?"}], {"tools": [TOOL]},
        header("/think", AUTHORS_THINK, xml="You may call one or more functions to assist with the user query.\n\n"
               "You are provided with function signatures within <tools></tools> XML tags:\n\n<tools>\n"
               + json.dumps(TOOL, ensure_ascii=False) + "\n</tools>\n\nFor each function call, return a json object "
               "with function name and arguments within <tool_call></tool_call> XML tags.") + user("6 x 7?")),
    "xml_tools kwarg: written as given; a list as Python writes it": (
        [{"role": "user", "content": "q"}], {"xml_tools": ["a", "b"], "enable_thinking": False},
        header("/no_think", NO_THINK, xml="['a', 'b']") + user("q")),
    "tools= replaces an xml_tools kwarg": (
        [{"role": "user", "content": "q"}], {"tools": [TOOL], "xml_tools": "ignored"},
        header("/think", AUTHORS_THINK, xml="You may call one or more functions to assist with the user query.\n\n"
               "You are provided with function signatures within <tools></tools> XML tags:\n\n<tools>\n"
               + json.dumps(TOOL, ensure_ascii=False) + "\n</tools>\n\nFor each function call, return a json object "
               "with function name and arguments within <tool_call></tool_call> XML tags.") + user("q")),
    "python_tools kwarg written as given (lines 60-65); None kwargs read as absent": (
        [{"role": "user", "content": "q"}],
        {"python_tools": "def search(query: str) -> str: ...", "xml_tools": None, "custom_instructions": None},
        header("/think", AUTHORS_THINK, python="def search(query: str) -> str: ...") + user("q")),
    "tool messages are user turns; assistant tool_calls are not written, only the content (lines 72-86)": (
        [{"role": "user", "content": "6 x 7?"},
         {"role": "assistant", "content": "<tool_call>\n{}\n</tool_call>",
          "tool_calls": [{"type": "function", "function": {"name": "calculator", "arguments": {"e": "6*7"}}}]},
         {"role": "tool", "content": "42"},
         {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "x", "arguments": {}}}]}],
        {"enable_thinking": False},
        header("/no_think", NO_THINK) + user("6 x 7?") + assistant("<tool_call>\n{}\n</tool_call>", False)
        + user("42") + assistant("", False)),
    "a second system message mid-way is not written (the loop has no system branch)": (
        [{"role": "user", "content": "hi"}, {"role": "system", "content": "late /no_think"},
         {"role": "assistant", "content": "yo"}], {},
        header("/think", AUTHORS_THINK) + user("hi") + assistant("yo")),
    "user content keeps its whitespace": (
        [{"role": "user", "content": "\n  spaced  \n"}], {"enable_thinking": False},
        header("/no_think", NO_THINK) + user("\n  spaced  \n")),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_renders_as_the_authors_template(tok, shape):
    messages, kwargs, expected = SHAPES[shape]
    assert render(tok, messages, **kwargs) == expected


@pytest.mark.parametrize("think", [True, False])
def test_generation_spans_are_whole_assistant_turns(tok, think):
    """{% generation %} (lines 76-82): each assistant turn from `<|im_start|>assistant\\n` (the no-think prefill
    included) to `<|im_end|>\\n`; nothing of the system, user or tool turns, nor of the generation prompt."""
    messages = [{"role": "user", "content": "first question"}, {"role": "assistant", "content": "first answer"},
                {"role": "tool", "content": "tool output"}, {"role": "assistant", "content": "\nsecond answer"}]
    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
                                  enable_thinking=think, add_generation_prompt=True)
    spans, current = [], []
    for i, m in zip(out["input_ids"], out["assistant_masks"]):
        if m:
            current.append(i)
        elif current:
            spans.append(tok.decode(current))
            current = []
    spans += [tok.decode(current)] if current else []
    assert spans == [assistant("first answer", think), assistant("second answer", think)]


def test_the_tiny_recipe_changes_only_its_own_instructions_and_date(tok, templates):
    tok.chat_template = templates["tiny"]
    try:
        got = render(tok, [{"role": "user", "content": "hi"}], add_generation_prompt=True)
        assert got == header("/think", TINY_THINK, date="01 July 2025") + user("hi") + "<|im_start|>assistant\n"
        got = render(tok, [{"role": "user", "content": "hi"}], enable_thinking=False)
        assert got == header("/no_think", NO_THINK, date="01 July 2025") + user("hi")
    finally:
        tok.chat_template = templates["smollm3-3b"]


def test_template_cli_prints_the_template_and_refuses_a_stage_without_one(templates, tmp_path):
    done = run_cli("posttrain", "template", REPO / "recipes" / "smollm3-3b")
    assert done.returncode == 0 and done.stdout.rstrip("\n") == templates["smollm3-3b"].rstrip("\n")
    done = run_cli("posttrain", "template", REPO / "recipes" / "tiny" / "midtrain.yaml")
    assert done.returncode == 0 and "<think>" not in done.stdout and "<|im_start|>" in done.stdout  # ChatML
    done = run_cli("posttrain", "template", REPO / "recipes" / "tiny" / "apo.yaml", "--out", tmp_path / "t.jinja")
    assert done.returncode == 2 and "apo.yaml: chat_template: inherit" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "t.jinja").exists()
    done = run_cli("posttrain", "template", REPO / "recipes" / "tiny", "chat.today_date=[1]")
    assert done.returncode == 2 and "chat.today_date" in done.stderr and "Traceback" not in done.stderr


def test_a_tokenizer_without_the_templates_special_tokens_is_refused(tmp_path):
    from posttrain.chat_template import check_tokens
    from recipes.loader import RecipeError
    from tests.eval_fixtures import make_tiny_tokenizer

    plain = make_tiny_tokenizer(tmp_path / "plain")  # no chat or think tokens
    with pytest.raises(RecipeError, match=r"lacks the smollm3 template's special token\(s\) <\|im_start\|>, "
                                          r"<\|im_end\|>, <think>, </think>"):
        check_tokens(plain, "smollm3", "runs/x/hf", "init_from")
    check_tokens(make_tiny_tokenizer(tmp_path / "chat", chat=True), "smollm3", "runs/x/hf", "init_from")
