"""Sources and executors: builtin corpora, the reader factory on local stand-ins of Hub / parquet / jsonl
data, a recipe built from such sources end to end, and the Slurm executors (constructed, not submitted)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.data_fixtures import REPO, cli, read_folder

TEXTS = [f"Document {i}: " + " ".join(f"word{j % (i + 3)}" for j in range(40 + 3 * i)) for i in range(60)]


def write_parquet(path: Path, column: str, texts):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({column: texts, "n": list(range(len(texts)))}), path)


def write_jsonl(path: Path, texts, key="text"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({key: t}) + "\n" for t in texts))


def test_builtin_corpora_are_deterministic():
    from pretrain.data import corpora

    for name in corpora.BUILTINS:
        a, b = list(corpora.documents(name)), list(corpora.documents(name))
        assert a == b and len(a) > 50
        assert len({d["id"] for d in a}) == len(a)
        assert all(d["metadata"]["license"] == corpora.BUILTINS[name].license for d in a)


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "jsonl_file", "hub_dataset_local"])
def test_reader_factory_on_local_stand_ins(tmp_path, kind):
    """`path:` folders and a `dataset:` (datasets.load_dataset, streaming) pointed at a local folder are read
    by the same factory the published recipe uses for its Hub datasets."""
    from pretrain.data.sources import SourceSpec, make_reader

    if kind == "parquet":
        write_parquet(tmp_path / "pq" / "sub" / "part-0.parquet", "content", TEXTS[:30])
        write_parquet(tmp_path / "pq" / "part-1.parquet", "content", TEXTS[30:])
        spec = SourceSpec("s", "web", "path", path=str(tmp_path / "pq"), text_key="content")
    elif kind == "jsonl":
        write_jsonl(tmp_path / "js" / "a.jsonl", TEXTS[:30])
        write_jsonl(tmp_path / "js" / "b.jsonl", TEXTS[30:])
        spec = SourceSpec("s", "web", "path", path=str(tmp_path / "js"))
    elif kind == "jsonl_file":
        write_jsonl(tmp_path / "one.jsonl", TEXTS, key="body")
        spec = SourceSpec("s", "web", "path", path=str(tmp_path / "one.jsonl"), text_key="body")
    else:
        write_parquet(tmp_path / "hub" / "data" / "train-00000.parquet", "text", TEXTS)
        spec = SourceSpec("s", "web", "dataset", dataset=str(tmp_path / "hub"), split="train")
    reader = make_reader(spec)
    assert type(reader).__name__ == {"parquet": "ParquetReader", "hub_dataset_local": "HuggingFaceDatasetReader"}.get(
        kind, "JsonlReader")
    got = [d.text for d in reader.run(None, 0, 1)]
    assert sorted(got) == sorted(TEXTS)
    # two tasks split the documents between them, no overlap (by file; a single file goes to one task)
    halves = [[d.text for d in make_reader(spec).run(None, r, 2)] for r in (0, 1)]
    assert sorted(halves[0] + halves[1]) == sorted(TEXTS)
    assert (halves[0] and halves[1]) or kind == "jsonl_file"


@pytest.mark.slow
def test_recipe_with_local_dataset_and_path_sources(tmp_path):
    """A recipe whose mixture reads a parquet folder (`path:`), a local datasets folder (`dataset:`) and a
    builtin corpus, built through `python -m pipeline run` like any data stage."""
    rdir = tmp_path / "recipes" / "mini"
    write_parquet(tmp_path / "stand_in" / "parquet" / "part-0.parquet", "content", TEXTS)
    write_parquet(tmp_path / "stand_in" / "hub" / "data" / "train-00000.parquet", "text", TEXTS[::-1][:40])
    (rdir / "mixtures").mkdir(parents=True)
    (rdir / "base.yaml").write_text(
        f"parent: {REPO / 'recipes' / 'tiny'}\nname: mini\n"
        "model: {vocab_size: 1024}\n"
        "tokenizer: {name_or_path: runs/mini/data/tokenizer, kind: build, build_vocab_size: 1024}\n")
    (rdir / "data.yaml").write_text("kind: data\nmixtures: [m1]\nfilters: {min_chars: 500, exact_dedup: true}\n")
    (rdir / "mixtures" / "m1.yaml").write_text(
        "name: m1\nsources:\n"
        "  - {name: local-parquet, category: web, weight: 0.5, path: ../../../stand_in/parquet, text_key: content}\n"
        f"  - {{name: hub-standin, category: web, weight: 0.3, dataset: {tmp_path / 'stand_in' / 'hub'}}}\n"
        "  - {name: reasoning, category: reasoning, weight: 0.2, builtin: reasoning_traces}\n")
    runs = tmp_path / "runs"
    proc = cli("pipeline", "run", "recipes/mini/data.yaml", cwd=tmp_path, runs=runs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = runs / "mini" / "data"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(data / "tokenizer"))
    assert len(tok) == 1024
    kept = {t for t in TEXTS if len(t) >= 500}
    assert 0 < len(kept) < len(TEXTS)  # the length filter drops some
    for name, expected in (("local-parquet", kept), ("hub-standin", kept & set(TEXTS[::-1][:40]))):
        toks, ends = read_folder(data / name)
        starts = [0, *ends[:-1]]
        decoded = {tok.decode(toks[a:b - 1].tolist()) for a, b in zip(starts, ends)}
        assert decoded == expected and len(ends) == len(expected), name
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["metrics"]["sources"]["local-parquet"]["dropped_too_short"] == len(TEXTS) - len(kept)
    # editing a local source's files makes the next call rebuild it (and the tokenizer trained on it)
    write_parquet(tmp_path / "stand_in" / "parquet" / "part-0.parquet", "content", TEXTS + [TEXTS[-1] + " new"])
    again = cli("pipeline", "run", "recipes/mini/data.yaml", cwd=tmp_path, runs=runs)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "local-parquet: 61 read" in again.stdout and "tokenizer: trained" in again.stdout
    toks, ends = read_folder(data / "local-parquet")
    assert len(ends) == len(kept) + 1


def test_slurm_executors_are_built_not_submitted(tmp_path, monkeypatch):
    """executor.kind slurm: the same four steps as SlurmPipelineExecutors chained with depends=, picklable
    by datatrove's launcher (dill), and the sbatch script they would submit."""
    import dill
    from datatrove.executor import SlurmPipelineExecutor

    from pretrain.data.sources import stage_sources
    from pretrain.data.stage import SourceBuild
    from recipes.loader import load_stage

    monkeypatch.setenv("SMOLLM3_RUNS", str(tmp_path / "runs"))
    recipe = load_stage(REPO / "recipes/tiny/data.yaml", ["executor.kind=slurm", "cluster.partition=cpu",
                                                          "executor.tasks=8", "executor.workers=4"])
    spec = next(s for s in stage_sources(recipe) if s.name == "math")
    build = SourceBuild(recipe, spec, tokenizer_file="/x/tokenizer.json", eos="<|end_of_text|>", tokenizer_sha="x")
    chain = build.executors(slurm_logs=str(tmp_path / "slurm_logs"))
    assert [type(e) for e in chain] == [SlurmPipelineExecutor] * 4
    assert [e.tasks for e in chain] == [8, 1, 8, 1]
    assert all(chain[i + 1].depends is chain[i] for i in range(3))
    assert [type(p).__name__ for p in chain[2].pipeline] == ["JsonlReader", "LengthFilter", "ExactDedupFilter",
                                                             "DocumentTokenizer"]
    restored = dill.loads(dill.dumps(chain[2]))
    assert type(restored.pipeline[-1]).__name__ == "DocumentTokenizer"
    script = chain[2].get_launch_file_contents(chain[2].get_sbatch_args(8), "launch_pickled_pipeline x.pik")
    for line in ("#SBATCH --partition=cpu", "#SBATCH --array=0-7%4", "#SBATCH --time=20:00:00",
                 "#SBATCH --job-name=tiny-data-math-tokenize"):
        assert line in script
    assert not (tmp_path / "runs").exists()  # nothing launched, nothing written under runs/


def test_dry_run_of_the_published_recipe_writes_nothing(tmp_path):
    proc = cli("pretrain.data.stage", "recipes/smollm3-3b/data.yaml", "--dry-run", runs=tmp_path / "runs")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.startswith("data stage of smollm3-3b: 115 sources, executor slurm (1000 tasks, 500 workers)")
    assert "HuggingFaceDatasetReader(HuggingFaceFW/fineweb-edu, split=train" in out
    assert "HuggingFaceDatasetReader(epfml/FineWeb2-HQ, name=fra_Latn" in out
    assert "SKIPPED, not published" in out and "#SBATCH --array=0-999%500" in out
    assert not (tmp_path / "runs").exists()


def test_published_recipe_refuses_unpublished_sources_before_writing(tmp_path):
    proc = cli("pipeline", "run", "recipes/smollm3-3b/data.yaml", runs=tmp_path / "runs")
    assert proc.returncode == 2 and "not published" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
