"""BFCL tool calling through lighteval: bfcl-eval's data and AST checker, the SmolLM3 chat template's tool format.

Usage: python -m eval run --model MODEL --suite bfcl-no-think --output-dir evals/bfcl    (or --suite bfcl-think)
       SMOLLM3_BFCL_DATA=tests/fixtures/bfcl python -m eval run ...    (a folder in BFCL's layout, not the package's)
       from eval.bfcl import load_items, check; check(load_items("simple_python")[0], model_answer)["valid"]

Categories: BFCL's single-turn Python AST ones, simple_python, multiple, parallel, parallel_multiple (lighteval
tasks bfcl:<category>, metric acc; the model card's row is taken as their unweighted mean, UNVERIFIED: the card
says only "BFCL"). An item's prompt is the model's chat template rendered with a system message holding the mode
("/no_think" or "/think"), the item's question, and its function docs as `tools=` (with the language hint bfcl-eval
adds for every model): the SmolLM3 template lists them in <tools> and asks for <tool_call>{"name": ...,
"arguments": ...}</tool_call>. lighteval gets that text as a plain prompt. The answer (after </think>) is decoded as
bfcl-eval's handler for this format does (QwenFCHandler: JSON in each <tool_call> block; bare JSON objects when a
decoder dropped the tags as special tokens) and checked as its eval_runner does: is_function_calling_format_output,
then bfcl_eval.eval_checker.ast_eval.ast_checker. bfcl-eval is installed without its dependencies (eval/README.md);
only its checker modules are imported, and bfcl_eval.constants.model_config, which imports every provider's client,
is stood in for by the one entry ast_checker reads (underscore_to_dot=False: names are given with their dots).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import types
from pathlib import Path

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")
DATA_ENV = "SMOLLM3_BFCL_DATA"
MODEL_NAME = "smollm3-recipe"  # our key in the checker's model table (no "_": the checker maps "_" to "/")
# temperature 0: bfcl-eval's default is 0.001; the card's instruct evals sample at 0.6 (not said for BFCL)
SUITES = {
    "bfcl-no-think": {"system_prompt": "/no_think", "generation": {"temperature": 0.0, "max_new_tokens": 4096},
                      "published_tables": ["instruct_no_think"]},
    "bfcl-think": {"system_prompt": "/think", "generation": {"temperature": 0.0, "max_new_tokens": 32768},
                   "published_tables": ["instruct_think"]},
}
TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


def bfcl_modules():
    """(ast_checker, Language, bfcl_eval.utils, VERSION_PREFIX), imported without bfcl-eval's provider clients."""
    from eval.code_tasks import ensure_nodeps_path

    ensure_nodeps_path()
    # bfcl_eval.constants.eval_config makes result/, score/ and .file_locks/ under $BFCL_PROJECT_ROOT at import
    os.environ.setdefault("BFCL_PROJECT_ROOT", os.path.join(tempfile.gettempdir(), f"bfcl-eval-{os.getuid()}"))
    name = "bfcl_eval.constants.model_config"
    if name not in sys.modules:
        stand_in = types.ModuleType(name, "eval/bfcl.py: the one entry ast_checker reads (convert_func_name)")
        stand_in.MODEL_CONFIG_MAPPING = {}
        sys.modules[name] = stand_in
    sys.modules[name].MODEL_CONFIG_MAPPING.setdefault(MODEL_NAME, types.SimpleNamespace(underscore_to_dot=False))
    try:
        import bfcl_eval.utils as utils
    except ImportError as e:
        from eval.code_tasks import INSTALL

        raise ImportError(f"bfcl_eval is not importable ({e}); {INSTALL}") from e
    from bfcl_eval.constants.category_mapping import VERSION_PREFIX
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    return ast_checker, Language, utils, VERSION_PREFIX


def data_root(root=None) -> Path:
    """The BFCL data folder: the argument, else $SMOLLM3_BFCL_DATA, else the bfcl_eval package's own data."""
    root = root or os.environ.get(DATA_ENV)
    if root:
        return Path(root)
    bfcl_modules()
    from bfcl_eval.constants.eval_config import PROMPT_PATH

    return Path(PROMPT_PATH)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_items(category: str, root=None) -> list[dict]:
    """BFCL's items of a category, each with its `ground_truth` (possible_answer/), function docs as bfcl-eval
    gives them to models (add_language_specific_hint_to_function_doc). [] when the folder lacks the category."""
    _, _, utils, prefix = bfcl_modules()
    root = data_root(root)
    questions, answers = root / f"{prefix}_{category}.json", root / "possible_answer" / f"{prefix}_{category}.json"
    if not questions.is_file():
        return []
    items = utils.add_language_specific_hint_to_function_doc(_jsonl(questions))
    truth = {a["id"]: a["ground_truth"] for a in _jsonl(answers)}
    return [{**item, "ground_truth": truth[item["id"]]} for item in items]


def messages(item: dict, system_prompt: str | None) -> list[dict]:
    """The conversation of a single-turn item, with the mode flag as (or appended to) the system message."""
    turn = [dict(m) for m in item["question"][0]]
    if system_prompt:
        if turn and turn[0]["role"] == "system":
            turn[0]["content"] = f"{turn[0]['content']} {system_prompt}"
        else:
            turn.insert(0, {"role": "system", "content": system_prompt})
    return turn


def render_prompt(tokenizer, item: dict, system_prompt: str | None) -> str:
    """The exact text the model continues: its chat template with the item's function docs as tools."""
    return tokenizer.apply_chat_template(messages(item, system_prompt), tools=item["function"],
                                         add_generation_prompt=True, tokenize=False)


def _bare_objects(text: str) -> list:
    decoder, out, i = json.JSONDecoder(), [], text.find("{")
    while i >= 0:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            end = i + 1
        else:
            if isinstance(obj, dict) and "name" in obj:
                out.append(obj)
        i = text.find("{", end)
    return out


def decode_tool_calls(text: str) -> list[dict]:
    """[{name: arguments}, ...] from the <tool_call> blocks after the reasoning; raises ValueError on a call that is
    not {"name": str, "arguments": dict or JSON of a dict} (bfcl-eval: 'Failed to decode AST')."""
    text = text.split("</think>")[-1]
    blocks = TOOL_CALL.findall(text)
    calls = []
    for block in blocks:
        try:
            calls.append(json.loads(block.strip()))
        except ValueError:
            continue  # QwenFCHandler._extract_tool_calls drops a block that is not JSON
    if not blocks:
        calls = _bare_objects(text)
    out = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or "arguments" not in call:
            raise ValueError(f"not a tool call: {call!r}")
        args = call["arguments"]
        args = json.loads(args) if isinstance(args, str) else args
        if not isinstance(args, dict):
            raise ValueError(f"arguments are not an object: {call!r}")
        out.append({call["name"]: args})
    return out


def check(item: dict, answer: str, category: str | None = None) -> dict:
    """bfcl-eval's verdict on a model answer: {'valid': bool, 'error': [...], 'error_type': ...}."""
    ast_checker, language, utils, _ = bfcl_modules()
    category = category or utils.extract_test_category_from_id(item["id"])
    try:
        decoded = decode_tool_calls(answer)
    except ValueError as e:
        return {"valid": False, "error": [f"Invalid syntax. Failed to decode AST. {e}"],
                "error_type": "ast_decoder:decoder_failed"}
    if not utils.is_function_calling_format_output(decoded):
        return {"valid": False, "error": ["Did not output in the specified format."],
                "error_type": "ast_decoder:decoder_wrong_output_format"}
    functions, truth = json.loads(json.dumps(item["function"])), json.loads(json.dumps(item["ground_truth"]))
    return ast_checker(functions, decoded, truth, language.PYTHON, category, MODEL_NAME)


# ---------------------------------------------------------------- lighteval
def _metric():
    import numpy as np
    from lighteval.metrics.metrics_sample import SampleLevelComputation
    from lighteval.metrics.utils.metric_utils import SampleLevelMetric
    from lighteval.tasks.requests import SamplingMethod

    class BfclAst(SampleLevelComputation):
        """1 if bfcl-eval's AST checker accepts the tool calls of the answer."""

        def compute(self, doc, model_response, **kwargs) -> float:
            s = doc.specific
            item = {"id": s["id"], "function": json.loads(s["function"]), "ground_truth": json.loads(s["ground_truth"])}
            return float(check(item, model_response.final_text[0], s["category"])["valid"])

    return SampleLevelMetric(metric_name="acc", sample_level_fn=BfclAst(), category=SamplingMethod.GENERATIVE,
                             corpus_level_fn=np.mean, higher_is_better=True)


def bfcl_prompt(line: dict, task_name: str = None):
    from lighteval.tasks.requests import Doc

    return Doc(task_name=task_name, query=line["prompt"], choices=[line["ground_truth"]], gold_index=0,
               specific={k: line[k] for k in ("id", "category", "function", "ground_truth")})


def build_task_configs(out_dir, tokenizer, system_prompt: str | None, categories=CATEGORIES, root=None,
                       generation_size: int | None = None) -> list:
    """One LightevalTaskConfig per category present in the data folder, over <out_dir>/<category>/test.jsonl whose
    prompts are rendered here (lighteval must run them without its own chat template and system prompt)."""
    from lighteval.tasks.lighteval_task import LightevalTaskConfig

    configs = []
    for category in categories:
        items = load_items(category, root)
        if not items:
            print(f"[eval] skipping bfcl:{category}: no {category} file in {data_root(root)}", file=sys.stderr)
            continue
        folder = Path(out_dir) / category
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "test.jsonl", "w") as f:
            for item in items:
                f.write(json.dumps({"id": item["id"], "category": category,
                                    "prompt": render_prompt(tokenizer, item, system_prompt),
                                    "function": json.dumps(item["function"]),
                                    "ground_truth": json.dumps(item["ground_truth"])}) + "\n")
        configs.append(LightevalTaskConfig(
            name=f"bfcl:{category}", prompt_function=bfcl_prompt, hf_repo=str(folder), hf_subset="default",
            metrics=[_metric()], hf_avail_splits=["test"], evaluation_splits=["test"], few_shots_split=None,
            few_shots_select=None, generation_size=generation_size, stop_sequence=[], version=0))
    return configs


def build_tasks_module(out_dir, tokenizer, system_prompt: str | None, categories=CATEGORIES, root=None,
                       generation_size: int | None = None) -> types.ModuleType:
    """A module with TASKS_TABLE (lighteval's custom-tasks form)."""
    module = types.ModuleType("smollm3_bfcl_tasks", __doc__)
    module.TASKS_TABLE = build_task_configs(out_dir, tokenizer, system_prompt, categories, root, generation_size)
    return module


def task_specs(module) -> list[str]:
    """lighteval task strings of a built module (task|fewshot)."""
    return [f"{c.name}|0" for c in module.TASKS_TABLE]


def summary(scores: dict) -> float | None:
    """The BFCL number: the unweighted mean of the categories' acc in run_eval's scores (what lighteval also
    reports as bfcl:_average), None without any."""
    accs = [m["acc"] for task, m in scores.items() if task.startswith("bfcl:") and "_average" not in task]
    return sum(accs) / len(accs) if accs else None
