"""The tiny data stage end to end: tokenizer, corpora, datatrove tokenized folders, manifest, reruns."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from tests.data_fixtures import BUILTIN_OF, REPO, SOURCES, cli, corpus_texts, read_folder, tiny_data  # noqa: F401


def hf_tokenizer(data):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(data / "tokenizer"))


def test_tokenizer_folder(tiny_data):
    from recipes.loader import load_stage

    data = tiny_data["data"]
    tok = hf_tokenizer(data)
    model_vocab = load_stage(REPO / "recipes/tiny/pretrain-stage1.yaml").model.vocab_size
    assert len(tok) == model_vocab == 4096
    assert (data / "tokenizer" / "tokenizer.json").is_file()
    assert tok.bos_token and tok.eos_token and tok.pad_token
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}) == 3
    for special in ["<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
                    tok.eos_token, tok.bos_token]:
        ids = tok(special, add_special_tokens=False).input_ids
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids[0]) == special


def test_build_outputs_manifest_and_progress(tiny_data):
    data = tiny_data["data"]
    assert tiny_data["seconds"] < 120
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["stage"] == "data"
    assert set(manifest["outputs"]) == {"tokenizer", "heldout", *SOURCES}
    for name in SOURCES:
        folder = data / name
        assert sorted(p.name for p in folder.iterdir()) == [  # .checked: the data stage's own full check, cached
            f"000_{name}.ds", f"000_{name}.ds.checked", f"000_{name}.ds.index", f"000_{name}.ds.metadata",
            f"{name}.ds.metadata"]
        toks, ends = read_folder(folder)
        m = manifest["metrics"]["sources"][name]
        assert m["tokens"] == len(toks) and m["documents"] == len(ends)
    # every source of every tiny mixture is there, with its origin and license in the manifest
    assert {s["name"]: s["builtin"] for s in manifest["sources"]} == BUILTIN_OF
    assert all(s["license"] for s in manifest["sources"])
    # progress with rates on stdout; datatrove's own logs on stderr
    out = tiny_data["stdout"]
    assert all(f"[data] {n}:" in out for n in SOURCES) and "tokens/s" in out
    assert "Processing done" in tiny_data["stderr"]


def test_documents_separated_by_eos_and_index(tiny_data):
    data = tiny_data["data"]
    eos = hf_tokenizer(data).eos_token_id
    for name in SOURCES:
        toks, ends = read_folder(data / name)
        assert ends[-1] == len(toks)
        assert np.all(np.diff(ends) > 0)
        assert np.all(toks[ends - 1] == eos)  # each document ends with eos ...
        assert int(np.sum(toks == eos)) == len(ends)  # ... and eos appears nowhere else


def test_decoded_documents_equal_the_source_texts(tiny_data):
    """Every tokenized document decodes to a source text; exact duplicates are gone; nothing is lost."""
    data = tiny_data["data"]
    tok = hf_tokenizer(data)
    for name in SOURCES:
        texts = corpus_texts(data, BUILTIN_OF[name])
        toks, ends = read_folder(data / name)
        starts = np.concatenate([[0], ends[:-1]])
        decoded = [tok.decode(toks[a:b - 1].tolist()) for a, b in zip(starts, ends)]
        assert Counter(decoded) == Counter(set(t for t in texts if len(t.strip()) >= 64)), name
    # the generated math problems do contain exact duplicates, which were removed
    math = corpus_texts(data, "math_word_problems")
    assert len(set(math)) < len(math)


def test_builtin_documents_record_origin_and_license(tiny_data):
    data = tiny_data["data"]
    for builtin in BUILTIN_OF.values():
        f = sorted((data / "_corpora" / builtin).glob("*.jsonl"))[0]
        doc = json.loads(f.open().readline())
        assert set(doc) == {"text", "id", "metadata"}
        assert doc["metadata"]["license"] in ("PSF-2.0", "CC0-1.0") and doc["metadata"]["origin"]


def test_reasoning_traces_are_long_documents(tiny_data):
    toks, ends = read_folder(tiny_data["data"] / "reasoning")
    lengths = np.diff(np.concatenate([[0], ends]))
    assert lengths.min() >= 300 and lengths.max() <= 1500
    assert np.median(lengths) > 512  # the 512 / 1024-token long-context stages see long documents


def test_second_call_does_no_work(tiny_data):
    data = tiny_data["data"]
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*.ds")}
    t0 = time.time()
    proc = cli("pipeline", "run", "recipes/tiny/data.yaml", runs=tiny_data["runs"])
    assert proc.returncode == 0, proc.stderr
    assert time.time() - t0 < 10
    assert "up to date" in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in data.rglob("*.ds")} == before


def test_rebuild_after_a_source_folder_is_deleted(tiny_data, tmp_path):
    """A deleted output is rebuilt; the other sources are skipped through datatrove's completion markers."""
    import shutil

    from tests.data_fixtures import copy_data

    runs = copy_data(tiny_data, tmp_path)
    data = runs / "tiny" / "data"
    shutil.rmtree(data / "math")
    proc = cli("pipeline", "run", "recipes/tiny/data.yaml", runs=runs)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[data] prose: up to date" in proc.stdout and "[data] math: 2,000 read" in proc.stdout
    assert "already been completed" in proc.stderr
    assert (data / "math" / "000_math.ds").read_bytes() == (tiny_data["data"] / "math" / "000_math.ds").read_bytes()


@pytest.mark.slow
def test_killed_run_completes_on_next_call(tiny_data, tmp_path):
    """SIGKILL the stage once the first source is published; the next call finishes the rest, reusing
    the finished datatrove tasks, and the result is byte-identical to an uninterrupted build."""
    runs = tmp_path / "runs"
    env = dict(os.environ, PYTHONPATH=str(REPO), SMOLLM3_RUNS=str(runs))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "recipes/tiny/data.yaml"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = runs / "tiny" / "data" / "prose" / "000_prose.ds"
    deadline = time.time() + 120
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.exists()
    manifest = json.loads((runs / "tiny" / "data" / "manifest.json").read_text())
    assert manifest["status"] == "running"  # killed: not marked completed
    assert not (runs / "tiny" / "data" / "reasoning").exists()
    again = cli("pipeline", "run", "recipes/tiny/data.yaml", runs=runs)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "[data] prose: up to date" in again.stdout
    for name in SOURCES:
        a = (runs / "tiny" / "data" / name / f"000_{name}.ds").read_bytes()
        assert a == (tiny_data["data"] / name / f"000_{name}.ds").read_bytes(), name
    assert json.loads((runs / "tiny" / "data" / "manifest.json").read_text())["status"] == "completed"
