"""RULER (arXiv 2404.06654) items and scores from lm-evaluation-harness 0.4.13's own RULER code, offline.

Usage: from eval.ruler import ruler_items, score; items = ruler_items("niah_single_1", 4096, 10, tokenizer)

The generators (`lm_eval.tasks.ruler.prepare_niah.generate_samples`, `vt_utils.sys_vartrack_w_noise_random`,
`cwe_utils.sys_word_pair_random`, `fwe_utils.sys_kwext`) and the scorer (`common_utils.postprocess_pred` +
`string_match_all`) are imported and called with the arguments lm-eval's task wrappers give them; only their
inputs are made local:
  - essay haystack: lm-eval loads Paul Graham's essays from the Hub; here the words of `$SMOLLM3_RULER_HAYSTACK`
    (a text file, e.g. those essays) or of Python's own docs (pydoc_data.topics), repeated to the length needed;
  - sentence splitting: nltk's Punkt with its English parameters (punkt_tab) when installed, else nltk's Punkt
    untrained (punkt_tab is downloaded from GitHub at import, which is prevented here);
  - prepare_niah builds, at import, the sorted list of all 6.2M adjective-noun keys (10 s, 1 GB): it is replaced
    by `AdjNounWords`, the same sequence computed per index (tests/test_eval_ruler.py compares them).
The item's length is counted in the model's tokenizer: prompt tokens + the task's answer budget <= the requested
length (RULER fills the haystack in its own increments, so a little below it).
"""
from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import json
import os
import random
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from unittest import mock

from rundir import write_text_atomic

HAYSTACK_ENV = "SMOLLM3_RULER_HAYSTACK"
# lm-eval's 13 RULER tasks less qa_squad / qa_hotpot (their data are downloaded from GitHub / the Hub).
# kind -> (generator settings, answer budget = lm-eval's max_gen_toks, which is also the sizing budget)
NIAH = {
    "niah_single_1": dict(type_haystack="repeat", type_needle_k="words", type_needle_v="numbers"),
    "niah_single_2": dict(type_haystack="essay", type_needle_k="words", type_needle_v="numbers"),
    "niah_single_3": dict(type_haystack="essay", type_needle_k="words", type_needle_v="uuids"),
    "niah_multikey_1": dict(type_haystack="essay", type_needle_k="words", type_needle_v="numbers", num_needle_k=4),
    "niah_multikey_2": dict(type_haystack="needle", type_needle_k="words", type_needle_v="numbers"),
    "niah_multikey_3": dict(type_haystack="needle", type_needle_k="uuids", type_needle_v="uuids"),
    "niah_multivalue": dict(type_haystack="essay", type_needle_k="words", type_needle_v="numbers", num_needle_v=4),
    "niah_multiquery": dict(type_haystack="essay", type_needle_k="words", type_needle_v="numbers", num_needle_q=4),
}
ANSWER_TOKENS = {**{k: 128 for k in NIAH}, "vt": 30, "cwe": 120, "fwe": 50}
KINDS = tuple(ANSWER_TOKENS)
# Shortest length each kind is generated at: below it vt's sample loop never ends and cwe's answer is empty with
# small tokenizers, and no niah item fits 256 (the tests' 2,048-token BPE: vt fails at 1,024, cwe at 1,024).
MIN_LENGTH = {**{k: 512 for k in NIAH}, "fwe": 512, "vt": 2048, "cwe": 2048}
SEED = 42


class AdjNounWords(Sequence):
    """`sorted(set(f"{a}-{n}" for a in adjs for n in nouns))` (prepare_niah.WORDS), element by element.

    Keys of one adjective are contiguous and in noun order, except for adjectives that extend another with a
    hyphen ("blue", "blue-eyed"): such a family is sorted in full; families are ordered by root + "-"."""

    def __init__(self, adjs, nouns):
        self.nouns, adjs = sorted(set(nouns)), sorted(set(adjs))
        fams: dict[str, list[str]] = {}
        for a in sorted(adjs, key=len):
            root = next((r for r in fams if a.startswith(r + "-")), a)
            fams.setdefault(root, []).append(a)
        self.units, self.starts, n = [], [], 0
        for root in sorted(fams, key=lambda r: r + "-"):
            fam = fams[root]
            unit = root if len(fam) == 1 else sorted(f"{a}-{x}" for a in fam for x in self.nouns)
            self.units.append(unit)
            self.starts.append(n)
            n += len(self.nouns) if isinstance(unit, str) else len(unit)
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(i)
        u = bisect.bisect_right(self.starts, i) - 1
        unit, off = self.units[u], i - self.starts[u]
        return f"{unit}-{self.nouns[off]}" if isinstance(unit, str) else unit[off]


@lru_cache(maxsize=1)
def modules():
    """lm-eval's RULER modules (prepare_niah, vt_utils, cwe_utils, fwe_utils, common_utils), imported offline."""
    import nltk
    import wonderwords

    class NoKeys(wonderwords.RandomWord):  # prepare_niah's import-time key list: built by AdjNounWords instead
        def __init__(self):
            super().__init__()
            self._categories = {**self._categories, "nouns": [], "adjectives": []}

    with mock.patch.object(nltk, "download", lambda *a, **k: False), \
            contextlib.redirect_stdout(io.StringIO()), mock.patch.object(wonderwords, "RandomWord", NoKeys):
        from lm_eval.tasks.ruler import prepare_niah
    from lm_eval.tasks.ruler import common_utils, cwe_utils, fwe_utils, vt_utils

    real = wonderwords.RandomWord()._categories
    prepare_niah.nouns, prepare_niah.adjs = real["nouns"], real["adjectives"]
    prepare_niah.WORDS = AdjNounWords(real["adjectives"], real["nouns"])
    prepare_niah.words = None
    try:
        nltk.data.find("tokenizers/punkt_tab")
    except LookupError:
        from nltk.tokenize.punkt import PunktSentenceTokenizer

        prepare_niah.cached_sent_tokenize = lru_cache(maxsize=1024)(PunktSentenceTokenizer().tokenize)
    return prepare_niah, vt_utils, cwe_utils, fwe_utils, common_utils


def haystack_words(min_words: int) -> list[str]:
    """Essay haystack words (prepare_niah.get_haystack's split), the text repeated to at least min_words."""
    path = os.environ.get(HAYSTACK_ENV)
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        from pydoc_data.topics import topics

        text = " ".join(topics[k] for k in sorted(topics))
    words = re.sub(r"\s+", " ", text).strip().split(" ")
    return words * (1 + min_words // max(1, len(words)))


def _fits(tokenizer, text: str, budget: int, length: int) -> bool:
    return len(tokenizer(text).input_ids) + budget <= length


def ruler_items(kind: str, length: int, n: int, tokenizer, seed: int = SEED) -> list[dict]:
    """n RULER items of `kind` sized to `length` tokens of `tokenizer`: {input, outputs, gen_prefix, length,
    max_length, kind}. Deterministic for a given seed. ValueError when the length is too short for the kind."""
    import numpy as np

    if kind not in ANSWER_TOKENS:
        raise ValueError(f"unknown RULER task {kind!r} (known: {', '.join(KINDS)})")
    niah, vt, cwe, fwe, _ = modules()
    random.seed(seed * 1_000_003 + length)
    np.random.seed((seed * 7919 + length) % 2**32)
    cwe.RNG.seed(seed)
    budget = ANSWER_TOKENS[kind]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if kind in NIAH:
            cfg = NIAH[kind]
            hay = haystack_words(length) if cfg["type_haystack"] == "essay" else niah.get_haystack(cfg["type_haystack"])
            from lm_eval.tasks.ruler.niah_utils import TEMPLATE

            rows = niah.generate_samples(hay, TOKENIZER=tokenizer, max_seq_length=length, template=TEMPLATE,
                                         num_samples=n, tokens_to_generate=budget, **cfg)
        elif kind == "vt":  # vt_utils.get_dataset: a one-shot example sized to 500 tokens, then the items
            example = vt.sys_vartrack_w_noise_random(tokenizer=tokenizer, num_samples=1, max_seq_length=500,
                                                     incremental=5)[0]
            smallest = vt.generate_input_output(10, 1, 4)[0]  # its sample loop never ends if 10 noises overflow
            shot = example["input"] + " " + " ".join(example["outputs"]) + "\n\n"
            if not _fits(tokenizer, shot + smallest, budget, length):
                raise ValueError(f"RULER vt needs more than {length} tokens in this tokenizer")
            rows = vt.sys_vartrack_w_noise_random(tokenizer=tokenizer, num_samples=n, max_seq_length=length,
                                                  icl_example=example)
        elif kind == "cwe":
            rows = cwe.sys_word_pair_random(num_samples=n, max_seq_length=length, tokenizer=tokenizer)
        else:  # fwe: lm-eval sizes the prompt alone to the length; here prompt + answer, as for the others
            rows = fwe.sys_kwext(tokenizer=tokenizer, max_seq_length=length - budget, num_samples=n)
    out = []
    for r in rows:
        if not r["outputs"]:
            raise ValueError(f"RULER {kind} needs more than {length} tokens in this tokenizer (empty answer)")
        out.append({"kind": kind, "input": r["input"], "outputs": list(r["outputs"]), "gen_prefix": r["gen_prefix"],
                    "length": int(r["length"]), "max_length": length})
    return out


def prompt_of(item: dict) -> str:
    """lm-eval's plain-text prompt: input, a space where neither side has one, then gen_prefix."""
    q, p = item["input"], item["gen_prefix"]
    return q + (" " if q and p and not (q[-1].isspace() or p[0].isspace()) else "") + p


def score(prediction: str, outputs: list[str]) -> float:
    """RULER's string_match_all (the metric of every task here): share of the answers found in the prediction."""
    *_, common = modules()
    return float(common.string_match_all(common.postprocess_pred([prediction]), [outputs]))


def tokenizer_key(tokenizer) -> str:
    """Identifies a tokenizer's vocabulary and merges (what sizes the items), not its chat template."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    blob = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_ruler_data(data_dir, tokenizer, lengths, kinds, n: int) -> list[Path]:
    """`<data_dir>/ruler_<L>_<kind>/test.jsonl` for each length and kind; a folder made with the same tokenizer,
    n and seed (its meta.json) is kept as it is."""
    folders = []
    for length in lengths:
        for kind in kinds:
            folder = Path(data_dir) / f"ruler_{length}_{kind}"
            meta = {"tokenizer": tokenizer_key(tokenizer), "n": n, "seed": SEED, "length": length, "kind": kind}
            meta_path = folder / "meta.json"
            if not (meta_path.is_file() and json.loads(meta_path.read_text()) == meta):
                folder.mkdir(parents=True, exist_ok=True)
                rows = ruler_items(kind, length, n, tokenizer)
                # atomic: parallel evaluations (eval.stage, parallel_jobs) may write the same folder
                text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
                write_text_atomic(folder / "test.jsonl", text)
                write_text_atomic(meta_path, json.dumps(meta))
            folders.append(folder)
    return folders
