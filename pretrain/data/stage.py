"""Data stage: build every source of a recipe's mixtures as datatrove tokenized folders for nanotron.

Per source (the union of the sources of the stage's `mixtures`), four datatrove steps, each one executor
with its own logging dir (its completion markers make a rerun skip finished tasks, and a killed run
finish on the next call):
  1_signatures        reader > length filter > ExactDedupSignature             (tasks, if filters.exact_dedup)
  2_find_duplicates   ExactFindDedups                                          (1 task)
  3_tokenize          reader > length filter > ExactDedupFilter > DocumentTokenizer (eos after each
                      document, documents shuffled with the recipe seed if `shuffle`)
  4_merge             DocumentTokenizerMerger > publish (rename into place)   (1 task)
Locally they run one after the other on LocalPipelineExecutor; with `executor.kind: slurm` the same
executors are chained with SlurmPipelineExecutor(depends=...) and submitted.

Before that, for the tiny recipe: the builtin corpora are generated (pretrain/data/corpora.py) and the BPE
tokenizer is trained on them (tokenizer.kind build; pretrain/data/tokenizer.py).

Layout (runs/ moves with SMOLLM3_RUNS):
  runs/<recipe>/data/manifest.json            stage manifest: inputs, outputs, documents / tokens per source
  runs/<recipe>/data/tokenizer/               Hugging Face tokenizer folder (tokenizer.kind build)
  runs/<recipe>/data/<source>/                000_<source>.ds, .ds.index, .ds.metadata (+ <source>.ds.metadata)
  runs/<recipe>/data/_corpora/<builtin>/      generated jsonl shards
  runs/<recipe>/data/_work/<source>/          dedup signatures, per-task tokenized files
  runs/<recipe>/data/_logs/<source>/<step>/   datatrove logs, stats, completion markers

Usage:
  python -m pipeline run recipes/tiny/data.yaml                        # = make data (seconds on 2 CPUs)
  python -m pretrain.data.stage recipes/smollm3-3b/data.yaml --dry-run # the plan and Slurm scripts, no writes
Bad input (unknown builtin, missing source, tokenizer / model vocabulary mismatch, corrupt outputs): one
line `file: field: message` on stderr, exit code 2, nothing written.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from pretrain.data import heldout, tokenizer
from pretrain.data.sources import SourceSpec, data_dir, make_reader, stage_sources
from recipes.loader import RecipeError, display
from rundir import REPO, StageRun, read_manifest, sha256_json, write_json_atomic

STEPS = ("1_signatures", "2_find_duplicates", "3_tokenize", "4_merge")
LAYOUT_VERSION = 1


def log(msg: str):
    print(f"[data] {msg}", flush=True)




# ------------------------------------------------------------------------------------------ executors
# Set by the data stage's own job in a Slurm job graph (pipeline/jobs.py), which runs after the datatrove jobs
# the submitting process launched: it verifies and records their outputs, and submits nothing itself.
VERIFY_ONLY_ENV = "SMOLLM3_DATA_VERIFY_ONLY"


def make_executor(recipe, pipeline, *, tasks: int, logging_dir: Path, job: str, depends=None,
                  slurm_logs: Optional[str] = None):
    """LocalPipelineExecutor or SlurmPipelineExecutor from the recipe's `executor` (same pipeline)."""
    ex = recipe.executor
    if ex.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(ex.workers, tasks),
                                     logging_dir=str(logging_dir), start_method="fork")
    from datatrove.executor import SlurmPipelineExecutor

    if not recipe.cluster.partition:
        raise RecipeError(recipe.file_of("cluster.partition"), "cluster.partition",
                          "required with executor.kind slurm (got null)")
    venv = Path(sys.prefix) / "bin" / "activate"
    env = (f"source {venv}; " if venv.is_file() else "") + f"export PYTHONPATH={REPO}:$PYTHONPATH"
    return SlurmPipelineExecutor(pipeline, tasks=tasks, workers=min(ex.workers, tasks) if tasks > 1 else 1,
                                 time=ex.time, partition=recipe.cluster.partition, qos=recipe.cluster.qos or "normal",
                                 job_name=f"{recipe.name}-data-{job}", logging_dir=str(logging_dir),
                                 env_command=env, depends=depends,
                                 cpus_per_task=1, mem_per_cpu_gb=4, slurm_logs_folder=slurm_logs,
                                 mail_type="FAIL")


class SourceBuild:
    """The paths, fingerprint and datatrove executors of one source."""

    def __init__(self, recipe, spec: SourceSpec, *, tokenizer_file: str, eos: str, tokenizer_sha: str,
                 root: Optional[Path] = None):
        self.recipe, self.spec = recipe, spec
        self.root = Path(root) if root else data_dir(recipe.name)
        self.final = self.root / spec.name
        self.work = self.root / "_work" / spec.name
        self.logs = self.root / "_logs" / spec.name
        self.corpus = self.root / "_corpora" / spec.builtin if spec.kind == "builtin" else None
        self.tokenizer_file, self.eos = tokenizer_file, eos
        f = recipe.filters
        self.fingerprint = {"layout": LAYOUT_VERSION, "source": spec.identity(), "name": spec.name,
                            "filters": f.model_dump(), "tokenizer_sha256": tokenizer_sha, "eos": eos,
                            "shuffle": recipe.shuffle, "seed": recipe.seed, "tasks": recipe.executor.tasks,
                            "max_tokens_per_file": recipe.max_tokens_per_file}
        if spec.kind == "builtin":
            from pretrain.data.corpora import spec as corpus_spec

            self.fingerprint["corpus"] = corpus_spec(spec.builtin)

    def executors(self, slurm_logs: Optional[str] = None) -> list:
        from datatrove.pipeline.dedup.exact_dedup import (
            ExactDedupConfig,
            ExactDedupFilter,
            ExactDedupSignature,
            ExactFindDedups,
        )
        from datatrove.pipeline.tokens import DocumentTokenizer, DocumentTokenizerMerger

        from pretrain.data.blocks import ClearFolder, LengthFilter, PublishFolder, doc_text

        r, T = self.recipe, self.recipe.executor.tasks
        sigs, dups = self.work / "dedup_signatures", self.work / "dedup_duplicates"
        tokenized, merged = self.work / "tokenized", self.work / "merged"

        def read_and_filter():
            return [make_reader(self.spec, self.corpus), LengthFilter(r.filters.min_chars, r.filters.max_chars)]

        def ex(pipeline, tasks, step, depends):
            logs = None if slurm_logs is None else str(Path(slurm_logs) / step)
            return make_executor(r, pipeline, tasks=tasks, logging_dir=self.logs / step, depends=depends,
                                 job=f"{self.spec.name}-{step[2:]}", slurm_logs=logs)

        chain, dedup, prev = [], [], None
        if r.filters.exact_dedup:
            cfg = ExactDedupConfig(content_getter=doc_text)
            prev = ex(read_and_filter() + [ExactDedupSignature(str(sigs), cfg)], T, STEPS[0], None)
            chain.append(prev)
            prev = ex([ExactFindDedups(str(sigs), str(dups), cfg)], 1, STEPS[1], prev)
            chain.append(prev)
            dedup = [ExactDedupFilter(str(dups), cfg)]
        tokenize = DocumentTokenizer(str(tokenized), tokenizer_name_or_path=self.tokenizer_file, eos_token=self.eos,
                                     save_filename=self.spec.name, shuffle_documents=r.shuffle, seed=r.seed,
                                     max_tokens_per_file=r.max_tokens_per_file, batch_size=1000)
        prev = ex(read_and_filter() + dedup + [tokenize], T, STEPS[2], prev)
        chain.append(prev)
        clear, publish = ClearFolder(str(merged)), PublishFolder(str(merged), str(self.final))
        merger = DocumentTokenizerMerger(str(tokenized), str(merged), save_filename=self.spec.name,
                                         max_tokens_per_file=r.max_tokens_per_file, shuffle=r.shuffle, seed=r.seed,
                                         progress=False)
        chain.append(ex([clear, merger, publish], 1, STEPS[3], prev))
        return chain

    # ---- state
    def _stored_fingerprint(self):
        try:
            return json.loads((self.work / "source.json").read_text())
        except (OSError, ValueError):
            return None

    def merge_completed(self) -> bool:
        return (self.logs / STEPS[3] / "completions" / "00000").is_file()

    def is_done(self) -> bool:
        return self._stored_fingerprint() == self.fingerprint and self.merge_completed() and self.final.is_dir()

    def prepare(self):
        """Start over when the source's definition changed or its published folder went missing."""
        stale = self._stored_fingerprint() != self.fingerprint or (self.merge_completed() and not self.final.is_dir())
        if stale:
            for p in (self.work, self.logs, self.final):
                shutil.rmtree(p, ignore_errors=True)
            self.work.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.work / "source.json", self.fingerprint)

    def stats(self) -> dict:
        """documents read / dropped per filter, from the tokenize step's datatrove stats."""
        out = {}
        files = sorted((self.logs / STEPS[2] / "stats").glob("*.json"))
        for f in files:
            for step in json.loads(f.read_text()):
                name, st = step.get("name", ""), step.get("stats", {})
                for key, label in (("documents", "read"), ("dropped_too_short", "dropped_too_short"),
                                   ("dropped_too_long", "dropped_too_long")):
                    if key in st and ("Length" in name or key == "documents"):
                        out[label] = out.get(label, 0) + _stat_total(st[key])
                if "exact-deduplication" in name and "dropped" in st:
                    out["dropped_duplicates"] = out.get("dropped_duplicates", 0) + _stat_total(st["dropped"])
        return out


def _stat_total(v) -> int:
    return int(v.get("total", 0)) if isinstance(v, dict) else int(v)


# ------------------------------------------------------------------------------------------ the stage
class DataRun(StageRun):
    """StageRun whose status may end as 'submitted' (Slurm: the jobs run after this call returns)."""

    final_status: Optional[str] = None

    def __exit__(self, exc_type, exc, tb):
        result = super().__exit__(exc_type, exc, tb)
        if not self.skip and exc_type is None and self.final_status:
            self.manifest["status"] = self.final_status
            write_json_atomic(self.dir / "manifest.json", self.manifest)
        return result


def _fingerprint(recipe, sources: list[SourceSpec]) -> str:
    return sha256_json({"layout": LAYOUT_VERSION, "sources": [[s.name, s.identity()] for s in sources],
                        "tokenizer": recipe.tokenizer.model_dump(), "heldout": heldout.spec()})


def _mark_stale_if_needed(out: Path, fingerprint: str, sources: list[SourceSpec], recipe):
    """A 'completed' manifest is only trusted when it was made for these sources and its outputs exist."""
    m = read_manifest(out)
    if not m or m.get("status") != "completed":
        return
    missing = [s.name for s in sources if not (out / s.name).is_dir()]
    tok_file = tokenizer.tokenizer_dir(recipe) / "tokenizer.json"
    tok_missing = recipe.tokenizer.kind == "build" and not tok_file.is_file()
    if any(s.kind == "builtin" for s in sources) and not (out / "heldout" / "heldout.json").is_file():
        missing.append("heldout")
    if m.get("metrics", {}).get("fingerprint") != fingerprint or missing or tok_missing:
        m["status"] = "stale"
        write_json_atomic(out / "manifest.json", m)


def _verify(folder: Path, eos_id: Optional[int] = None, check: str = "full"):
    from pretrain.data.mixture import TokenizedFolder

    return TokenizedFolder(folder, eos_id=eos_id, check=check)


def _write_corpora(recipe, sources: list[SourceSpec], root: Path) -> dict:
    from pretrain.data.corpora import write_corpus

    out = {}
    for b in sorted({s.builtin for s in sources if s.kind == "builtin"}):
        t0 = time.time()
        st = write_corpus(b, root / "_corpora" / b, shards=recipe.executor.tasks)
        out[b] = st
        log(f"corpus {b}: {st['documents']:,} documents, {st['chars'] / 1e6:.2f} M characters "
            f"({time.time() - t0:.1f}s)")
    return out


def _tokenizer(recipe, sources: list[SourceSpec], root: Path):
    """Build (tiny) or load the tokenizer; returns (tokenizers.Tokenizer, sha256 of its file)."""
    if recipe.tokenizer.kind == "build":
        from pretrain.data.corpora import spec as corpus_spec

        local = [s for s in sources if s.kind in ("builtin", "path")]
        spec = tokenizer.build_spec(recipe, [corpus_spec(s.builtin) if s.kind == "builtin" else s.identity()
                                                  for s in sorted(local, key=lambda s: s.name)])
        if tokenizer.is_built(recipe, spec):
            log(f"tokenizer: up to date ({display(tokenizer.tokenizer_dir(recipe))})")
        else:
            t0 = time.time()
            texts = _training_texts(sorted(local, key=lambda s: s.name), root)
            path = tokenizer.build(recipe, texts, spec)
            log(f"tokenizer: trained a byte-level BPE of {recipe.tokenizer.build_vocab_size:,} tokens on "
                f"{len(local)} sources in {time.time() - t0:.1f}s -> {display(path)}")
    tok = tokenizer.load_checked(recipe)
    name = tokenizer.datatrove_name(recipe)
    sha = tokenizer.spec_sha({"file": Path(name).read_text()}) if Path(name).is_file() else name
    return tok, sha


def _training_texts(sources: list[SourceSpec], root: Path):
    for s in sources:
        reader = make_reader(s, root / "_corpora" / s.builtin if s.kind == "builtin" else None)
        for doc in reader.run(None, 0, 1):
            yield doc.text


def _slurm_pending(job_ids: list) -> bool:
    ids = [str(j) for j in job_ids if j not in (None, -1, "-1")]
    if not ids or shutil.which("squeue") is None:
        return False
    try:
        out = subprocess.run(["squeue", "-h", "-j", ",".join(ids)], capture_output=True, text=True, timeout=30)
        return bool(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return False


@contextlib.contextmanager
def _env(**values):
    """Environment variables for the duration of the executors (forked workers inherit them)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: v for k, v in values.items() if os.environ.get(k) is None})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)


def run(recipe):
    """Build the tokenizer, the builtin corpora and every source's tokenized folder (see module doc)."""
    t_start = time.time()
    slurm = recipe.executor.kind == "slurm"
    # -- everything that can be refused is checked before anything is written
    sources = stage_sources(recipe)
    tokenizer.check_spec(recipe)
    if recipe.tokenizer.kind == "build" and not any(s.kind in ("builtin", "path") for s in sources):
        raise RecipeError(recipe.file_of("tokenizer.kind"), "tokenizer.kind",
                          "build needs local sources (builtin or path) to train on")
    if slurm and not recipe.cluster.partition:
        raise RecipeError(recipe.file_of("cluster.partition"), "cluster.partition",
                          "required with executor.kind slurm (got null)")
    out = data_dir(recipe.name)
    fingerprint = _fingerprint(recipe, sources)
    _mark_stale_if_needed(out, fingerprint, sources, recipe)
    old = read_manifest(out)
    if old and old.get("status") == "submitted" and _slurm_pending(old.get("metrics", {}).get("slurm_jobs", [])):
        log("Slurm jobs of the previous call are still queued or running: nothing submitted "
            f"(see {display(out / 'manifest.json')})")
        return
    path_inputs = [s.path for s in sources if s.kind == "path"]
    run_ = DataRun(recipe, inputs=path_inputs)
    up_to_date = run_.up_to_date
    if recipe.tokenizer.kind == "hub" and not up_to_date():
        tokenizer.load_checked(recipe)  # a Hub tokenizer that does not fit the model: refuse before writing
    with run_:
        if run_.skip:
            for s in sources:
                _verify(out / s.name, check="light")
            return
        log(f"{len(sources)} sources from mixtures {', '.join(m.name for m in recipe.mixtures)}: "
            f"{', '.join(s.name for s in sources)}")
        run_.manifest["sources"] = [{"name": s.name, "category": s.category, "mixtures": s.mixtures,
                                     "license": s.license, **s.identity()} for s in sources]
        corpora = _write_corpora(recipe, sources, out)
        held = {}
        if corpora:
            held = heldout.write_heldout(sources, out / "_corpora", out / "heldout")
            log("held-out documents (disjoint from training): " + ", ".join(
                f"{c} {v['documents']} ({v['dropped_as_training_text']} dropped as training text)"
                for c, v in held.items()) + f" -> {display(out / 'heldout')}")
        tok, tok_sha = _tokenizer(recipe, sources, out)
        eos = tokenizer.eos_token(recipe)
        eos_id = tok.token_to_id(eos)
        builds = [SourceBuild(recipe, s, tokenizer_file=tokenizer.datatrove_name(recipe), eos=eos,
                              tokenizer_sha=tok_sha, root=out) for s in sources]
        per_source, jobs, submitted = {}, [], []
        for b in builds:
            b.prepare()
            t0 = time.time()
            done_before = b.is_done()
            if slurm and not done_before and os.environ.get(VERIFY_ONLY_ENV):
                raise RecipeError(recipe.file_of("executor.kind"), "executor.kind",
                                  f"source {b.spec.name}: its datatrove Slurm jobs did not all complete (logs in "
                                  f"{display(b.logs)}); submit the pipeline again to relaunch what failed")
            if slurm and not done_before:
                chain = b.executors()
                chain[-1].run()  # launches the steps it depends on first; finished steps are not relaunched
                jobs += [e.job_id for e in chain]
                submitted.append(b.spec.name)
                log(f"{b.spec.name}: submitted {len(chain)} Slurm jobs (logs in {display(b.logs)})")
                continue
            if not slurm:
                with _env(TOKENIZERS_PARALLELISM="false"):  # one tokenizer thread per worker process
                    for e in b.executors():
                        e.run()
            folder = _verify(b.final, eos_id=eos_id)
            dt = max(time.time() - t0, 1e-9)
            st = {"documents": folder.n_docs, "tokens": folder.n_tokens, "files": len(folder.files), **b.stats(),
                  "seconds": round(dt, 2)}
            per_source[b.spec.name] = st
            if folder.n_docs == 0:
                raise RecipeError(b.spec.file, b.spec.key, f"source {b.spec.name!r}: no document left after the "
                                                           "filters")
            dropped = st.get("dropped_too_short", 0) + st.get("dropped_too_long", 0)
            dups = st.get("dropped_duplicates", 0)
            what = "up to date" if done_before else (f"{st.get('read', st['documents']):,} read, {dropped:,} "
                                                     f"dropped by length, {dups:,} duplicates")
            log(f"{b.spec.name}: {what} -> {folder.n_docs:,} documents, {folder.n_tokens:,} tokens in {dt:.1f}s "
                f"({folder.n_tokens / dt / 1e3:,.0f}k tokens/s) -> {display(b.final)}")
        run_.outputs = ((["tokenizer"] if recipe.tokenizer.kind == "build" else []) + [s.name for s in sources]
                        + (["heldout"] if held else []))
        run_.metrics.update(fingerprint=fingerprint, sources=per_source, corpora=corpora, heldout=held,
                            heldout_not_measured=[s.name for s in sources if s.kind != "builtin"],
                            tokenizer={"name_or_path": recipe.tokenizer.name_or_path, "kind": recipe.tokenizer.kind,
                                       "vocab_size": tok.get_vocab_size(), "eos_token": eos, "eos_id": eos_id})
        if submitted:
            run_.metrics.update(slurm_jobs=jobs, submitted=submitted)
            run_.final_status = "submitted"
            log(f"submitted {len(submitted)} sources; run the data stage again once the jobs have finished to "
                "verify and record the outputs")
            return
        run_.metrics.update(documents=sum(v["documents"] for v in per_source.values()),
                            tokens=sum(v["tokens"] for v in per_source.values()),
                            seconds=round(time.time() - t_start, 1))
        log(f"{run_.metrics['tokens']:,} tokens in {len(per_source)} sources, {time.time() - t_start:.1f}s")


# ----------------------------------------------------------------------------------------- dry run
def dry_run(recipe) -> str:
    """The plan of the stage and, on Slurm, the sbatch scripts it would submit. Writes nothing."""
    sources = stage_sources(recipe, allow_unpublished=True)
    lines = [f"data stage of {recipe.name}: {len(sources)} sources, executor {recipe.executor.kind} "
             f"({recipe.executor.tasks} tasks, {recipe.executor.workers} workers), tokenizer "
             f"{recipe.tokenizer.name_or_path} ({recipe.tokenizer.kind}), filters {recipe.filters.model_dump()}, "
             f"shuffle {recipe.shuffle}, seed {recipe.seed}"]
    # a Hub tokenizer is named, not fetched: a dry run needs no network and no Hub cache
    tok_file = recipe.tokenizer.name_or_path if recipe.tokenizer.kind == "hub" else tokenizer.datatrove_name(recipe)
    tmp = Path(tempfile.mkdtemp(prefix="smollm3-data-dry-"))
    try:
        for s in sources:
            if s.kind == "unpublished":
                lines.append(f"- {s.name}: SKIPPED, not published (dataset: null): give `path:` to a local copy")
                continue
            b = SourceBuild(recipe, s, tokenizer_file=tok_file,
                            eos=tokenizer.eos_token(recipe), tokenizer_sha="dry-run", root=tmp)
            chain = b.executors(slurm_logs=str(tmp / "slurm_logs" / s.name))
            reader = chain[-2].pipeline[0] if len(chain) > 1 else chain[0].pipeline[0]
            steps = " > ".join(f"{type(e).__name__}[{', '.join(type(p).__name__ for p in e.pipeline)}]" for e in chain)
            lines.append(f"- {s.name} ({s.category}): {type(reader).__name__}({_describe(s)}) -> {steps} -> "
                         f"{display(data_dir(recipe.name) / s.name)}")
        if recipe.executor.kind == "slurm" and sources:
            first = next((s for s in sources if s.kind != "unpublished"), None)
            if first is not None:
                b = SourceBuild(recipe, first, tokenizer_file=tok_file,
                                eos=tokenizer.eos_token(recipe), tokenizer_sha="dry-run", root=tmp)
                e = b.executors(slurm_logs=str(tmp / "slurm_logs"))[-2]
                script = e.get_launch_file_contents(e.get_sbatch_args(min(e.tasks, e.max_array_size)),
                                                    "srun -l launch_pickled_pipeline <logging_dir>/executor.pik")
                real_logs = data_dir(recipe.name) / "_logs" / first.name / "slurm_logs"
                lines.append(f"\nsbatch script of {first.name} 3_tokenize (not submitted):\n"
                             + script.replace(str(tmp / "slurm_logs"), str(real_logs)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return "\n".join(lines)


def _describe(s: SourceSpec) -> str:
    if s.kind == "dataset":
        return f"{s.dataset}" + (f", name={s.subset}" if s.subset else "") + f", split={s.split}, text_key={s.text_key}"
    if s.kind == "path":
        return display(s.path)
    return f"builtin {s.builtin}"


def main(argv=None) -> int:
    from recipes.cli import OneLineParser, guarded

    ap = OneLineParser(prog="python -m pretrain.data.stage", description=__doc__.split("\n")[0])
    ap.add_argument("recipe", help="a data stage recipe, e.g. recipes/tiny/data.yaml")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--dry-run", action="store_true", help="print the plan (and Slurm scripts); write nothing")
    return guarded(_command, ap.parse_args(argv))


def _command(args) -> int:
    from recipes.loader import load_stage

    recipe = load_stage(args.recipe, args.overrides)
    if recipe.kind != "data":
        raise RecipeError(display(args.recipe), "kind", f"must be data (got {recipe.kind})")
    if args.dry_run:
        print(dry_run(recipe))
    else:
        run(recipe)
    return 0

if __name__ == "__main__":
    sys.exit(main())
