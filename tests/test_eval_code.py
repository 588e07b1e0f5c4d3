"""HumanEval+ / MBPP+ (eval/code_tasks.py): hand-written completions scored by EvalPlus's own sandbox on a local
fixture in EvalPlus's schema (tests/fixtures/evalplus), its time limit, the exact prompt, and a lighteval run.

Usage: .venv/bin/python -m pytest -q tests/test_eval_code.py      (-m "not slow" leaves out the lighteval run)
"""

import json
import time

import pytest
from conftest import REPO

from eval import code_tasks as ct  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "evalplus"
HE, MBPP = FIXTURES / "HumanEvalPlus.jsonl", FIXTURES / "MbppPlus.jsonl"

# completions of HumanEval/0 (has_close_elements): the prompt ends with the docstring, the body follows
RIGHT = ("    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n"
         "            if abs(a - b) < threshold:\n                return True\n    return False\n")
OFF_BY_EQUAL = RIGHT.replace("<", "<=")  # passes the 7 original tests, fails the plus input ([1.0, 2.0], 1.0)
WRONG = "    return True\n"
LOOP = "    while True:\n        pass\n    return False\n"  # a return: EvalPlus's sanitizer keeps only such functions
# ignores the per-input alarm: only the kill of the whole process past the summed limits stops it
DEAF_LOOP = ("    import signal\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
             "    while True:\n        pass\n    return number\n")


def score(path, dataset, task_id, completion, **kw):
    result = ct.check(dataset, path, task_id, completion, **kw)
    return result["base"], result["plus"], result["pass@1"], result["pass@1_base"]


def test_correct_and_wrong_humaneval_plus():
    assert score(HE, "humaneval", "HumanEval/0", RIGHT) == ("pass", "pass", 1.0, 1.0)
    assert score(HE, "humaneval", "HumanEval/0", WRONG) == ("fail", "fail", 0.0, 0.0)
    # the plus tests count: right on the base tests only is a 0 for pass@1 (HumanEval+), a 1 for the base number
    assert score(HE, "humaneval", "HumanEval/0", OFF_BY_EQUAL) == ("pass", "fail", 0.0, 1.0)
    # floats are compared with EvalPlus's tolerance, not ==
    assert score(HE, "humaneval", "HumanEval/2", "    return number - int(number)\n")[2] == 1.0


def test_correct_and_wrong_mbpp_plus():
    right = "import math\ndef is_not_prime(n):\n    if n == 1:\n        return True\n" \
            "    return any(n % d == 0 for d in range(2, math.isqrt(n) + 1))\n"
    forgets_one = "def is_not_prime(n):\n    return any(n % d == 0 for d in range(2, n))\n"
    assert score(MBPP, "mbpp", "Mbpp/3", right) == ("pass", "pass", 1.0, 1.0)
    assert score(MBPP, "mbpp", "Mbpp/3", forgets_one) == ("pass", "fail", 0.0, 1.0)  # 1 is only in the plus inputs
    assert score(MBPP, "mbpp", "Mbpp/17", "def square_perimeter(a):\n    return a * a\n")[2] == 0.0
    # what the model writes after its function (a stop word of MBPP+) is cut before execution
    assert score(MBPP, "mbpp", "Mbpp/17", "def square_perimeter(a):\n    return 4 * a\nassert False\n")[2] == 1.0


def test_endless_loop_stopped_by_the_time_limit():
    start = time.monotonic()
    assert score(HE, "humaneval", "HumanEval/0", LOOP)[2:] == (0.0, 0.0)  # 1 s alarm on the first input
    assert time.monotonic() - start < 15
    start = time.monotonic()
    base, plus, p1, p1_base = score(HE, "humaneval", "HumanEval/2", DEAF_LOOP, min_time_limit=0.2)
    assert (base, plus, p1, p1_base) == ("timeout", "timeout", 0.0, 0.0)  # the process is killed
    assert time.monotonic() - start < 20


def test_prompt_and_task_config(tmp_path, monkeypatch):
    from lighteval.tasks.prompt_manager import PromptManager

    monkeypatch.setenv("HUMANEVAL_OVERRIDE_PATH", str(HE))
    monkeypatch.setenv("MBPP_OVERRIDE_PATH", str(MBPP))
    configs = {c.name: c for c in ct.build_task_configs(tmp_path, offline=True)}
    assert sorted(configs) == ["humaneval_plus", "mbpp_plus"]
    rows = {}
    for name in configs:
        for line in (tmp_path / name / "test.jsonl").read_text().splitlines():
            rows[json.loads(line)["task_id"]] = json.loads(line)
    assert sorted(rows) == ["HumanEval/0", "HumanEval/2", "Mbpp/17", "Mbpp/3"]
    plain = PromptManager(use_chat_template=False)
    assert plain.prepare_prompt(ct.code_prompt(rows["HumanEval/2"], "humaneval_plus")) == (
        'def truncate_number(number: float) -> float:\n'
        '    """ Given a positive floating point number, it can be decomposed into\n'
        '    and integer part (largest integer smaller than given number) and decimals\n'
        '    (leftover part always smaller than 1).\n'
        '\n'
        '    Return the decimal part of the number.\n'
        '    >>> truncate_number(3.5)\n'
        '    0.5\n'
        '    """\n')
    assert plain.prepare_prompt(ct.code_prompt(rows["Mbpp/17"], "mbpp_plus")) == (
        '"""\nWrite a function that returns the perimeter of a square given its side length as input.\n'
        'assert square_perimeter(10)==40\n"""\n')
    eos = ["<|endoftext|>", "<|endofmask|>", "</s>", "\nif __name__", "\ndef main(", "\nprint("]
    assert configs["humaneval_plus"].stop_sequence == eos + ["\ndef ", "\nclass ", "\nimport ", "\nfrom ", "\nassert "]
    assert configs["mbpp_plus"].stop_sequence == eos + ['\n"""', "\nassert"]
    assert configs["humaneval_plus"].generation_size == 768
    assert [m.metric_name for m in configs["mbpp_plus"].metrics] == ["pass@1", "pass@1_base"]


@pytest.mark.slow
def test_lighteval_run_on_a_tiny_model(tmp_path, monkeypatch, capfd):
    """The published base suite offline: its two code tasks run on the fixture through lighteval; the rest is
    skipped (no Hub, no local copies of the other datasets)."""
    from eval.run import run_eval
    from tests.eval_fixtures import make_tiny_model

    monkeypatch.setenv("HUMANEVAL_OVERRIDE_PATH", str(HE))
    monkeypatch.setenv("MBPP_OVERRIDE_PATH", str(MBPP))
    monkeypatch.delenv("SMOLLM3_EVAL_DATASETS", raising=False)
    monkeypatch.setattr(ct, "GENERATION_SIZE", 32)  # EvalPlus's 768 new tokens take a minute on 2 busy cores
    model = make_tiny_model(tmp_path / "tiny")
    scores = run_eval(model, "smollm3-base", tmp_path / "out", max_samples=2, dtype="float32", save_details=True)
    assert sorted(scores) == ["humaneval_plus|0", "mbpp_plus|0"], scores
    for metrics in scores.values():
        assert sorted(metrics) == ["pass@1", "pass@1_base"]
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert "skipping custom|hellaswag_cf|0|1" in capfd.readouterr().err
    details = list((tmp_path / "out").rglob("details_humaneval_plus*.parquet"))
    assert details, sorted(p.name for p in (tmp_path / "out").rglob("*"))
