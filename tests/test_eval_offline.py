"""Offline eval tasks: deterministic data, and each task's scoring on hand-made predictions."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lighteval.models.model_output import ModelResponse  # noqa: E402

from eval import offline_data as od  # noqa: E402
from eval import offline_tasks as ot  # noqa: E402


def gen(text):
    return ModelResponse(text=[text])


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from tests.eval_fixtures import make_tiny_tokenizer

    return make_tiny_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, tokenizer):
    return od.write_offline_data(tmp_path_factory.mktemp("data"), tokenizer, (256, 512), n_passkey=6)


def rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_data_is_deterministic(tmp_path, data_dir, tokenizer):
    again = od.write_offline_data(tmp_path, tokenizer, (256, 512), n_passkey=6)
    for f in sorted(data_dir.rglob("*.jsonl")):
        assert (again / f.relative_to(data_dir)).read_bytes() == f.read_bytes(), f


def test_mc_items_are_four_way_cloze():
    items = od.mc_items()
    assert len(items) == 745  # every paragraph of >= 30 words of pydoc_data.topics (Python 3.11)
    assert len({it["id"].split("#")[0] for it in items[:300]}) == 75  # the tiny suite's 300 span every topic
    for it in items:
        assert len(it["choices"]) == 4 and len(set(it["choices"])) == 4 and 0 <= it["gold"] < 4
    golds = [it["gold"] for it in items]
    assert max(golds.count(g) for g in range(4)) < len(items) / 2  # gold position is shuffled


def test_mc_accuracy_from_logprobs():
    doc = ot.mc_prompt({"context": "x", "choices": ["a", "bb", "ccc", "dddd"], "gold": 2})
    assert doc.choices[0] == " a"
    right = ModelResponse(logprobs=[-5.0, -4.0, -1.0, -3.0], output_tokens=[[1], [2], [3], [4]])
    wrong = ModelResponse(logprobs=[-0.5, -4.0, -1.0, -3.0], output_tokens=[[1], [2], [3], [4]])
    for metric in ot.MC_METRICS:
        assert metric.compute_sample(doc=doc, model_response=right)[metric.metric_name] == 1
        assert metric.compute_sample(doc=doc, model_response=wrong)[metric.metric_name] == 0


def test_math_splits_are_disjoint_and_answers_right(data_dir):
    train, test = rows(data_dir / "math_word/train.jsonl"), rows(data_dir / "math_word/test.jsonl")
    assert not {r["question"] for r in train} & {r["question"] for r in test}
    for r in train + test:
        assert r["solution"].endswith(f"The answer is {r['answer']}.")
        assert ot.extract_final_number(r["solution"]) == r["answer"]


@pytest.mark.parametrize("pred,score", [
    (" 3 + 4 = 7. The answer is 7.", 1), (" The answer is 7.\n\nQuestion: 2 + 2? The answer is 4.", 1),
    (" So 7 apples", 1), (" The answer is 8.", 0), (" no idea", 0), (" 1,007", 0),
])
def test_math_exact_match(pred, score):
    doc = ot.math_prompt({"question": "q", "solution": "3 + 4 = 7. The answer is 7.", "answer": 7})
    assert doc.query == "Question: q\nAnswer:"
    assert ot.FinalNumberMatch().compute(doc=doc, model_response=gen(pred)) == score


def test_math_exact_match_thousands():
    doc = ot.math_prompt({"question": "q", "solution": "s", "answer": 1007})
    assert ot.FinalNumberMatch().compute(doc=doc, model_response=gen(" The answer is 1,007.")) == 1


def test_humaneval_canonical_passes_wrong_fails(data_dir):
    probs = rows(data_dir / "humaneval/test.jsonl")
    assert len(probs) == 164
    docs = [ot.humaneval_prompt(p) for p in probs[:3]]
    canonical = [gen(p["canonical_solution"] + "\n\ndef extra():\n    pass\n") for p in probs[:3]]
    wrong = [gen("    return None\n"), gen("    raise ValueError()\n"), gen("    while True:\n        pass\n")]
    fn = ot.HUMANEVAL_METRIC.sample_level_fn
    assert fn.compute(responses=canonical, docs=docs) == [1.0, 1.0, 1.0]
    assert fn.compute(responses=wrong, docs=docs) == [0.0, 0.0, 0.0]  # the last one times out


def test_passkey_prompts_fit_and_score(data_dir, tokenizer):
    for length in (256, 512):
        items = rows(data_dir / f"passkey_{length}/test.jsonl")
        depths = [it["depth"] for it in items]
        assert depths[0] == 0.0 and depths[-1] == 1.0
        for it in items:
            n = len(tokenizer(it["prompt"], add_special_tokens=False)["input_ids"])
            assert length // 2 < n <= length - od.PASSKEY_ANSWER_TOKENS
            assert it["prompt"].count(it["passkey"]) == 2 and it["prompt"].endswith(od.PASSKEY_QUESTION)
    doc = ot.passkey_prompt(items[0])
    key = items[0]["passkey"]
    assert ot.PasskeyMatch().compute(doc=doc, model_response=gen(f" {key}. Remember it.")) == 1
    assert ot.PasskeyMatch().compute(doc=doc, model_response=gen(" 12345")) == (key == "12345")
    assert ot.PasskeyMatch().compute(doc=doc, model_response=gen(" I do not know")) == 0


def test_task_table_and_specs(data_dir):
    names = [c.name for c in ot.build_task_configs(data_dir, "tiny", (256, 512))]
    ruler = ["ruler_512:niah_single_1", "ruler_512:niah_single_2", "ruler_512:niah_multivalue", "ruler_512:fwe"]
    assert names == ["mc_cloze", "math_word", "humaneval"] + ruler  # no RULER task fits 256 tokens
    assert ot.task_specs("tiny", (256, 512)) == ["mc_cloze|0", "math_word|5", "humaneval|0"] + [f"{n}|0" for n in ruler]
    tiny = od.OFFLINE_SUITES["tiny"]["tasks"]  # 160 cloze items (+-3.6 points), 16 word problems, 2 HumanEval
    assert (tiny["mc_cloze"][2], tiny["math_word"][2], tiny["humaneval"][2]) == (160, 16, 2)
    assert len(rows(data_dir / "math_word/test.jsonl")) == 100
    assert [c.name for c in ot.build_task_configs(data_dir, "passkey", (32768,))] == ["passkey_32768"]


def test_only_project_tasks_are_registered(tmp_path, data_dir):
    """The offline registry imports none of lighteval's built-in task modules; 4-field specs fail in 0.13."""
    code = f"""
import sys
from eval.lighteval_compat import hide_nanotron_from_lighteval, only_custom_registry_cls
hide_nanotron_from_lighteval()
from eval.offline_tasks import build_tasks_module
module = build_tasks_module({str(data_dir)!r}, "tiny", (256, 512))
reg = only_custom_registry_cls()(tasks="mc_cloze|0,ruler_512:fwe|0", custom_tasks=module)
print(sorted(reg.load_tasks()))
print(sorted(reg._task_registry))
print([m for m in sys.modules if m.startswith(("lighteval.tasks.tasks.", "lighteval.tasks.multilingual.tasks."))])
try:
    only_custom_registry_cls()(tasks="custom|mc_cloze|0|1", custom_tasks=module)
    print("4-field accepted")
except ValueError as e:
    print("4-field rejected")
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "['mc_cloze|0', 'ruler_512:fwe|0']"
    assert lines[1] == ("['humaneval', 'math_word', 'mc_cloze', 'ruler_512:fwe', 'ruler_512:niah_multivalue', "
                        "'ruler_512:niah_single_1', 'ruler_512:niah_single_2']")
    assert lines[2] == "[]"
    assert lines[3] == "4-field rejected"
