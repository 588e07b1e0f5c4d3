"""smollm3/scoring.py: the chunked token scorer equals the full-logits computation, and its memory does not grow
with positions x vocabulary."""
import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from smollm3.scoring import token_logprobs


@pytest.mark.parametrize("chunk", [1, 3, 2048])
def test_chunked_log_probabilities_equal_the_full_logits(tmp_path, chunk):
    from transformers import AutoModelForCausalLM

    from tests.eval_fixtures import make_tiny_model

    model = AutoModelForCausalLM.from_pretrained(make_tiny_model(tmp_path / "m")).eval()
    ids = torch.randint(0, model.config.vocab_size, (40,), generator=torch.Generator().manual_seed(0)).tolist()
    with torch.no_grad():
        full = model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
    logp, greedy = token_logprobs(model, ids, 5, 37, chunk=chunk)
    want = full[torch.arange(4, 36), torch.tensor(ids[5:37])]
    assert logp.shape == (32,) and torch.allclose(logp, want, atol=1e-5)
    assert torch.equal(greedy, full[4:36].argmax(-1))
    with pytest.raises(ValueError):
        token_logprobs(model, ids, 0)


PEAK = """
import json, resource, sys, torch
from transformers import SmolLM3Config, SmolLM3ForCausalLM
sys.path.insert(0, {repo!r})
from smollm3.scoring import token_logprobs
torch.manual_seed(0)
cfg = SmolLM3Config(vocab_size=128256, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                    num_attention_heads=1, num_key_value_heads=1, max_position_embeddings={n})
model = SmolLM3ForCausalLM(cfg).eval()
ids = torch.randint(0, 128256, ({n},)).tolist()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
logp, _ = token_logprobs(model, ids, 1)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"grew_mib": (after - before) / 1024, "scored": len(logp), "finite": bool(logp.isfinite().all())}}))
"""


@pytest.mark.slow
def test_a_long_sequence_with_the_smollm3_vocabulary_stays_under_its_memory_bound():
    """8,192 positions x 128,256 tokens: the full fp32 logits alone would be 3.9 GiB (and their log-softmax as
    much again); the chunked scorer's peak grows by less than 1 GiB (512 x 128,256 fp32 logits per chunk, 263 MB,
    with logsumexp's temporaries)."""
    n = 8192
    out = subprocess.run([sys.executable, "-c", PEAK.format(repo=str(REPO), n=n)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    full_gib = n * 128256 * 4 / 2**30
    assert got["scored"] == n - 1 and got["finite"]
    assert got["grew_mib"] < 1024 < full_gib * 1024, got
