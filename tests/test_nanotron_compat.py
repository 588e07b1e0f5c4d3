"""pretrain.nanotron_compat: nanotron 0.4 imports, and on a machine without CUDA runs on CPU."""

import math
import os
import subprocess
import sys
import textwrap

import nanotron_harness as H
import pytest
import torch

from pretrain import nanotron_compat

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU runtime is only installed without CUDA")


def python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(H.REPO))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=H.REPO, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_import_fixes_the_cycle_and_is_idempotent():
    result = python(
        """
        import importlib, sys
        try:
            import nanotron.trainer
            print("UNPATCHED-IMPORT-WORKED")
        except ImportError as e:
            print("unpatched:", e)
        import pretrain.nanotron_compat as compat
        importlib.reload(compat)
        import pretrain.nanotron_compat
        import nanotron.trainer, nanotron.logging, torch
        from nanotron.config.config import LoggingArgs
        assert nanotron.logging.LoggingArgs is LoggingArgs
        assert callable(nanotron.logging.log_rank)
        assert len(torch.overrides._get_current_function_mode_stack()) == int(compat.CPU_RUNTIME)
        import importlib.util
        assert importlib.util.find_spec("flash_attn") is None  # the stand-in is not visible to others
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "circular import" in result.stdout and result.stdout.strip().endswith("ok")


@cpu_only
def test_cuda_calls_are_safe_and_cuda_devices_map_to_cpu():
    torch.cuda.set_device(torch.cuda.device(0))
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    assert torch.cuda.memory_allocated() == 0 and torch.cuda.max_memory_reserved() == 0
    assert torch.cuda.get_rng_state("cuda").dtype == torch.uint8
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(), end.record()
    assert end.elapsed_time(start) <= 0 <= start.elapsed_time(end)
    assert torch.zeros(2, device="cuda").device.type == "cpu"
    assert torch.ones(2).to("cuda", memory_format=torch.contiguous_format).device.type == "cpu"
    assert torch.tensor(3, device=torch.device("cuda")).device.type == "cpu"


def _reference_attention(q, k, v):
    """Causal softmax attention written out, kv heads repeated for GQA. q [s, hq, d], k/v [s, hk, d]."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(q.shape[-1])
    causal = torch.ones(q.shape[0], k.shape[0], dtype=torch.bool).tril()
    return torch.einsum("hqk,khd->qhd", scores.masked_fill(~causal, float("-inf")).softmax(-1), v)


def test_pure_torch_flash_attn_stand_ins():
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(20, 4, 8, generator=g), torch.randn(20, 2, 8, generator=g), torch.randn(20, 2, 8, generator=g)
    cu = torch.tensor([0, 5, 12, 20], dtype=torch.int32)
    out = nanotron_compat.flash_attn_varlen_func(q, k, v, cu, cu, 8, 8, causal=True)
    expected = torch.cat([_reference_attention(q[a:b], k[a:b], v[a:b]) for a, b in zip(cu[:-1], cu[1:])])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)

    x, w = torch.randn(3, 16, generator=g), torch.randn(16, generator=g)
    y = nanotron_compat.layer_norm_fn(x, w, None, eps=1e-6, is_rms_norm=True)
    torch.testing.assert_close(y, x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6) * w)

    rotary = nanotron_compat._RotaryEmbedding(8, interleaved=True)
    qr, _ = rotary(q[None, :, :, :], kv=torch.stack([k, v], dim=1)[None])
    angle = torch.arange(20.0)[:, None] / 10000.0 ** (torch.arange(0, 8, 2) / 8)  # [s, d/2]
    as_complex = torch.view_as_complex(q.reshape(20, 4, 4, 2)) * torch.polar(torch.ones_like(angle), angle)[:, None]
    torch.testing.assert_close(qr[0], torch.view_as_real(as_complex).reshape(20, 4, 8), rtol=1e-5, atol=1e-6)


@cpu_only
def test_nanotron_llama_trains_on_cpu(tmp_path):
    """nanotron's own LlamaForTraining (flash-attn rotary, varlen attention and Triton RMSNorm
    replaced) trains a few steps through DistributedTrainer on nanotron's dummy data."""
    from nanotron.config import LlamaConfig
    from nanotron.dataloader import dummy_infinite_data_generator
    from nanotron.trainer import DistributedTrainer

    config_path = H.write_config(tmp_path / "config.yaml", ckpt_dir=tmp_path / "checkpoints", steps=4, lr=1e-2)
    import yaml

    config = yaml.safe_load(config_path.read_text())
    config["model"]["model_config"] = {k: v for k, v in vars(LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=H.VOCAB, max_position_embeddings=H.SEQ)).items()}  # fmt: skip
    config_path.write_text(yaml.safe_dump(config))

    losses = []

    class Recording(DistributedTrainer):
        def training_step(self, dataloader):
            outputs, loss = super().training_step(dataloader)
            losses.append(float(loss))
            return outputs, loss

    with H.single_process_world():
        trainer = Recording(str(config_path))
        model = trainer.unwrapped_model
        data = dummy_infinite_data_generator(
            micro_batch_size=2, sequence_length=H.SEQ, input_pp_rank=model.input_pp_rank,
            output_pp_rank=model.output_pp_rank, vocab_size=H.VOCAB, seed=0,
            parallel_context=trainer.parallel_context,
        )()  # fmt: skip
        trainer.train(data)
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert abs(losses[0] - math.log(H.VOCAB)) < 0.5  # random init on random tokens
