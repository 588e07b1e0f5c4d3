"""The SmolLM3 authors' custom tasks (eval/tasks/) on lighteval 0.13: definitions, prompts, metrics, end to end.

Offline, on CPU. The datasets are the tiny copies of tests/fixtures/eval_datasets, written in each Hub dataset's
own layout and schema and read through $SMOLLM3_EVAL_DATASETS as on an air-gapped cluster; lighteval's own
LightevalTask loads them and samples the few-shot examples, its PromptManager builds the model's context, and
the end-to-end runs go through eval.run.run_eval (lighteval's Pipeline) on a tiny random model.
Every expected value is written by hand from the authors' definitions, huggingface/smollm
text/evaluation/smollm3/tasks.py @a041759883ec7152d18fb985ea49be641a0bceef ("tasks.py Lnn"), and from the
lighteval template each task uses (lighteval/tasks/templates/, the same at 2788496 and 0.13); none is read
from eval/tasks.
"""

import copy
from pathlib import Path

import pytest
from conftest import REPO

from eval.lighteval_compat import hide_nanotron_from_lighteval  # noqa: E402

hide_nanotron_from_lighteval()

from lighteval.models.model_output import ModelResponse  # noqa: E402
from lighteval.tasks.lighteval_task import LightevalTask  # noqa: E402
from lighteval.tasks.prompt_manager import PromptManager  # noqa: E402

from eval.tasks import DATASETS_ENV, build_task_configs  # noqa: E402

# tasks.py L295-311, in the authors' order
MMLU = """abstract_algebra anatomy astronomy business_ethics clinical_knowledge college_biology college_chemistry
college_computer_science college_mathematics college_medicine college_physics computer_security conceptual_physics
econometrics electrical_engineering elementary_mathematics formal_logic global_facts high_school_biology
high_school_chemistry high_school_computer_science high_school_european_history high_school_geography
high_school_government_and_politics high_school_macroeconomics high_school_mathematics high_school_microeconomics
high_school_physics high_school_psychology high_school_statistics high_school_us_history high_school_world_history
human_aging human_sexuality international_law jurisprudence logical_fallacies machine_learning management marketing
medical_genetics miscellaneous moral_disputes moral_scenarios nutrition philosophy prehistory professional_accounting
professional_law professional_medicine professional_psychology public_relations security_studies sociology
us_foreign_policy virology world_religions""".split()
MATH = ["algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory", "prealgebra",
        "precalculus"]  # tasks.py L477-485
CF = ["acc_norm_token", "acc_norm"]  # tasks.py L77-80: LogProbTokenNorm, LogProbCharNorm
COT = "\nPlease reason step by step, and put your final answer within \\boxed{}."  # lighteval 2788496 math_cot
GSM_PLUS_HEAD = (  # tasks.py L674-678
    "Solve the following math problem efficiently and clearly.  The last line of your response should be of the "
    "following format: 'Therefore, the final answer is: $\\boxed{ANSWER}$. I hope it is correct' (without quotes) "
    "where ANSWER is just the final number or expression that solves the problem. Think step by step before "
    "answering.\n\n")



@pytest.fixture(scope="module")
def local(hub):
    return {c.name: c for c in build_task_configs(hub)}


def docs(config, fewshots=0, fewshot_docs=False):
    """lighteval's docs of a task: eval split rows in file order, or (few-shot) shuffled with examples attached."""
    config = copy.deepcopy(config)
    config.num_fewshots = fewshots
    task = LightevalTask(config)
    return task.get_docs() if fewshot_docs else task.eval_docs()


def context(doc) -> str:
    return PromptManager(use_chat_template=False).prepare_prompt(doc)


# --------------------------------------------------------------------------- definitions
def test_task_names():
    names = {c.name for c in build_task_configs("")}
    assert names == {"hellaswag_cf", "arc_cf:easy", "arc_cf:challenge", "mmlu_pro_cf", "mmlu_pro_mcf", "boolq_cf",
                     "commonsenseqa_cf", "winogrande_cf", "openbookqa_cf", "piqa_cf", "gsm8k", "gsm_plus"} \
        | {f"mmlu_cf:{s}" for s in MMLU} | {f"math_cot:{s}" for s in MATH}
    assert len(MMLU) == 57


# name: hf_repo, revision (None: latest), subset, evaluation splits, few-shot split lighteval uses, few-shot
# selection, generation size, stop sequences, metrics. Revisions: tasks.py, except the loading-script ones that
# datasets >= 4 refuses (hellaswag 6002345 -> 218ec52, the parquet main; winogrande 85ac5b5 -> 01e7417 and piqa
# 2e8ac2d -> ba2f7a4: the authors' replacements on their noscript-evals branch, tasks.py @3ad6b85 L225, L250).
DEFINITIONS = {
    "hellaswag_cf": ("Rowan/hellaswag", "218ec52e09a7e7462a5400043bb9a69a41d06b76", "default", ("validation",),
                     "train", None, None, (), CF),  # tasks.py L136-160
    "arc_cf:easy": ("allenai/ai2_arc", "210d026faf9955653af8916fad021475a3f00453", "ARC-Easy", ("test",),
                    "train", None, None, (), CF),  # L84-109
    "arc_cf:challenge": ("allenai/ai2_arc", "210d026faf9955653af8916fad021475a3f00453", "ARC-Challenge",
                         ("test",), "train", None, None, (), CF),
    "mmlu_cf:anatomy": ("cais/mmlu", "c30699e8356da336a370243923dbaf21066bb9fe", "anatomy", ("test",), "dev",
                        None, None, (), CF),  # L313-336
    "mmlu_pro_cf": ("TIGER-Lab/MMLU-Pro", "3373e0b32277875b8db2aa555a333b78a08477ea", "default", ("test",),
                    "validation", None, None, (), CF),  # L339-361
    "mmlu_pro_mcf": ("TIGER-Lab/MMLU-Pro", "3373e0b32277875b8db2aa555a333b78a08477ea", "default", ("test",),
                     "validation", None, None, (), ["acc"]),  # MCF letters: unnormalised acc only
    "boolq_cf": ("google/boolq", None, "default", ("validation",), "train", None, 5, ("\n",), CF),  # L113-132
    "commonsenseqa_cf": ("tau/commonsense_qa", "94630fe30dad47192a8546eb75f094926d47e155", "default",
                         ("validation",), "train", None, None, (), CF),  # L164-186
    "winogrande_cf": ("allenai/winogrande", "01e74176c63542e6b0bcb004dcdea22d94fb67b5", "winogrande_xl",
                      ("validation",), "train", None, None, (), CF),  # L216-235
    "openbookqa_cf": ("allenai/openbookqa", "388097ea7776314e93a529163e0fea805b8a6454", "main", ("validation",),
                      "train", None, None, (), CF),  # L190-212
    "piqa_cf": ("ybisk/piqa", "ba2f7a4920f4968f04c174c53cc157c899e93501", "plain_text", ("validation",), "train",
                None, None, (), CF),  # L239-262
    "gsm8k": ("openai/gsm8k", "e53f048856ff4f594e959d75785d2c2d37b678ee", "main", ("test",), "train",
              "random_sampling_from_train", 256, ("Question:",), ["extractive_match"]),  # L428-444
    "math_cot:geometry": ("DigitalLearningGmbH/MATH-lighteval", None, "geometry", ("test",), "train",
                          "random_sampling_from_train", 4096, ("\n",), ["extractive_match"]),  # L460-486
    "gsm_plus": ("qintongli/GSM-Plus", None, "default", ("testmini",), None, None, None, (),
                 ["math_pass@1:1_samples"]),  # L693-710
}


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_definition(name):
    c = {c.name: c for c in build_task_configs("")}[name]
    repo, rev, subset, splits, fewshot_split, select, gen_size, stops, metrics = DEFINITIONS[name]
    task = LightevalTask(c)  # no dataset is read until docs are asked for
    assert (c.hf_repo, c.hf_revision, c.hf_subset, tuple(c.evaluation_splits)) == (repo, rev, subset, splits)
    assert (task.fewshot_split, c.few_shots_select, c.generation_size, tuple(c.stop_sequence)) == \
        (fewshot_split, select, gen_size, stops)
    assert [m.metric_name for m in c.metrics] == metrics


def test_metric_settings():
    from lighteval.metrics.normalizations import LogProbCharNorm, LogProbTokenNorm
    from lighteval.metrics.utils.extractive_match_utils import ExprExtractionConfig, LatexExtractionConfig

    c = {c.name: c for c in build_task_configs("")}
    norms = [m.sample_level_fn.logprob_normalization for m in c["winogrande_cf"].metrics]
    assert norms == [LogProbTokenNorm(), LogProbCharNorm(ignore_first_space=False)]
    assert c["mmlu_pro_mcf"].metrics[0].sample_level_fn.logprob_normalization is None
    for name, gold in (("gsm8k", ExprExtractionConfig()), ("math_cot:algebra", LatexExtractionConfig())):
        fn = c[name].metrics[0].sample_level_fn  # lighteval 2788496 metrics.py L195-203; tasks.py L447-458
        assert (list(fn.gold_extraction_target), fn.precision, fn.fallback_mode, fn.aggregation_function) == \
            ([gold], 5, "first_match", max)
        assert list(fn.pred_extraction_target) == \
            [ExprExtractionConfig(), LatexExtractionConfig(boxed_match_priority=0)]
    passk = c["gsm_plus"].metrics[0].sample_level_fn  # lighteval 2788496 metrics.py L381-412
    assert (passk.k, passk.n, passk.strip_strings) == (1, 1, True)


def test_local_copies_replace_hub_ids(hub, monkeypatch):
    for c in build_task_configs(hub):
        assert Path(c.hf_repo).is_dir() and Path(c.hf_repo).is_relative_to(hub) and c.hf_revision is None, c.name
    monkeypatch.setenv(DATASETS_ENV, str(hub))
    assert {c.name: c.hf_repo for c in build_task_configs()}["piqa_cf"] == str(hub / "ybisk" / "piqa")
    monkeypatch.setenv(DATASETS_ENV, str(hub / "nothing-here"))  # no copy: the Hub id and its revision
    piqa = {c.name: c for c in build_task_configs()}["piqa_cf"]
    assert (piqa.hf_repo, piqa.hf_revision) == ("ybisk/piqa", "ba2f7a4920f4968f04c174c53cc157c899e93501")


# --------------------------------------------------------------------------- prompts
# (task, index of the row in its evaluation split, query = the whole 0-shot context, choices, gold indices).
# Templates (lighteval/tasks/templates/): mcq CF "Question: {Q}\nAnswer:" | " {choice}", question and choices
# capitalised with their end stripped (multichoice.py); boolq = mcq with the passage as context line and
# choices yes/no (boolq.py); hellaswag: "{Activity label}:\n{ctx_a} {ctx_b}" with WikiHow "[...]" tags removed
# and " [title]" -> ". " (hellaswag.py); winogrande: the sentence up to "_" (end stripped) | " {option} {rest}",
# decapitalised when the context does not end a sentence (continuation.py, adapters.py winogrand_adapter).
PROMPTS = [
    ("hellaswag_cf", 0, "Roof shingle removal:\nA man is sitting on a roof. He",
     [" is using wrap to wrap a pair of skis.", " is ripping level tiles off.", " is holding a rubik's cube.",
      " starts pulling up roofing on a roof."], [3]),
    ("hellaswag_cf", 1, "Food and Entertaining:\nHow to make a cold brew coffee. Grind the coffee beans coarsely. "
     "Use a burr grinder set to its coarsest setting.",
     [" Fine grounds make the coffee bitter and cloudy.. Combine the grounds with cold water in a jar.",
      " Then pour boiling water over them and drink it at once.", " Put the beans in the freezer overnight.",
      " Throw the grounds away and buy instant coffee instead."], [0]),
    ("arc_cf:easy", 0, "Question: Which statement best explains why photosynthesis is the foundation of most food "
     "webs?\nAnswer:", [" Sunlight is the source of energy for nearly all ecosystems.",
                        " Most ecosystems are found on land instead of in water.",
                        " Carbon dioxide is more available than other gases.",
                        " The producers in all ecosystems are plants."], [0]),
    ("arc_cf:easy", 1, "Question: Which organism is a decomposer?\nAnswer:",
     [" Grass", " Mushroom", " Robin", " Frog"], [1]),  # numeric answerKey "2" (tasks.py L92-94)
    ("arc_cf:challenge", 0, "Question: A group of engineers wanted to know how different building designs would "
     "respond during an earthquake. They made several models of buildings and tested each for its ability to "
     "withstand earthquake conditions. Which will most likely result from testing different building designs?"
     "\nAnswer:", [" Buildings will be built faster", " Buildings will be made safer",
                   " Building designs will look nicer", " Building materials will be cheaper"], [1]),
    ("mmlu_cf:abstract_algebra", 0, "Question: Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nAnswer:",
     [" 0", " 1", " 2", " 3"], [1]),
    ("mmlu_pro_cf", 1, "Question: The sum of the interior angles of a hexagon is:\nAnswer:",
     [" 360 degrees", " 540 degrees", " 720 degrees", " 900 degrees", " 1080 degrees", " 180 degrees",
      " 600 degrees", " 640 degrees"], [2]),
    ("mmlu_pro_mcf", 0, "Question: What is the SI unit of electric charge?\n A. Volt\n B. Ampere\n C. Coulomb\n"
     " D. Ohm\n E. Watt\n F. Farad\n G. Tesla\n H. Joule\n I. Henry\n J. Siemens\nAnswer:",
     [" A", " B", " C", " D", " E", " F", " G", " H", " I", " J"], [2]),
    ("boolq_cf", 0, "Tomato -- The tomato is the edible berry of the plant Solanum lycopersicum. Botanically it is "
     "a fruit, but it is usually prepared and served as a vegetable\nQuestion: Is a tomato a vegetable in botany"
     "\nAnswer:", [" Yes", " No"], [1]),
    ("commonsenseqa_cf", 0, "Question: A revolving door is convenient for two direction travel, but it also serves "
     "as a security measure at a what?\nAnswer:",
     [" Bank", " Library", " Department store", " Mall", " New york"], [0]),
    ("winogrande_cf", 0, "Sarah was a much better surgeon than Maria so",
     [" sarah  always got the harder cases.", " maria  always got the harder cases."], [0]),
    ("winogrande_cf", 1, "Sarah was a much better surgeon than Maria so",
     [" sarah  always got the easier cases.", " maria  always got the easier cases."], [1]),
    ("openbookqa_cf", 1, "Question: A person wants to start saving money so that they can afford a nice vacation at "
     "the end of the year. After looking over their budget and expenses, they decide the best way to save money "
     "is to\nAnswer:", [" Make more phone calls", " Quit eating lunch out", " Buy less with monopoly money",
                        " Have lunch with friends"], [1]),
    ("piqa_cf", 0, "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:",
     [" Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you will "
      "also need to supply it with a water bottle and a food dish.",
      " Provide the guinea pig with a cage full of a few inches of bedding made of ripped jeans material, you will "
      "also need to supply it with a water bottle and a food dish."], [0]),
    ("piqa_cf", 1, "Question: Dresser\nAnswer:",
     [" Replace drawer with bobby pin", " Finish, woodgrain with  bobby pin"], [1]),
    # generative: default_prompts.gsm8k / math_cot of lighteval 2788496 (L930-937, L1465-1471), tasks.py L669-690
    ("gsm8k", 0, "Question: Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and "
     "bakes muffins for her friends every day with four. She sells the remainder at the farmers' market daily for "
     "$2 per fresh duck egg. How much in dollars does she make every day at the farmers' market?\nAnswer:",
     [" Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day at the "
      "farmer\u2019s market.\n#### 18"], [0]),
    ("math_cot:algebra", 0, "If $2a - 3 = 9$, what is $a$?" + COT,
     [" Adding 3 gives $2a = 12$, so $a = \\boxed{6}$."], [0]),
    ("gsm_plus", 0, GSM_PLUS_HEAD + "Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every "
     "morning and bakes muffins for her friends every day with four. She sells the remainder at the farmers' "
     "market daily for $3 per fresh duck egg. How much in dollars does she make every day at the farmers' market?",
     ["27"], [0]),
]


@pytest.mark.parametrize("name,index,query,choices,gold", PROMPTS, ids=[f"{p[0]}-{p[1]}" for p in PROMPTS])
def test_prompt(local, name, index, query, choices, gold):
    from lighteval.utils.utils import as_list

    doc = docs(local[name])[index]
    assert (doc.query, doc.choices, as_list(doc.gold_index)) == (query, choices, gold)
    assert context(doc) == query  # 0-shot: the model reads the query alone (no empty instruction before it)


def test_gsm_plus_skips_critical_thinking(local):
    golds = [d.choices for d in docs(local["gsm_plus"])]
    assert golds == [["27"], ["14"]]  # testmini holds 3 rows; tasks.py L682-683 drops the 'critical thinking' one


def _fixture_rows(repo, config, split):
    import json

    path = REPO / "tests" / "fixtures" / "eval_datasets" / f"{repo}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in rows if (r["_config"], r["_split"]) == (config, split)]


@pytest.mark.parametrize("name,shots,repo,config", [("gsm8k", 5, "openai/gsm8k", "main"),
                                                     ("math_cot:algebra", 4, "DigitalLearningGmbH/MATH-lighteval",
                                                      "algebra")])
def test_fewshot_context(local, name, shots, repo, config):
    """lighteval joins the few-shot examples, each "{query} {gold}", and the query with blank lines; the examples
    are drawn from the train split (random_sampling_from_train, lighteval's seed 42)."""
    if name == "gsm8k":
        shown = {f"Question: {r['question']}\nAnswer: {r['answer']}" for r in _fixture_rows(repo, config, "train")}
        queries = {f"Question: {r['question']}\nAnswer:" for r in _fixture_rows(repo, config, "test")}
    else:
        shown = {f"{r['problem']}{COT} {r['solution']}" for r in _fixture_rows(repo, config, "train")}
        queries = {f"{r['problem']}{COT}" for r in _fixture_rows(repo, config, "test")}
    for doc in docs(local[name], shots, fewshot_docs=True):
        blocks = context(doc).split("\n\n")
        assert blocks[-1] == doc.query and doc.query in queries
        assert len(blocks) == shots + 1 and len(set(blocks[:-1])) == shots and set(blocks[:-1]) <= shown


def test_empty_instruction_would_prefix_a_blank_line(local):
    """Why eval/tasks turns the templates' empty instruction into None: lighteval 0.13's PromptManager would
    put "\\n\\n" before the query (lighteval 2788496 did not). If this fails, 0.13 changed and the fix can go."""
    from lighteval.tasks.templates.boolq import get_boolq_prompt_function
    from lighteval.tasks.templates.utils.formulation import CFFormulation
    from lighteval.utils.language import Language

    raw = get_boolq_prompt_function(Language.ENGLISH, lambda line: {
        "question": line["question"], "answer": line["answer"], "context": line["passage"]},
        formulation=CFFormulation())({"question": "is it", "answer": True, "passage": "It is."}, "boolq_cf")
    assert context(raw) == "\n\nIt is.\nQuestion: Is it\nAnswer:"


# --------------------------------------------------------------------------- metrics on hand-made responses
def test_loglikelihood_normalisations(local):
    doc = docs(local["boolq_cf"])[0]  # choices " Yes" (4 characters, 1 token here), " No" (3, 2 tokens); gold No
    response = ModelResponse(logprobs=[-3.0, -3.3], output_tokens=[[7], [8, 9]])
    scores = {}
    for m in local["boolq_cf"].metrics:
        scores.update(m.compute_sample(doc=doc, model_response=response))
    # per token: -3.0 vs -1.65 -> No (right); per character: -0.75 vs -1.1 -> Yes (wrong)
    assert scores == {"acc_norm_token": 1, "acc_norm": 0}


@pytest.mark.parametrize("name,index,prediction,score", [
    ("gsm8k", 0, " She makes 9 * 2 = $18 every day.\n#### 18", 1),
    ("gsm8k", 0, " The answer is 17", 0),
    ("math_cot:algebra", 0, " We get $2a = 12$ and so $a = \\boxed{6}$.", 1),
    ("math_cot:algebra", 0, " $\\boxed{7}$", 0),
    ("gsm_plus", 0, "9 * 3 = 27.\nTherefore, the final answer is: $\\boxed{27}$. I hope it is correct", 1),
    ("gsm_plus", 0, "Therefore, the final answer is: $\\boxed{26}$. I hope it is correct", 0),
    ("gsm_plus", 0, "Therefore, the final answer is: $\\boxed{27.0}$. I hope it is correct", 1),  # precision 6
    ("gsm_plus", 1, "no number at all", 0),
])
def test_generative_metric(local, name, index, prediction, score):
    doc = docs(local[name])[index]
    (metric,) = local[name].metrics
    assert float(metric.compute_sample(doc=doc, model_response=ModelResponse(text=[prediction]))[
        metric.metric_name]) == score


# --------------------------------------------------------------------------- end to end (eval.run, lighteval)
def _check_scores(scores, expected):
    assert set(expected) <= set(scores), sorted(set(expected) - set(scores))
    for key, metrics in expected.items():
        assert sorted(scores[key]) == sorted(metrics), key
        assert all(0.0 <= scores[key][m] <= 1.0 for m in metrics), (key, scores[key])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tests.eval_fixtures import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.mark.slow
def test_base_suite_end_to_end(hub, tiny_model, tmp_path, monkeypatch, capfd):
    """`python -m eval run --suite smollm3-base` offline with local copies: its 11 custom| specs run (75 tasks)."""
    from eval.run import run_eval

    monkeypatch.setenv(DATASETS_ENV, str(hub))
    scores = run_eval(tiny_model, "smollm3-base", tmp_path, max_samples=1, max_length=512, dtype="float32",
                      save_details=False, generation={"temperature": 0.0, "max_new_tokens": 16})  # the path only
    expected = {f"{t}|0": CF for t in ["hellaswag_cf", "arc_cf:easy", "arc_cf:challenge", "mmlu_pro_cf", "boolq_cf",
                                       "commonsenseqa_cf", "winogrande_cf", "openbookqa_cf", "piqa_cf"]}
    expected |= {f"mmlu_cf:{s}|0": CF for s in MMLU} | {f"math_cot:{s}|4": ["extractive_match"] for s in MATH}
    _check_scores(scores, expected | {"gsm8k|5": ["extractive_match"]})
    err = capfd.readouterr().err
    assert "skipping lighteval|belebele_eng_Latn_cf|0|1: HF_HUB_OFFLINE is set: built-in tasks read the Hub" in err


@pytest.mark.slow
def test_model_card_and_instruct_tasks_end_to_end(hub, tiny_model, tmp_path, monkeypatch, capfd):
    """mmlu_pro_mcf (the model card's MMLU Pro MCF row, in no suite file) and gsm_plus (instruct suite), run by
    eval.run from a suite file of their own; mixeval_hard, whose judge needs vllm here, is skipped with the reason."""
    from eval import specs
    from eval.run import run_eval

    (tmp_path / "extra.txt").write_text("custom|mmlu_pro_mcf|0|1\ncustom|gsm_plus|0|0\ncustom|mixeval_hard|0|0\n")
    (tmp_path / "published.yaml").write_text(
        "suites:\n  card-extra: {file: extra.txt, backend: transformers, use_chat_template: false, "
        "system_prompt: null, generation: {temperature: 0.0}}\n"
        "custom_tasks: {mixeval_hard: judged by Flow-Judge}\nnot_in_lighteval_0_13: {}\n")
    monkeypatch.setattr(specs, "SUITES_DIR", tmp_path)
    specs._suites_yaml.cache_clear()
    monkeypatch.setenv(DATASETS_ENV, str(hub))
    try:
        scores = run_eval(tiny_model, "card-extra", tmp_path / "out", max_samples=2, max_length=384,
                          dtype="float32", save_details=False)
    finally:
        specs._suites_yaml.cache_clear()
    _check_scores(scores, {"mmlu_pro_mcf|0": ["acc"], "gsm_plus|0": ["math_pass@1:1_samples"]})
    err = capfd.readouterr().err  # no vllm here for the Flow-Judge judge (eval/tasks/mixeval.py)
    assert "skipping custom|mixeval_hard|0|0: its judge backend vllm is not installed" in err, err[-2000:]
