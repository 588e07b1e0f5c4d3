"""The dual-mode chat template (posttrain/chat_template.jinja), rendered by transformers: exact strings for
conversations written here, point by point of the SmolLM3 template's behaviour (system flags, override,
tools, tool results, both modes, generation prompt, injected date), and the assistant-only loss mask."""
import json
from datetime import datetime

import pytest
from conftest import REPO

DATE = "01 July 2025"
THINK_DEFAULT = ("You are a helpful AI assistant named SmolLM, trained by Hugging Face. Before you answer, you reason "
                 "step by step inside <think> and </think>: you explore the question, work it out, check the result "
                 "and correct yourself where needed. After </think> you give the final answer, clear and "
                 "self-contained.")
NO_THINK_DEFAULT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face."
EMPTY_THINK = "<think>\n\n</think>\n"


def system(mode, instructions, xml="None", python="None", date=DATE):
    return ("<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\n"
            f"Today Date: {date}\nReasoning Mode: {mode}\n\n## Custom Instructions\n\n{instructions}\n\n"
            f"## Tools\n\n### XML Tools\n\n{xml}\n\n### Python Tools\n\n{python}\n<|im_end|>\n")


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from tests.eval_fixtures import make_tiny_tokenizer

    t = make_tiny_tokenizer(tmp_path_factory.mktemp("tok"))
    t.chat_template = (REPO / "posttrain" / "chat_template.jinja").read_text()
    return t


def render(tok, messages, **kw):
    return tok.apply_chat_template(messages, tokenize=False, **{"today_date": DATE, **kw})


def test_think_mode_is_the_default_with_its_instructions_and_an_open_generation_prompt(tok):
    got = render(tok, [{"role": "user", "content": "What is 2 + 2?"}], add_generation_prompt=True)
    assert got == (system("/think", THINK_DEFAULT)
                   + "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n")


def test_no_think_mode_prefills_an_empty_think_block_in_past_turns_and_the_prompt(tok):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "bye"}]
    got = render(tok, messages, add_generation_prompt=True, enable_thinking=False)
    assert got == (system("/no_think", NO_THINK_DEFAULT)
                   + "<|im_start|>user\nhi<|im_end|>\n"
                   + "<|im_start|>assistant\n<think>\n\n</think>\nHello!<|im_end|>\n"
                   + "<|im_start|>user\nbye<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n")


def test_think_mode_strips_leading_newlines_of_assistant_turns_in_a_multi_turn_conversation(tok):
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "\n\n<think>\nx\n</think>\nA"},
                {"role": "user", "content": "b"}, {"role": "assistant", "content": "B"}]
    assert render(tok, messages, enable_thinking=True) == (
        system("/think", THINK_DEFAULT) + "<|im_start|>user\na<|im_end|>\n"
        + "<|im_start|>assistant\n<think>\nx\n</think>\nA<|im_end|>\n"
        + "<|im_start|>user\nb<|im_end|>\n<|im_start|>assistant\nB<|im_end|>\n")


@pytest.mark.parametrize("flag, kwarg, mode", [("/no_think", True, "/no_think"), ("/think", False, "/think")])
def test_a_flag_in_the_system_message_overrides_enable_thinking_and_is_stripped(tok, flag, kwarg, mode):
    messages = [{"role": "system", "content": f"Answer in French. {flag}"}, {"role": "user", "content": "hi"}]
    got = render(tok, messages, enable_thinking=kwarg, add_generation_prompt=True)
    prefill = EMPTY_THINK if mode == "/no_think" else ""
    assert got == (system(mode, "Answer in French.")
                   + f"<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n{prefill}")


def test_system_override_emits_only_the_custom_instructions(tok):
    messages = [{"role": "system", "content": "/system_override You are a pirate."}, {"role": "user", "content": "hi"}]
    assert render(tok, messages) == ("<|im_start|>system\nYou are a pirate.<|im_end|>\n"
                                     "<|im_start|>user\nhi<|im_end|>\n")


def test_custom_instructions_from_the_kwargs_as_in_smoltalk2(tok):
    got = render(tok, [{"role": "user", "content": "hi"}], enable_thinking=False, custom_instructions="Be terse.")
    assert got == system("/no_think", "Be terse.") + "<|im_start|>user\nhi<|im_end|>\n"


def test_xml_and_python_tools_and_tool_results_as_user_turns(tok):
    tool = {"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}}
    messages = [{"role": "user", "content": "What is 6 x 7?"},
                {"role": "assistant", "content": "",
                 "tool_calls": [{"type": "function", "function": {"name": "calculator",
                                                                  "arguments": {"expression": "6 * 7"}}}]},
                {"role": "tool", "content": "42"},
                {"role": "assistant", "content": "6 x 7 is 42."}]
    got = render(tok, messages, enable_thinking=False, xml_tools=[tool],
                 python_tools=["def search(query: str) -> str: ..."])
    xml = ("You may call one or more of the functions described inside <tools></tools>:\n\n<tools>\n"
           + json.dumps(tool) + "\n</tools>\n\nTo call one, write a JSON object with its name and arguments inside "
           "<tool_call></tool_call>:\n<tool_call>\n{\"name\": <function name>, \"arguments\": <arguments object>}\n"
           "</tool_call>")
    python = "You may call these Python functions inside <code></code>:\n\ndef search(query: str) -> str: ..."
    call = json.dumps({"name": "calculator", "arguments": {"expression": "6 * 7"}})
    assert got == (system("/no_think", NO_THINK_DEFAULT, xml=xml, python=python)
                   + "<|im_start|>user\nWhat is 6 x 7?<|im_end|>\n"
                   + f"<|im_start|>assistant\n<think>\n\n</think>\n<tool_call>\n{call}\n</tool_call><|im_end|>\n"
                   + "<|im_start|>user\n42<|im_end|>\n"
                   + "<|im_start|>assistant\n<think>\n\n</think>\n6 x 7 is 42.<|im_end|>\n")
    # transformers' own `tools=` argument lands in the same section; a JSON string is written as it is
    assert render(tok, messages[:1], tools=[tool]) == render(tok, messages[:1], xml_tools=[json.dumps(tool)])


def test_the_date_defaults_to_today(tok):
    got = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert f"Today Date: {datetime.now().strftime('%d %B %Y')}\n" in got


def test_a_misplaced_system_message_is_an_error_not_silently_dropped(tok):
    with pytest.raises(Exception, match="system message at position 1"):
        render(tok, [{"role": "user", "content": "hi"}, {"role": "system", "content": "late"}])


@pytest.mark.parametrize("think", [True, False])
def test_the_loss_mask_covers_exactly_the_assistant_turns(tok, think):
    """{% generation %} spans, as in the authors' template: each whole assistant turn, from
    `<|im_start|>assistant\n` (with, in no-think mode, the prefilled empty think block) to `<|im_end|>\n`:
    nothing of the system, user or tool turns."""
    messages = [{"role": "user", "content": "first question"}, {"role": "assistant", "content": "first answer"},
                {"role": "tool", "content": "tool output"}, {"role": "assistant", "content": "second answer"}]
    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
                                  enable_thinking=think, today_date=DATE)
    ids, mask = out["input_ids"], out["assistant_masks"]
    spans, current = [], []
    for i, m in zip(ids, mask):
        if m:
            current.append(i)
        elif current:
            spans.append(tok.decode(current))
            current = []
    spans += [tok.decode(current)] if current else []
    opening = "<|im_start|>assistant\n" + ("" if think else EMPTY_THINK)
    assert spans == [f"{opening}first answer<|im_end|>\n", f"{opening}second answer<|im_end|>\n"]
