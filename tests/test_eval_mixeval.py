"""The authors' MixEval-Hard (eval/tasks/mixeval.py) on lighteval 0.13: definition, prompts, judge, end to end.

Offline, on CPU: tests/fixtures/eval_datasets/MixEval/MixEval.jsonl in the Hub layout through
$SMOLLM3_EVAL_DATASETS; the end-to-end run goes through eval.run.run_eval with a tiny chat model as both the
evaluated model and the LOCAL judge ($SMOLLM3_MIXEVAL_JUDGE, backend transformers): its score only has to be a
number in range; the verdict parsing is checked on hand-written judge answers. Expected values are written by hand
from huggingface/smollm text/evaluation/smollm3/tasks.py @a041759883ec7152d18fb985ea49be641a0bceef ("tasks.py
Lnn") and lighteval 2788496's extended/mix_eval/{main.py, prompts.py, judge_prompts.py}; none is read from eval/tasks.
"""

import copy

import pytest

from eval.lighteval_compat import hide_nanotron_from_lighteval  # noqa: E402

hide_nanotron_from_lighteval()

from lighteval.models.model_output import ModelResponse  # noqa: E402
from lighteval.tasks.lighteval_task import LightevalTask  # noqa: E402

from eval.tasks import DATASETS_ENV, all_task_configs, mixeval, why_unavailable  # noqa: E402

NAMES = ["mixeval_hard:freeform", "mixeval_hard:multichoice"]



@pytest.fixture(scope="module")
def local(hub):
    return {c.name: c for c in all_task_configs(hub) if c.name in NAMES}


def docs(config):
    return LightevalTask(copy.deepcopy(config)).eval_docs()


def test_definition():
    cfgs = {c.name: c for c in all_task_configs("") if c.name.startswith("mixeval")}
    assert sorted(cfgs) == NAMES  # tasks.py L623-654 (the easy ones are in no suite)
    for name, split in zip(NAMES, ["free_form", "multiple_choice"]):
        c = cfgs[name]
        assert (c.hf_repo, c.hf_revision, c.hf_subset, list(c.evaluation_splits), c.few_shots_split) == \
            ("MixEval/MixEval", None, "MixEval_Hard", [split], None)
        assert (c.generation_size, list(c.stop_sequence), c.few_shots_select) == (100, [], "random_sampling")
        (metric,) = c.metrics  # both take llm_judge_mixeval_multichoice_flow_judge (tasks.py L626, L643)
        assert (metric.metric_name, metric.batched_compute, metric.corpus_level_fn([1, 0, 1, 1])) == \
            ("judge_score_flow", True, 0.75)  # np.mean (tasks.py L567-569)


# prompts.py construct_prompt_freeform / construct_prompt_multichoice (L153-191); main.py L44-74
PROMPTS = [
    ("mixeval_hard:freeform", 0, "Question: What does a manometer measure?\nAnswer the question shortly.",
     ["Pressure", "gas pressure"], [0, 1], "What does a manometer measure?"),
    ("mixeval_hard:freeform", 1, "Question: A train leaves at 3 pm and travels for 2 hours and 30 minutes.\nAt what "
     "time does it arrive?\nAnswer the question. \nLet's think step by step.", ["5:30 pm"], [0],
     "At what time does it arrive?"),  # GSM8k: step-by-step suffix; context first
    ("mixeval_hard:multichoice", 0, "Which gas makes up most of the Earth's atmosphere?\nA. Oxygen\nB. Nitrogen\n"
     "C. Argon\nD. Carbon dioxide\nAnswer with the option letter from the given choices directly.",
     ["Oxygen", "Nitrogen", "Argon", "Carbon dioxide"], [1], "Which gas makes up most of the Earth's atmosphere?"),
    ("mixeval_hard:multichoice", 1, "How to keep bread fresh\nWhich solution is correct?\nA. Store it in a paper bag "
     "at room temperature.\nB. Store it in a bowl of water.\nAnswer with the option letter from the given choices "
     "directly.", ["Store it in a paper bag at room temperature.", "Store it in a bowl of water."], [0],
     "Which solution is correct?"),
]


@pytest.mark.parametrize("name,index,query,choices,gold,question", PROMPTS)
def test_prompt(local, name, index, query, choices, gold, question):
    from lighteval.tasks.prompt_manager import PromptManager

    doc = docs(local[name])[index]
    assert (doc.query, doc.choices, doc.gold_index, doc.specific["question"]) == (query, choices, gold, question)
    assert PromptManager().prepare_prompt(doc) == query  # main.py's instruction "" adds nothing (as in 2788496)


@pytest.mark.parametrize("judgement,score", [
    ("<feedback>The model chose Nitrogen, the correct option.</feedback>\n<score>\n1\n</score>", 1),
    ("<feedback>Wrong option.</feedback>\n<score> 0 </score>", 0),
    ("<feedback>Mostly right.</feedback>\n<score>\n4\n</score>", 4),  # the digit as is (freeform rubric 1-5)
    ("<score>1</score>", 0),  # main.py L79: whitespace required on both sides
    ("<score> 10 </score>", 0),  # one digit only
    ("The answer is correct. Score: 1", 0),
    (None, 0),  # not a string: logged, 0
])
def test_judge_verdict_parsing(judgement, score):
    assert mixeval.process_judge_response(judgement) == score


def test_judge_input():
    """tasks.py L527-535: reasoning block removed, stripped; past 2048 generated tokens, the last 8192 chars."""
    short = ModelResponse(text=["<think>long thoughts</think>\n  The answer is B.  "], output_tokens=[[1] * 2048])
    assert mixeval.judge_input(short) == "The answer is B."
    text = "x" * 9000 + "END"
    long = ModelResponse(text=[text], output_tokens=[[1] * 2049])
    assert mixeval.judge_input(long) == text[-8192:] and len(mixeval.judge_input(long)) == 8192


def test_judge_prompt_and_scores(local, monkeypatch):
    """The judge's prompt (judge_prompts.py flow_judge_for_multichoice_template: question without context,
    options, answer, gold = first gold choice) and the scores parsed from its hand-written answers."""
    seen = {}

    def fake_generate(model, prompts, max_tokens):  # our own judge call, not lighteval's
        seen.update(model=model, prompts=prompts, max_tokens=max_tokens)
        return ["<feedback>ok</feedback>\n<score>\n1\n</score>", "<feedback>no</feedback> <score> 0 </score>"]

    monkeypatch.setattr(mixeval, "generate_transformers", fake_generate)
    monkeypatch.setenv(mixeval.JUDGE_ENV, "/models/judge")
    monkeypatch.setenv(mixeval.BACKEND_ENV, "transformers")
    ds = docs(local["mixeval_hard:multichoice"])
    responses = [ModelResponse(text=["<think>hmm</think>B. Nitrogen"], output_tokens=[[1, 2]]),
                 ModelResponse(text=["B"], output_tokens=[[1]])]
    (metric,) = local["mixeval_hard:multichoice"].metrics
    assert metric.compute_sample(responses=responses, docs=ds) == {"judge_score_flow": [1, 0]}
    assert (seen["model"], seen["max_tokens"]) == ("/models/judge", 1024)  # tasks.py L565
    (message,) = seen["prompts"][0]
    assert message["role"] == "user" and message["content"].startswith("# GOAL\nYour job is to evaluate a task")
    assert ("<inputs>\nWhich gas makes up most of the Earth's atmosphere?\noptions:\nA. Oxygen\nB. Nitrogen\n"
            "C. Argon\nD. Carbon dioxide\n</inputs>") in message["content"]
    assert "<output>\nB. Nitrogen\n</output>" in message["content"]
    assert "The correct option for this task is:\nNitrogen\n\nDid the model choose the correct option?" in \
        message["content"]
    assert "<inputs>\nWhich solution is correct?\noptions:\nA. Store it" in seen["prompts"][1][0]["content"]
    assert ds[0].specific["judgement_flow"].endswith("<score>\n1\n</score>")


def test_judge_settings(monkeypatch, tmp_path, local):
    for env in (mixeval.JUDGE_ENV, mixeval.BACKEND_ENV, mixeval.MAX_TOKENS_ENV):
        monkeypatch.delenv(env, raising=False)
    assert mixeval.judge_settings() == ("flowaicom/Flow-Judge-v0.1", "vllm", 1024)  # the authors' (tasks.py L560-565)
    monkeypatch.setenv(mixeval.BACKEND_ENV, "openai")
    with pytest.raises(ValueError, match="vllm or transformers"):
        mixeval.judge_settings()
    monkeypatch.setenv(mixeval.BACKEND_ENV, "transformers")
    assert "HF_HUB_OFFLINE" in why_unavailable(local["mixeval_hard:freeform"], offline=True)  # Hub id, not cached
    monkeypatch.setenv(mixeval.JUDGE_ENV, str(tmp_path))
    assert why_unavailable(local["mixeval_hard:freeform"], offline=True) is None  # a local folder
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        monkeypatch.setenv(mixeval.BACKEND_ENV, "vllm")
        assert "vllm is not installed" in why_unavailable(local["mixeval_hard:freeform"], offline=False)


@pytest.mark.slow
def test_end_to_end_with_local_judge(hub, tmp_path, monkeypatch):
    """`custom|mixeval_hard|0|0` through eval.run with the chat template, a tiny chat model answering and a tiny
    local judge (8 new tokens) judging (~15 s): judge_score_flow of both subtasks and their average, in [0, 1]."""
    from eval import specs
    from eval.run import run_eval
    from tests.eval_fixtures import make_tiny_model

    model = make_tiny_model(tmp_path / "tiny", chat=True)
    (tmp_path / "x.txt").write_text("custom|mixeval_hard|0|0\n")
    (tmp_path / "published.yaml").write_text(
        "suites:\n  x: {file: x.txt, backend: transformers, use_chat_template: true, system_prompt: null, "
        "generation: {temperature: 0.0, max_new_tokens: 8}}\ncustom_tasks: {mixeval_hard: MixEval-Hard}\n"
        "not_in_lighteval_0_13: {}\n")
    monkeypatch.setattr(specs, "SUITES_DIR", tmp_path)
    specs._suites_yaml.cache_clear()
    monkeypatch.setenv(DATASETS_ENV, str(hub))
    monkeypatch.setenv(mixeval.JUDGE_ENV, str(model))
    monkeypatch.setenv(mixeval.BACKEND_ENV, "transformers")
    monkeypatch.setenv(mixeval.MAX_TOKENS_ENV, "8")
    try:
        scores = run_eval(model, "x", tmp_path / "out", max_samples=2, max_length=512, dtype="float32",
                          save_details=False)
    finally:
        specs._suites_yaml.cache_clear()
    assert set(scores) == {"mixeval_hard:freeform|0", "mixeval_hard:multichoice|0", "mixeval_hard:_average|0"}
    assert all(list(v) == ["judge_score_flow"] and 0 <= v["judge_score_flow"] <= 1 for v in scores.values())
