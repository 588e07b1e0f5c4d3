"""Published suites: task specs are well-formed and the built-in ones are tasks lighteval 0.13 knows.

Nothing is run and nothing reaches the network: eval.specs.builtin_task_names() imports lighteval's task
modules one by one with sockets disabled (Registry() would import all of them and one downloads a file).
"""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval import specs  # noqa: E402


@pytest.fixture(scope="module")
def registry():
    names, failed = specs.builtin_task_names(True)
    return names, failed


def test_spec_parsing():
    assert specs.parse_spec("lighteval|flores200:fra_Latn-eng_Latn|5|1") == \
        specs.Spec("lighteval", "flores200:fra_Latn-eng_Latn", 5, 1)
    assert specs.to_lighteval(specs.parse_spec("custom|gsm8k|5|1")) == "gsm8k|5"
    for bad in ("lighteval|gsm8k|5", "nosuite|gsm8k|5|1", "lighteval||0|0", "lighteval|gsm8k|x|1", "a|b|0|2"):
        with pytest.raises(ValueError):
            specs.parse_spec(bad)


def test_suite_files_and_settings():
    suites = specs.published_suites()
    assert set(suites) >= {"smollm3-base", "smollm3-instruct", "smollm3-instruct-think", "smollm3-instruct-no-think"}
    base = suites["smollm3-base"]
    assert len(base["specs"]) == 54 and base["generation"] == {"temperature": 0.0} and not base["use_chat_template"]
    tasks = {s.task for s in base["specs"]}
    assert {"hellaswag_cf", "arc_cf", "mmlu_cf", "gsm8k", "math_cot", "belebele_eng_Latn_cf"} <= tasks
    assert {s.fewshot for s in base["specs"] if s.task in ("gsm8k", "math_cot")} == {4, 5}
    assert sum(s.task.startswith("flores200:") and s.fewshot == 5 for s in base["specs"]) == 16
    think, no_think = suites["smollm3-instruct-think"], suites["smollm3-instruct-no-think"]
    assert think["system_prompt"] == "/think" and no_think["system_prompt"] == "/no_think"
    for s in (think, no_think, suites["smollm3-instruct"]):
        assert s["generation"] == {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 32768}
        assert s["use_chat_template"] and len(s["specs"]) == 11
    assert {"aime25", "gpqa:diamond", "ifeval", "lcb:codegeneration", "gsm_plus", "mixeval_hard"} <= \
        {s.task for s in think["specs"]}


@pytest.mark.parametrize("name", ["smollm3_base.txt", "smollm3_instruct.txt"])
def test_suite_files_hold_the_upstream_file_verbatim_and_label_additions(name):
    """Between the markers: the upstream file, byte for byte (its git blob id, named in the header, recomputed
    here; a file without a final newline keeps one here). After them: only labelled additions."""
    import hashlib
    import re

    text = (specs.SUITES_DIR / name).read_text()
    header, rest = text.split("# ---- upstream begins ----\n")
    upstream, after = rest.split("# ---- upstream ends ----\n")
    assert re.search(r"commit\n# a041759883ec7152d18fb985ea49be641a0bceef\n", header) and \
        f"text/evaluation/smollm3/{name}" in header
    blob = re.search(r"git blob ([0-9a-f]{40})", header)[1]
    ids = {hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
           for data in (upstream.encode(), upstream.removesuffix("\n").encode())}
    assert blob in ids and not any(line.startswith("#") for line in upstream.splitlines())
    added = [line for line in after.splitlines() if line and not line.startswith("#")]
    if added:
        assert after.startswith("# ---- additions of this repository (not in the upstream file) ----\n")
    assert [str(s) for s in specs.read_spec_file(specs.SUITES_DIR / name)] == \
        [line for line in upstream.splitlines() if line] + added


def test_registry_scan_is_offline_and_complete(registry):
    names, failed = registry
    assert len(names) > 1000 and {"gsm8k", "aime25", "gpqa:diamond", "ifeval"} <= names
    # tiny_benchmarks downloads a pickle at import: it must fail here (sockets are off), not hang or download
    assert "lighteval.tasks.tasks.tiny_benchmarks" in failed


def test_builtin_specs_resolve(registry):
    names, _ = registry
    suites = specs.published_suites()
    for name in ("smollm3-base", "smollm3-instruct"):
        for spec in suites[name]["specs"]:
            kind, why = specs.classify(spec, names)
            if spec.suite == "custom":
                assert kind == "custom" and why in specs.custom_task_notes().values(), spec
            elif kind == "missing":  # documented gaps of lighteval 0.13, and really absent
                assert any(spec.task.startswith(p) for p in specs.missing_notes()), spec
                assert not specs.resolve(spec.task, names)
            else:
                assert kind == "builtin" and specs.resolve(spec.task, names), spec
    runnable, skipped = specs.runnable_specs(suites["smollm3-base"])
    assert "belebele_arb_Arab_cf|0" in runnable and "flores200:eng_Latn-zho_Hans|5" in runnable
    assert len(runnable) == 33 and len(skipped) == 21


def test_custom_tasks_all_documented():
    notes = specs.custom_task_notes()
    customs = {s.task for suite in specs.published_suites().values() for s in suite["specs"] if s.suite == "custom"}
    assert customs == set(notes)
    assert all(len(v) > 30 for v in notes.values())


def test_superset_resolution():
    names = {"mixeval_hard:freeform", "mixeval_hard:multichoice", "arc:easy", "solo:only"}
    assert specs.resolve("mixeval_hard", names) == ["mixeval_hard:freeform", "mixeval_hard:multichoice"]
    assert specs.resolve("arc:easy", names) == ["arc:easy"]
    assert specs.resolve("solo", names) == []  # lighteval expands only supersets of 2+ tasks


def test_lighteval_registry_accepts_runnable_specs():
    """lighteval 0.13's own spec parser and superset expansion accept every converted spec (nothing is run)."""
    from eval.lighteval_compat import fixed_registry_cls, hide_nanotron_from_lighteval

    hide_nanotron_from_lighteval()
    configs, _ = specs.builtin_task_configs(True, offline=True)
    for name in ("smollm3-base", "smollm3-instruct-think"):
        runnable, _ = specs.runnable_specs(specs.published_suites()[name], set(configs))
        registry = fixed_registry_cls(configs)(tasks=",".join(runnable))
        tasks = registry.load_tasks()  # LightevalTask objects; datasets are only fetched by load_datasets()
        expected = {f"{sub}|{shots}" for task, shots in (r.split("|") for r in runnable)
                    for sub in specs.resolve(task, configs)}
        assert set(tasks) == expected and len(expected) >= len(runnable)
    with pytest.raises(ValueError, match="Cannot find task"):  # the authors' 4-field form is not 0.13 syntax
        fixed_registry_cls(configs)(tasks="lighteval|belebele_eng_Latn_cf|0|1")
