"""Every `python -m` command of README.md and eval/README.md runs as the README writes it, and every entry point
of the repository prints its usage with --help.

The commands are read from the READMEs themselves (fenced code blocks, and `python -m ...` code spans in the
prose), so a README change is covered without touching this file. They run in a scratch working directory that
holds what they read: recipes/ (a symlink), a tiny chat model at runs/tiny/sft/hf (also MODEL), lighteval results
in evals/stage1..3 and a nanotron checkpoint (CKPT, made by `pretrain.convert --to-nanotron` itself). `python`
and `.venv/bin/python` are this interpreter; SMOLLM3_RUNS points into the scratch directory; the Hub is offline.
A command must exit 0 with no traceback, except the ones named in REFUSED_HERE (the README marks them GPU + Hub:
here they must stop in one clear line, exit 2) and AT_SCALE (parsed and input-checked only: RULER lengths).
"""
import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import REPO

READMES = [REPO / "README.md", REPO / "eval" / "README.md"]
PYTHONS = ("python", "python3", ".venv/bin/python")
# placeholders the READMEs use, and what stands in for them here
PLACEHOLDERS = {"MODEL": "runs/tiny/sft/hf", "CKPT": "ckpt"}
# "published SmolLM3 suites (GPU + Hub; vllm if installed)": refused here in one line, before any work
REFUSED_HERE = {
    "python -m eval run --model HuggingFaceTB/SmolLM3-3B-Base --suite smollm3-base --backend vllm --set "
    "tensor_parallel_size=1 --output-dir evals/base": "HF_HUB_OFFLINE is set",
    "python -m eval run --model MODEL --suite smollm3-instruct-no-think --output-dir evals/no_think":
        "HF_HUB_OFFLINE is set",
}
# RULER at 32k-128k tokens: a real model's job (GPU); here its arguments and inputs are checked
AT_SCALE = {"python -m eval run --model MODEL --suite ruler --context-lengths 32768,65536,131072 --output-dir "
            "evals/ruler"}
# code spans of the prose that name subcommands, not whole commands: each subcommand must print its usage
FRAGMENTS = {"python -m recipes show", "python -m pipeline prepare", "python -m eval run"}
SLOW = {("eval", "run"), ("eval", "suites")}  # lighteval's imports and a real evaluation: ~15 s each


def _split(line: str) -> list[list[str]]:
    """`python -m <repo module> ...` commands of a shell line (`&&` / `;` chains split, comments dropped)."""
    out, cur = [], []
    for tok in shlex.split(line, comments=True) + ["&&"]:
        if tok in ("&&", ";", "||"):
            if len(cur) > 2 and cur[0] in PYTHONS and cur[1] == "-m" and is_repo_module(cur[2]):
                out.append(["python", *cur[1:]])
            cur = []
        else:
            cur.append(tok)
    return out


def is_repo_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    package = (REPO / name.split(".")[0] / "__init__.py").is_file()
    return package and (path.is_dir() or path.with_suffix(".py").is_file())


def readme_commands() -> list[str]:
    """Commands of the fenced code blocks (continuation lines joined), then of the prose's code spans."""
    blocks, spans = [], []
    for readme in READMES:
        text = readme.read_text()
        for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
            for line in block.replace("\\\n", " ").splitlines():
                if " -m " in line:
                    blocks += [shlex.join(c) for c in _split(line.removeprefix("$ "))]
        prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        for span in re.findall(r"`((?:\.venv/bin/)?python3? -m [^`]+)`", " ".join(prose.split())):
            spans.append(" ".join(["python", *span.split()[1:]]))
    return list(dict.fromkeys(blocks + [s for s in spans if s not in blocks]))


def entry_points() -> list[str]:
    """Every module `python -m` runs: packages with __main__.py and modules with a __main__ guard."""
    found = set()
    for path in REPO.glob("*/**/*.py"):
        top = path.relative_to(REPO).parts[0]
        if top in ("tests", "bench") or top.startswith(".") or not (REPO / top / "__init__.py").is_file():
            continue
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        if path.name == "__main__.py":
            found.add(module.removesuffix(".__main__"))
        elif re.search(r"^if __name__ == .__main__.:", path.read_text(), flags=re.M):
            found.add(module)
    return sorted(found | {c.split()[2] for c in readme_commands()})


def run(argv, cwd, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(REPO), SMOLLM3_RUNS=str(cwd / "runs"), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def substitute(command: str, out: str) -> list[str]:
    return [PLACEHOLDERS.get(t, out if t == "OUT" else t) for t in shlex.split(command)]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    from tests.eval_fixtures import make_tiny_model

    work = tmp_path_factory.mktemp("readme")
    (work / "recipes").symlink_to(REPO / "recipes")
    make_tiny_model(work / PLACEHOLDERS["MODEL"], chat=True)
    for i, score in enumerate((0.25, 0.5, 0.75), 1):  # lighteval's results layout (config_general + results)
        path = work / "evals" / f"stage{i}" / "results" / f"results_{i}.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"config_general": {"model_config": {"system_prompt": None}}, "results": {
            "math_word|5": {"extractive_match": score, "extractive_match_stderr": 0.0}}}))
    return work


def test_the_readmes_name_commands():
    commands = readme_commands()
    assert len([c for c in commands if c not in FRAGMENTS]) >= 10, commands
    assert set(REFUSED_HERE) | AT_SCALE <= set(commands), "a README changed: update REFUSED_HERE / AT_SCALE"
    assert FRAGMENTS <= set(commands) and "python -m pretrain.convert CKPT OUT" in commands


def _params():
    out = []
    for c in readme_commands():
        if c in FRAGMENTS or "pretrain.convert" in c:
            continue
        words = c.split()
        slow = (words[2], words[3] if len(words) > 3 else "") in SLOW and c not in REFUSED_HERE and c not in AT_SCALE
        out.append(pytest.param(c, marks=[pytest.mark.slow] if slow else [], id=" ".join(words[2:])[:70]))
    return out


@pytest.mark.parametrize("command", _params())
def test_readme_command_runs_as_written(command, work):
    if command in AT_SCALE:
        from eval.__main__ import build_parser
        from eval.run import check_model, suite_names

        args = build_parser().parse_args(substitute(command, "out")[3:])
        assert check_model(str(work / args.model)) and args.suite in suite_names() and len(args.context_lengths) == 3
        return
    proc = run(substitute(command, "out"), work)
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output[-3000:]
    if command in REFUSED_HERE:
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and REFUSED_HERE[command] in lines[0], output[-2000:]
    else:
        assert proc.returncode == 0, output[-3000:]


@pytest.mark.parametrize("fragment", sorted(FRAGMENTS))
def test_subcommands_named_in_the_prose_exist(fragment, work):
    proc = run([*fragment.split(), "--help"], work)
    assert proc.returncode == 0 and "usage:" in proc.stdout, (fragment, proc.stderr[-2000:])


def test_convert_runs_as_the_readme_writes_it_both_ways_and_with_yarn(work):
    """`python -m pretrain.convert CKPT OUT`, `--to-nanotron` the other way, `--yarn-factor 2` (README)."""
    text = (REPO / "README.md").read_text()
    assert "`--to-nanotron` goes the other way" in text and "`--yarn-factor 2`" in text
    base = "python -m pretrain.convert CKPT OUT"
    for command, out in ((f"{base} --to-nanotron".replace("CKPT", "MODEL"), PLACEHOLDERS["CKPT"]),
                         (base, "hf"), (f"{base} --yarn-factor 2", "hf-yarn")):
        proc = run(substitute(command, out), work)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (command, proc.stderr[-3000:])
        assert f"convert: wrote {out}" in proc.stdout
    assert (work / "ckpt" / "model_config.json").is_file()
    plain, yarn = (json.loads((work / d / "config.json").read_text()) for d in ("hf", "hf-yarn"))
    assert plain["rope_scaling"] is None and plain["rope_parameters"]["rope_type"] == "default"
    assert yarn["rope_scaling"]["rope_type"] == "yarn" and yarn["rope_scaling"]["factor"] == 2.0
    assert yarn["max_position_embeddings"] == 2 * plain["max_position_embeddings"]


@pytest.mark.parametrize("module", entry_points())
def test_help_prints_usage(module, tmp_path):
    proc = run(["python", "-m", module, "--help"], tmp_path, timeout=120)
    assert proc.returncode == 0 and "usage:" in proc.stdout and "Traceback" not in proc.stderr, \
        (module, proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
