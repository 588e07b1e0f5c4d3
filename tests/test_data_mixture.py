"""pretrain.data.mixture: exact shares, seeded order, windows and per-document positions, on the built tiny data."""
from __future__ import annotations

import numpy as np
import pytest

from tests.data_fixtures import REPO, read_folder, tiny_data  # noqa: F401


@pytest.fixture
def stage1(tiny_data, monkeypatch):
    """The sampler of the tiny pretrain-stage1 recipe, built from its mixture file and data seed."""
    from pretrain.data.mixture import MixtureSampler
    from recipes.loader import load_stage

    monkeypatch.setenv("SMOLLM3_RUNS", str(tiny_data["runs"]))
    recipe = load_stage(REPO / "recipes/tiny/pretrain-stage1.yaml")
    return recipe, MixtureSampler.from_stage(recipe, eos_id=1)


def test_realized_token_shares_match_the_weights(stage1):
    recipe, sampler = stage1
    # weights of recipes/tiny/mixtures/stage1.yaml: prose 0.85, code 0.12, math 0.03
    expected = {"prose": 85.0, "code": 12.0, "math": 3.0}
    n = recipe.steps.stage_starts["pretrain-stage2"] - 1  # the stage's steps ...
    n *= recipe.batch.global_batch_tokens // recipe.batch.sequence_length  # ... times sequences per step
    tokens = {k: 0 for k in expected}
    for i in range(n):
        item = sampler[i]
        tokens[item["source"]] += len(item["tokens"]) - 1
    total = sum(tokens.values())
    for name, pct in expected.items():
        assert abs(100 * tokens[name] / total - pct) < 1.0, (name, tokens)
    # and over any prefix, the counts stay within two samples of n x weight
    src = np.array([sampler.locate(i)[0] for i in range(n)])
    for m in (1, 7, 50, 333, n):
        counts = np.bincount(src[:m], minlength=3)
        assert np.all(np.abs(counts - m * np.array([0.85, 0.12, 0.03])) < 2.0), (m, counts)
        assert np.array_equal(counts, sampler.counts(m))


def test_same_seed_same_order_other_seed_other_order(tiny_data):
    from pretrain.data.mixture import MixtureSampler

    folders = [tiny_data["data"] / n for n in ("prose", "code", "math")]
    a = MixtureSampler(folders, [0.85, 0.12, 0.03], 256, seed=6)
    b = MixtureSampler(folders, [0.85, 0.12, 0.03], 256, seed=6)
    c = MixtureSampler(folders, [0.85, 0.12, 0.03], 256, seed=7)
    order = list(range(200))
    rows_a = [a.sample(i) for i in order]
    rows_b = {i: b.sample(i) for i in reversed(order)}  # random access: the call order does not matter
    assert all(np.array_equal(rows_a[i], rows_b[i]) for i in order)
    assert sum(not np.array_equal(rows_a[i], c.sample(i)) for i in order) > 150
    assert [a.locate(i)[0] for i in order] != [c.locate(i)[0] for i in order]


def test_samples_are_windows_of_the_source(tiny_data):
    """Sample i = seq_len + 1 consecutive tokens of one source, starting at a multiple of seq_len."""
    from pretrain.data.mixture import MixtureSampler

    names = ["prose", "code", "math", "reasoning"]
    tokens = {n: read_folder(tiny_data["data"] / n)[0] for n in names}
    sampler = MixtureSampler([tiny_data["data"] / n for n in names], [0.5, 0.23, 0.17, 0.1], 512, seed=3)
    for i in range(0, 400, 7):
        item = sampler[i]
        assert len(item["tokens"]) == 513 and item["start"] % 512 == 0
        src = tokens[item["source"]]
        assert np.array_equal(item["tokens"], src[item["start"]: item["start"] + 513])


def test_positions_restart_after_each_document_end(tiny_data):
    from pretrain.data.mixture import MixtureSampler

    data = tiny_data["data"]
    eos = 1  # <|end_of_text|> in the tiny tokenizer
    assert '"eos_token": "<|end_of_text|>"' in (data / "tokenizer" / "tokenizer_config.json").read_text()
    sampler = MixtureSampler([data / "math", data / "reasoning"], [0.5, 0.5], 256, seed=0)
    n_restarts = 0
    for i in range(300):
        item = sampler[i]
        toks, pos = item["tokens"], item["positions"]
        expected = np.zeros(len(toks), dtype=np.int64)
        for j in range(1, len(toks)):
            expected[j] = 0 if toks[j - 1] == eos else expected[j - 1] + 1
        assert np.array_equal(pos, expected), i
        n_restarts += int(np.sum(pos[1:] == 0))
    assert n_restarts > 300  # short math problems: several documents per window


def test_each_epoch_visits_every_window_once(tiny_data):
    from pretrain.data.mixture import MixtureSampler

    sampler = MixtureSampler([tiny_data["data"] / "prose", tiny_data["data"] / "math"], [0.9, 0.1], 256, seed=11)
    n_prose = int(sampler.n_windows[0])
    starts = {}
    i = 0
    while len(starts.setdefault(0, [])) < 2 * n_prose:
        s, k = sampler.locate(i)
        if s == 0:
            starts[0].append(sampler.window_start(s, k))
        i += 1
    first, second = starts[0][:n_prose], starts[0][n_prose:]
    assert sorted(first) == sorted(second) == [w * 256 for w in range(n_prose)]
    assert first != second  # a new order each epoch
    assert sampler.epochs(i)[0] == pytest.approx(2.0, abs=1e-9)


def test_permutation_is_a_bijection():
    from pretrain.data.mixture import permute_index

    for n in (1, 2, 3, 10, 97, 1000, 4097):
        out = [permute_index(j, n, key=12345) for j in range(n)]
        assert sorted(out) == list(range(n))
    assert [permute_index(j, 1000, 1) for j in range(20)] != [permute_index(j, 1000, 2) for j in range(20)]


def test_each_stage_reads_a_shared_source_in_its_own_order(tiny_data, monkeypatch):
    """Stages 2 and 3 do not start again from the windows stage 1 began with: a source that the three stage
    mixtures share is read in a different order in each (the permutation key includes the stage)."""
    from pretrain.data.mixture import MixtureSampler
    from recipes.loader import load_stage

    monkeypatch.setenv("SMOLLM3_RUNS", str(tiny_data["runs"]))
    first_windows = {}
    for stage in ("pretrain-stage1", "pretrain-stage2", "pretrain-stage3"):
        recipe = load_stage(REPO / f"recipes/tiny/{stage}.yaml")
        sampler = MixtureSampler.from_stage(recipe, eos_id=1)
        s = sampler.names.index("prose")
        first_windows[stage] = [sampler.window_start(s, k) for k in range(20)]
        # still a permutation of the source's windows within an epoch, and the same on every call
        n = int(sampler.n_windows[s])
        assert sorted(sampler.window_start(s, k) for k in range(n)) == [w * sampler.seq_len for w in range(n)]
        assert first_windows[stage] == [MixtureSampler.from_stage(recipe, eos_id=1).window_start(s, k)
                                        for k in range(20)]
    orders = list(first_windows.values())
    assert orders[0] != orders[1] and orders[1] != orders[2] and orders[0] != orders[2]


def test_prefetched_micro_batches_are_the_direct_ones_read_ahead(stage1):
    """pretrain.dataloader: micro_batch reads each sample once (sampler[i]: tokens and positions), and the
    background prefetch yields the very batches, in order, while it already reads the next ones."""
    import threading
    import time

    from pretrain.dataloader import micro_batch, prefetched

    _, sampler = stage1
    for i in (0, 5):
        row = micro_batch(sampler, i, 1)
        assert np.array_equal(row["input_ids"][0].numpy(), sampler.sample(i)[:-1])
        assert np.array_equal(row["position_ids"][0].numpy(), sampler.positions(i)[:-1])
    started, consumed = [], []

    def make(first):
        started.append((first, threading.current_thread().name, len(consumed)))
        return micro_batch(sampler, first, 4)

    got = prefetched(make, iter(range(0, 40, 4)), depth=2)
    for k, batch in enumerate(got):
        if k == 0:  # the next ones are read in the background while this one is still in hand
            deadline = time.time() + 10
            while len(started) < 3 and time.time() < deadline:
                time.sleep(0.01)
            assert [s[0] for s in started[:3]] == [0, 4, 8] and not consumed
        direct = micro_batch(sampler, 4 * k, 4)
        assert all(torch_equal(batch[key], direct[key]) for key in direct)
        consumed.append(k)
    assert [s[0] for s in started] == list(range(0, 40, 4)) and all(s[1].startswith("prefetch") for s in started)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))
