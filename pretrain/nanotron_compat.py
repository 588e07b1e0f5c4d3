"""Make nanotron 0.4 (the only nanotron on PyPI) importable everywhere and runnable on CPU.

Usage: ``import pretrain.nanotron_compat`` before anything from ``nanotron``; nothing else is needed.

What it changes, each patch naming the upstream defect it covers:

* always: the import cycle between ``nanotron/logging.py`` (line 38 imports ``LoggingArgs`` from
  ``nanotron.config.config``) and ``nanotron/config/config.py`` (imports ``nanotron.logging``).
* only when ``torch.cuda.is_available()`` is False (a CPU build or a machine without GPU): a CPU
  runtime -- gloo process groups, ``"cuda"`` devices mapped to CPU, safe ``torch.cuda`` calls, a
  pure-torch stand-in for ``flash_attn`` and the dp parameter sync done under ``no_grad``.

On a CUDA machine only the import-cycle fix is applied. Importing this module twice is harmless.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.machinery
import importlib.util
import os
import sys
import types

import torch
import torch.nn.functional as F

_CYCLE_LINE = "from nanotron.config.config import LoggingArgs"
_STUB_MARKER = "__nanotron_compat_stub__"
CPU_RUNTIME = not torch.cuda.is_available()


# --------------------------------------------------------------------------------------------------
# 1. Import cycle (all machines)
# --------------------------------------------------------------------------------------------------
def _fix_logging_import_cycle() -> None:
    """Upstream defect: nanotron/logging.py:38 ``from nanotron.config.config import LoggingArgs``
    while config.py imports nanotron.logging, so every import order fails. ``LoggingArgs`` is only
    a type annotation there: load logging.py with that one line replaced, then bind the real class."""
    loaded = sys.modules.get("nanotron.logging")
    if loaded is not None and hasattr(loaded, "set_ranks_logging_level"):
        return
    spec = importlib.util.find_spec("nanotron.logging")
    source = spec.loader.get_source("nanotron.logging")
    if _CYCLE_LINE not in source:  # fixed upstream: a normal import works
        return
    source = source.replace(_CYCLE_LINE, "LoggingArgs = None  # nanotron_compat: bound after import", 1)
    module = importlib.util.module_from_spec(spec)
    sys.modules["nanotron.logging"] = module
    try:
        exec(compile(source, spec.origin, "exec", dont_inherit=True), module.__dict__)
    except BaseException:
        sys.modules.pop("nanotron.logging", None)
        raise
    import nanotron

    nanotron.logging = module
    from nanotron.config.config import LoggingArgs

    module.LoggingArgs = LoggingArgs


# --------------------------------------------------------------------------------------------------
# 2. CPU runtime (only without CUDA)
# --------------------------------------------------------------------------------------------------
def _is_cuda_device(device) -> bool:
    if isinstance(device, torch.device):
        return device.type == "cuda"
    return isinstance(device, str) and device.startswith("cuda")


class _CudaToCpuMode(torch.overrides.TorchFunctionMode):
    """Upstream defect: ~60 literal ``device="cuda"`` / ``.to("cuda")`` (trainer.py, models/base.py
    build_model, optim/clip_grads.py, optim/zero.py, serialize/*.py, random.py, dataloader.py ...).
    Without CUDA they can only raise, so they are rewritten to CPU. Pushed once, never popped (the
    mechanism torch.set_default_device uses)."""

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        kwargs = kwargs or {}
        if "device" in kwargs and _is_cuda_device(kwargs["device"]):
            kwargs = {**kwargs, "device": "cpu"}
        if func is torch.Tensor.cuda:
            return args[0]
        if func is torch.Tensor.to and any(_is_cuda_device(a) for a in args[1:]):
            args = tuple("cpu" if i > 0 and _is_cuda_device(a) else a for i, a in enumerate(args))
        return func(*args, **kwargs)


class _CpuEvent:
    """Stand-in for torch.cuda.Event (a dummy class that raises on a CPU build)."""

    def __init__(self, enable_timing: bool = False, *args, **kwargs):
        self._time = None

    def record(self, stream=None):
        import time

        self._time = time.perf_counter()

    def synchronize(self):
        pass

    def wait(self, stream=None):
        pass

    def query(self):
        return True

    def elapsed_time(self, end: "_CpuEvent") -> float:
        return (end._time - self._time) * 1000.0


def _patch_torch_cuda() -> None:
    """Upstream defect: torch.cuda.set_device (parallel/context.py, distributed.py), synchronize
    (trainer.py), reset_peak_memory_stats (logging.py), get_rng_state (random.py), Event and
    current_device raise on a CPU build. Make them no-ops / CPU equivalents."""
    cuda = torch.cuda
    if getattr(cuda, _STUB_MARKER, False):
        return
    cuda.set_device = lambda device=None: None
    cuda.synchronize = lambda device=None: None
    cuda.current_device = lambda: 0
    cuda.reset_peak_memory_stats = lambda device=None: None
    cuda.reset_max_memory_allocated = lambda device=None: None
    cuda.memory_allocated = lambda device=None: 0
    cuda.max_memory_allocated = lambda device=None: 0
    cuda.memory_reserved = lambda device=None: 0
    cuda.max_memory_reserved = lambda device=None: 0
    cuda.empty_cache = lambda: None
    cuda.get_rng_state = lambda device="cuda": torch.get_rng_state()
    cuda.set_rng_state = lambda new_state, device="cuda": None
    cuda.manual_seed = lambda seed: None
    cuda.Event = _CpuEvent
    setattr(cuda, _STUB_MARKER, True)


# ---- pure-torch flash_attn ------------------------------------------------------------------------
def _sdpa_gqa(q, k, v, causal: bool, softmax_scale):
    """q [s_q, h_q, d], k/v [s_k, h_k, d] -> [s_q, h_q, d]; flash-attn semantics (GQA, bottom-right causal)."""
    q_, k_, v_ = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))  # [1, h, s, d]
    mask = None
    if causal:
        s_q, s_k = q.shape[0], k.shape[0]
        mask = torch.ones(s_q, s_k, dtype=torch.bool, device=q.device).tril(diagonal=s_k - s_q)
    out = F.scaled_dot_product_attention(
        q_, k_, v_, attn_mask=mask, scale=softmax_scale, enable_gqa=q.shape[1] != k.shape[1]
    )
    return out.squeeze(0).transpose(0, 1)


def flash_attn_varlen_func(
    q,
    k,
    v,
    cu_seqlens_q,
    cu_seqlens_k,
    max_seqlen_q=None,
    max_seqlen_k=None,
    dropout_p=0.0,
    softmax_scale=None,
    causal=False,
    window_size=(-1, -1),
    alibi_slopes=None,
    deterministic=False,
    return_attn_probs=False,
    block_table=None,
):
    """Pure-torch flash_attn_varlen_func: one scaled-dot-product attention per packed sequence."""
    if dropout_p or tuple(window_size) != (-1, -1) or alibi_slopes is not None or return_attn_probs:
        raise NotImplementedError("nanotron_compat: only plain (causal) varlen attention is implemented on CPU")
    out = torch.empty(q.shape[0], q.shape[1], v.shape[2], dtype=q.dtype, device=q.device)
    bq, bk = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    for i in range(len(bq) - 1):
        if bq[i + 1] > bq[i]:
            out[bq[i] : bq[i + 1]] = _sdpa_gqa(
                q[bq[i] : bq[i + 1]], k[bk[i] : bk[i + 1]], v[bk[i] : bk[i + 1]], causal, softmax_scale
            )
    return out


def _flash_attn_with_kvcache(*args, **kwargs):
    raise NotImplementedError("nanotron_compat: KV-cache inference (flash_attn_with_kvcache) needs flash-attn/CUDA")


def _unpad_input(hidden_states, attention_mask):
    seqlens = attention_mask.sum(dim=-1, dtype=torch.int32)
    indices = torch.nonzero(attention_mask.flatten(), as_tuple=False).flatten()
    cu_seqlens = F.pad(torch.cumsum(seqlens, dim=0, dtype=torch.int32), (1, 0))
    flat = hidden_states.reshape(-1, *hidden_states.shape[2:])
    return flat[indices], indices, cu_seqlens, int(seqlens.max().item())


def _pad_input(hidden_states, indices, batch, seqlen):
    out = torch.zeros(batch * seqlen, *hidden_states.shape[1:], dtype=hidden_states.dtype, device=hidden_states.device)
    out[indices] = hidden_states
    return out.view(batch, seqlen, *hidden_states.shape[1:])


def layer_norm_fn(
    x,
    weight,
    bias,
    residual=None,
    x1=None,
    weight1=None,
    bias1=None,
    eps=1e-6,
    dropout_p=0.0,
    rowscale=None,
    prenorm=False,
    residual_in_fp32=False,
    is_rms_norm=False,
    return_dropout_mask=False,
    **kwargs,
):
    """Pure-torch flash_attn.ops.triton.layer_norm.layer_norm_fn (no dropout, no second input)."""
    if dropout_p or x1 is not None or rowscale is not None or return_dropout_mask:
        raise NotImplementedError("nanotron_compat: this layer_norm_fn option needs flash-attn/CUDA")
    if residual is not None:
        x = x + residual
    pre = x.float() if residual_in_fp32 else x
    xf = x.float()
    if is_rms_norm:
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    else:
        y = F.layer_norm(xf, xf.shape[-1:], eps=eps)
    y = y * weight.float()
    if bias is not None:
        y = y + bias.float()
    y = y.to(x.dtype)
    return (y, pre) if prenorm else y


class _RotaryEmbedding(torch.nn.Module):
    """Pure-torch flash_attn.layers.rotary.RotaryEmbedding (training path: qkv or (q, kv))."""

    def __init__(self, dim, base=10000.0, interleaved=False, scale_base=None, pos_idx_in_fp32=True, device=None):
        super().__init__()
        if scale_base is not None:
            raise NotImplementedError("nanotron_compat: xpos rotary needs flash-attn")
        self.dim, self.base, self.interleaved = dim, float(base), interleaved

    def _rotate(self, x, offset):  # x [b, s, h, d]
        s = x.shape[1]
        inv_freq = 1.0 / (self.base ** (torch.arange(0, self.dim, 2, device=x.device, dtype=torch.float32) / self.dim))
        freqs = torch.outer(torch.arange(offset, offset + s, device=x.device, dtype=torch.float32), inv_freq)
        cos, sin = freqs.cos()[None, :, None, :], freqs.sin()[None, :, None, :]
        rot, rest = x[..., : self.dim].float(), x[..., self.dim :]
        if self.interleaved:
            x1, x2 = rot[..., 0::2], rot[..., 1::2]
            out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
        else:
            x1, x2 = rot.chunk(2, dim=-1)
            out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
        return torch.cat((out.to(x.dtype), rest), dim=-1)

    def forward(self, qkv, kv=None, seqlen_offset=0, max_seqlen=None):
        if kv is None:  # qkv [b, s, 3, h, d]
            q, k = self._rotate(qkv[:, :, 0], seqlen_offset), self._rotate(qkv[:, :, 1], seqlen_offset)
            return torch.stack((q, k, qkv[:, :, 2]), dim=2)
        q = self._rotate(qkv, seqlen_offset)  # kv [b, s, 2, h_kv, d]
        k = self._rotate(kv[:, :, 0], seqlen_offset)
        return q, torch.stack((k, kv[:, :, 1]), dim=2)


_STUB_NAMES = (
    "flash_attn",
    "flash_attn.bert_padding",
    "flash_attn.flash_attn_interface",
    "flash_attn.layers",
    "flash_attn.layers.rotary",
    "flash_attn.ops",
    "flash_attn.ops.triton",
    "flash_attn.ops.triton.layer_norm",
)


@contextlib.contextmanager
def _flash_attn_stub():
    """Upstream defect: module-level ``import flash_attn`` in models/llama.py, models/starcoder2.py
    and nn/layer_norm.py (a CUDA-only package). Pure-torch stand-ins are registered under those names
    only while nanotron's modules are imported, then removed, so other libraries (transformers checks
    ``find_spec("flash_attn")``) still see that flash-attn is not installed."""
    if "flash_attn" in sys.modules or importlib.util.find_spec("flash_attn") is not None:
        yield
        return

    def module(name, **attrs):
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
        setattr(mod, _STUB_MARKER, True)
        sys.modules[name] = mod
        return mod

    bert_padding = module("flash_attn.bert_padding", unpad_input=_unpad_input, pad_input=_pad_input)
    interface = module(
        "flash_attn.flash_attn_interface",
        flash_attn_varlen_func=flash_attn_varlen_func,
        flash_attn_with_kvcache=_flash_attn_with_kvcache,
    )
    rotary = module("flash_attn.layers.rotary", RotaryEmbedding=_RotaryEmbedding)
    layers = module("flash_attn.layers", rotary=rotary)
    triton_ln = module("flash_attn.ops.triton.layer_norm", layer_norm_fn=layer_norm_fn)
    triton = module("flash_attn.ops.triton", layer_norm=triton_ln)
    ops = module("flash_attn.ops", triton=triton)
    module(
        "flash_attn",
        __version__="0.0.0+nanotron_compat",
        bert_padding=bert_padding,
        flash_attn_interface=interface,
        layers=layers,
        ops=ops,
    )
    try:
        yield
    finally:
        for name in _STUB_NAMES:
            if getattr(sys.modules.get(name), _STUB_MARKER, False):
                del sys.modules[name]


# ---- nanotron internals ---------------------------------------------------------------------------
def _initialize_torch_distributed_gloo():
    """Replacement for nanotron.distributed.initialize_torch_distributed, which raises
    NotImplementedError("CUDA was not found") instead of using gloo."""
    import torch.distributed as tdist
    from nanotron.utils import find_free_port

    if tdist.is_initialized():
        return True
    os.environ.setdefault("MASTER_ADDR", "localhost")
    if os.getenv("MASTER_PORT") is None:
        os.environ["MASTER_PORT"] = str(find_free_port())
    tdist.init_process_group(
        backend="gloo",
        init_method="env://",
        world_size=int(os.getenv("WORLD_SIZE", "1")),
        rank=int(os.getenv("RANK", "0")),
        timeout=datetime.timedelta(minutes=10),
    )
    return True


def _cpu_dummy_infinite_data_generator(
    micro_batch_size, sequence_length, input_pp_rank, output_pp_rank, vocab_size, seed, parallel_context
):
    """Replacement for nanotron.dataloader.dummy_infinite_data_generator, whose
    ``torch.Generator(device="cuda")`` cannot be created without CUDA (a CPU generator instead)."""
    from nanotron import distributed as dist
    from nanotron.parallel.pipeline_parallel.tensor_pointer import TensorPointer

    def data_generator():
        generator = torch.Generator(device="cpu")
        generator.manual_seed(
            seed * (1 + dist.get_rank(parallel_context.dp_pg)) * (1 + dist.get_rank(parallel_context.pp_pg))
        )
        pp_rank = dist.get_rank(parallel_context.pp_pg)
        shape = (micro_batch_size, sequence_length)
        while True:
            on_input, on_output = pp_rank == input_pp_rank, pp_rank == output_pp_rank
            yield {
                "input_ids": torch.randint(0, vocab_size, shape, generator=generator)
                if on_input
                else TensorPointer(group_rank=input_pp_rank),
                "input_mask": torch.ones(shape, dtype=torch.bool) if on_input else TensorPointer(input_pp_rank),
                "label_ids": torch.randint(0, vocab_size, shape, generator=generator)
                if on_output
                else TensorPointer(group_rank=output_pp_rank),
                "label_mask": torch.ones(shape, dtype=torch.bool) if on_output else TensorPointer(output_pp_rank),
            }

    return data_generator


def _cpu_init_rotary_embeddings(self):
    """Replacement for nanotron.models.llama.RotaryEmbedding.init_rotary_embeddings, which allocates
    on "cuda" and asserts ``self.freqs_cis.device.type == "cuda"``; same table, built on CPU."""
    if self._initialized_buffer:
        return
    inv = 1.0 / (self.theta ** (torch.arange(0, self.dim, 2, dtype=torch.float)[: self.dim // 2] / self.dim))
    freqs = torch.outer(torch.arange(self.end, dtype=torch.float), inv)
    table = torch.view_as_real(torch.polar(torch.ones_like(freqs), freqs))
    self.register_buffer("freqs_cis", table.float(), persistent=False)
    self._initialized_buffer = True


def _patch_nanotron_cpu() -> None:
    import nanotron.dataloader
    import nanotron.distributed
    import nanotron.models.llama
    import nanotron.parallel.context
    import nanotron.trainer

    # distributed.py raises NotImplementedError without CUDA -> gloo.
    nanotron.distributed.initialize_torch_distributed = _initialize_torch_distributed_gloo
    # parallel/context.py ParallelContext.set_device calls torch.cuda.set_device -> nothing to set on CPU.
    nanotron.parallel.context.ParallelContext.set_device = lambda self: None
    # dataloader.py: torch.Generator(device="cuda").
    nanotron.dataloader.dummy_infinite_data_generator = _cpu_dummy_infinite_data_generator
    # models/llama.py: RotaryEmbedding buffer allocated on / asserted to be on "cuda".
    nanotron.models.llama.RotaryEmbedding.init_rotary_embeddings = _cpu_init_rotary_embeddings

    # trainer.py _load_model_checkpoint: `dist.all_reduce(param, AVG)` on leaf parameters that
    # require grad; gloo's in-place collective is refused under autograd -> run it under no_grad.
    trainer_cls = nanotron.trainer.DistributedTrainer
    original = trainer_cls._load_model_checkpoint
    if not getattr(original, _STUB_MARKER, False):

        def _load_model_checkpoint(self, model):
            with torch.no_grad():
                return original(self, model)

        setattr(_load_model_checkpoint, _STUB_MARKER, True)
        trainer_cls._load_model_checkpoint = _load_model_checkpoint


def _apply() -> None:
    if CPU_RUNTIME:
        _patch_torch_cuda()
        if getattr(torch.cuda, "__nanotron_compat_mode__", None) is None:  # push the mode once per process
            mode = _CudaToCpuMode()
            mode.__enter__()
            torch.cuda.__nanotron_compat_mode__ = mode
    _fix_logging_import_cycle()
    if CPU_RUNTIME:
        try:  # imported by nanotron.dataloader; load it before the stub exists so it records "no flash-attn"
            import transformers.trainer_pt_utils  # noqa: F401
        except ImportError:
            pass
        with _flash_attn_stub():
            _patch_nanotron_cpu()


_apply()

__all__ = ["CPU_RUNTIME", "flash_attn_varlen_func", "layer_norm_fn"]
