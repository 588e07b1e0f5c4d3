"""BFCL (eval/bfcl.py): answers to fixture items in BFCL's own schema (tests/fixtures/bfcl) judged by bfcl-eval's
AST checker, the exact chat-template prompt with tools, BFCL's packaged data, and a lighteval run.

Usage: .venv/bin/python -m pytest -q tests/test_eval_bfcl.py      (-m "not slow" leaves out the lighteval run)
"""

import json

import pytest
from conftest import REPO

from eval import bfcl  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "bfcl"


def call(name, **arguments):
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


@pytest.fixture(scope="module")
def items():
    return {i["id"]: i for c in ("simple_python", "parallel") for i in bfcl.load_items(c, FIXTURES)}


def valid(item, answer):
    return bfcl.check(item, answer)["valid"]


def test_simple_item_right_and_wrong(items):
    area = items["simple_python_0"]
    assert valid(area, call("geometry.triangle_area", base=10, height=5))
    assert valid(area, call("geometry.triangle_area", base=10, height=5, unit="units"))  # an optional, allowed value
    assert not valid(area, call("geometry.triangle_area", base=10, height=6))  # wrong argument
    assert not valid(area, call("geometry.triangle_area", base="10", height=5))  # wrong type
    assert not valid(area, call("geometry_triangle_area", base=10, height=5))  # name as given, dots kept
    assert not valid(area, call("geometry.triangle_area", base=10))  # a required argument missing
    assert not valid(area, "The area is 25 square units.")  # no call
    assert not valid(area, call("geometry.triangle_area", base=10, height=5) * 2)  # one call asked, two given
    not_json = bfcl.check(area, "<tool_call>\n{base: 10}\n</tool_call>")  # dropped, as bfcl-eval's handler does
    assert not_json["error_type"] == "simple_function_checker:wrong_count"
    # reasoning before the call (think mode) is not part of the answer; a decoder that dropped the tags still counts
    assert valid(area, "<think>\nbase 10, height 5\n</think>\n" + call("geometry.triangle_area", base=10, height=5))
    assert valid(area, '{"name": "geometry.triangle_area", "arguments": {"base": 10, "height": 5}}')
    temp = items["simple_python_1"]
    assert valid(temp, call("convert_temperature", value=25, from_unit="celsius", to_unit="F"))  # int for a float
    assert not valid(temp, call("convert_temperature", value=25.0, from_unit="Kelvin", to_unit="F"))


def test_parallel_item_any_order(items):
    weather = items["parallel_0"]
    rome, paris = call("get_current_weather", city="Rome"), call("get_current_weather", city="Paris", unit="celsius")
    assert valid(weather, rome + "\n" + paris)
    assert not valid(weather, paris)
    assert not valid(weather, paris + "\n" + call("get_current_weather", city="Milan"))


EXPECTED_PROMPT = (
    "<|im_start|>system\n"
    "## Metadata\n\n"
    "Knowledge Cutoff Date: June 2025\n"
    "Today Date: 01 July 2025\n"
    "Reasoning Mode: /no_think\n\n"
    "## Custom Instructions\n\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face.\n\n"
    "## Tools\n\n"
    "### XML Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n\n"
    "<tools>\n"
    '{"name": "geometry.triangle_area", "description": "Calculate the area of a triangle from its base and height. '
    'Note that the provided function is in Python 3 syntax.", "parameters": {"type": "dict", "properties": '
    '{"base": {"type": "integer", "description": "The base of the triangle."}, "height": {"type": "integer", '
    '"description": "The height of the triangle."}, "unit": {"type": "string", "description": '
    '"The unit of length, default \'units\'."}}, "required": ["base", "height"]}}\n'
    "</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags.\n\n"
    "### Python Tools\n\n"
    "None\n\n"
    "<|im_end|>\n"
    "<|im_start|>user\n"
    "What is the area of a triangle whose base is 10 units and height is 5 units?<|im_end|>\n"
    "<|im_start|>assistant\n"
    "<think>\n\n</think>\n"
)


def test_exact_prompt_through_lighteval(tmp_path):
    """The rendered template with tools is what lighteval hands the model (plain prompt, no second template)."""
    from lighteval.tasks.prompt_manager import PromptManager

    from tests.eval_fixtures import make_tiny_tokenizer

    tok = make_tiny_tokenizer(tmp_path / "tok", chat=True)
    configs = bfcl.build_task_configs(tmp_path / "data", tok, "/no_think", root=FIXTURES)
    assert [c.name for c in configs] == ["bfcl:simple_python", "bfcl:parallel"]  # the fixture has no multiple*
    line = json.loads((tmp_path / "data" / "simple_python" / "test.jsonl").read_text().splitlines()[0])
    assert PromptManager(use_chat_template=False).prepare_prompt(bfcl.bfcl_prompt(line, "bfcl:simple_python")) \
        == EXPECTED_PROMPT
    think = bfcl.render_prompt(tok, bfcl.load_items("simple_python", FIXTURES)[0], "/think")
    assert "Reasoning Mode: /think\n" in think and think.endswith("<|im_start|>assistant\n")


def test_bfcl_packaged_data():
    """The four categories from bfcl-eval 2026.3.23's own data (BFCL v4): sizes, answers, Python hints."""
    sizes = {c: len(bfcl.load_items(c)) for c in bfcl.CATEGORIES}
    assert sizes == {"simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200}
    for item in bfcl.load_items("parallel_multiple"):
        assert len(item["ground_truth"]) >= 2
        assert all(f["description"].endswith("Note that the provided function is in Python 3 syntax.")
                   for f in item["function"])


@pytest.mark.slow
def test_lighteval_run_on_a_tiny_chat_model(tmp_path, monkeypatch):
    from eval.run import run_eval
    from tests.eval_fixtures import make_tiny_model

    monkeypatch.setenv(bfcl.DATA_ENV, str(FIXTURES))
    model = make_tiny_model(tmp_path / "tiny", chat=True)
    scores = run_eval(model, "bfcl-no-think", tmp_path / "out", dtype="float32", generation={"max_new_tokens": 8})
    assert sorted(scores) == ["bfcl:_average|0", "bfcl:parallel|0", "bfcl:simple_python|0"], scores
    assert all(list(m) == ["acc"] and 0.0 <= m["acc"] <= 1.0 for m in scores.values())
    # lighteval's own mean over the bfcl: tasks is the BFCL number (unweighted over categories)
    assert scores["bfcl:_average|0"]["acc"] == pytest.approx(bfcl.summary(scores))
    meta = json.loads((tmp_path / "out" / "eval_run.json").read_text())
    assert meta["system_prompt"] == "/no_think"
