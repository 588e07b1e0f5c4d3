"""SmolLM3 for nanotron 0.4: GQA, RoPE with a configurable theta, NoPE every n-th layer,
intra-document attention from per-document position ids, tied embeddings, RMSNorm, SiLU-gated MLP.

Usage: ``SmolLM3Trainer("config.yaml").train(dataloader)`` (a nanotron YAML whose ``model.model_config``
is a :class:`smollm3.hf_config.SmolLM3Config`); batches are dicts with ``input_ids``,
``position_ids``, ``input_mask`` ([batch, seq] on the input pipeline rank), ``label_ids`` and
``label_mask`` ([batch, seq] on the output pipeline rank), ``TensorPointer`` elsewhere.

Documents inside a packed row are delimited by ``position_ids`` alone (a 0 starts a document);
``input_mask`` is accepted for nanotron's batch contract but not used: express padding as its own
run of positions starting at 0 and drop it from the loss with ``label_mask``.
"""

from __future__ import annotations

import contextlib
import math
import re
import weakref
import zlib
from typing import Dict, Optional, Union

# isort: split
import pretrain.nanotron_compat  # noqa: F401  (must precede every nanotron import)

# isort: split
import nanotron.trainer
import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from nanotron import distributed as dist
from nanotron.config import Config, ParallelismArgs
from nanotron.models import NanotronModel, build_model
from nanotron.optim.gradient_accumulator import FP32GradBucketManager, FP32GradientAccumulator, get_fp32_accum_hook
from nanotron.optim.named_optimizer import NamedOptimizer
from nanotron.optim.optimizer_from_gradient_accumulator import OptimizerFromGradientAccumulator
from nanotron.optim.zero import ZeroDistributedOptimizer
from nanotron.parallel import ParallelContext
from nanotron.parallel.parameters import NanotronParameter, sanity_check
from nanotron.parallel.pipeline_parallel.block import PipelineBlock, TensorPointer
from nanotron.parallel.pipeline_parallel.p2p import P2P
from nanotron.parallel.tensor_parallel.functional import sharded_cross_entropy
from nanotron.parallel.tensor_parallel.nn import (
    TensorParallelColumnLinear,
    TensorParallelEmbedding,
    TensorParallelLinearMode,
    TensorParallelRowLinear,
)
from nanotron.trainer import DistributedTrainer, mark_tied_parameters
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from smollm3.hf_config import SmolLM3Config

try:  # the real kernel only; nanotron_compat's CPU stand-in is marked and ignored here
    import flash_attn as _flash_attn
    from flash_attn.flash_attn_interface import flash_attn_varlen_func as _flash_varlen

    if getattr(_flash_attn, "__nanotron_compat_stub__", False):
        _flash_varlen = None
except ImportError:
    _flash_varlen = None

# Parameters kept out of weight decay (OLMo 2 / SmolLM3: `weight_decay_exclude_named_params`).
NO_WEIGHT_DECAY_PATTERNS = (r".*token_embedding.*",)
EMBEDDING_NAME = "model.token_position_embeddings.pp_block.token_embedding.weight"
LM_HEAD_NAME = "model.lm_head.pp_block.weight"


# ---- numerics (shared by every parallel layout) -------------------------------------------------
class RMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        x = input.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(input.dtype)


def rope_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype):
    """cos/sin tables [batch, seq, head_dim] (non-interleaved halves, as in transformers)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float, device=position_ids.device) / head_dim))
    freqs = position_ids[..., None].float() * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [batch, seq, heads, head_dim]; cos/sin [batch, seq, head_dim]."""
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


def document_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Index of the document each token belongs to: a new document starts wherever position == 0."""
    return (position_ids == 0).cumsum(dim=-1)


def document_causal_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """Boolean [batch, 1, seq, seq]: query i may see key j iff j <= i and both are in the same document."""
    doc = document_ids(position_ids)
    seq = position_ids.shape[-1]
    causal = torch.ones(seq, seq, dtype=torch.bool, device=position_ids.device).tril()
    return ((doc[:, :, None] == doc[:, None, :]) & causal)[:, None]


def cu_seqlens_from_positions(position_ids: torch.Tensor, doc_masking: bool):
    """(cu_seqlens int32 [n_docs + 1], max_seqlen) over the flattened [batch * seq] tokens."""
    batch, seq = position_ids.shape
    starts = torch.zeros_like(position_ids, dtype=torch.bool)
    starts[:, 0] = True
    if doc_masking:
        starts |= position_ids == 0
    idx = starts.flatten().nonzero().flatten().to(torch.int32)
    cu = torch.cat([idx, idx.new_tensor([batch * seq])])
    return cu, int((cu[1:] - cu[:-1]).max())


class PerBatch:
    """What the layers derive from a batch's `position_ids` (the document mask or flash-attn's cu_seqlens, the
    RoPE tables), computed by the first layer that needs it and reused by every later layer and by the
    activation-recompute pass: all of them receive the same position_ids tensor, the key (held weakly, so a new
    batch, even one reusing the memory, is never served the old values)."""

    def __init__(self):
        self._key, self._values = None, {}

    def get(self, position_ids: torch.Tensor, name, build):
        if self._key is None or self._key() is not position_ids:
            self._key, self._values = weakref.ref(position_ids), {}
        if name not in self._values:
            self._values[name] = build()
        return self._values[name]


PER_BATCH = PerBatch()


def attention(q, k, v, position_ids, doc_masking: bool, flash: bool = False):
    """q [b, s, hq, d], k/v [b, s, hkv, d] -> [b, s, hq, d]; causal, within documents if doc_masking.
    With ``flash`` (attn_implementation flash_attention_2): flash-attn varlen (``cu_seqlens``); it needs
    CUDA tensors in half precision and the flash-attn package, which the stage checks before launch.
    Otherwise one masked SDPA call."""
    b, s, hq, d = q.shape
    if flash:
        if _flash_varlen is None or not q.is_cuda or q.dtype not in (torch.float16, torch.bfloat16):
            raise RuntimeError("flash_attention_2 needs flash-attn and CUDA tensors in half precision")
        cu, max_len = PER_BATCH.get(position_ids, ("cu_seqlens", doc_masking),
                                    lambda: cu_seqlens_from_positions(position_ids, doc_masking))
        out = _flash_varlen(
            q.reshape(b * s, hq, d),
            k.reshape(b * s, -1, d),
            v.reshape(b * s, -1, d),
            cu_seqlens_q=cu,
            cu_seqlens_k=cu,
            max_seqlen_q=max_len,
            max_seqlen_k=max_len,
            causal=True,
        )
        return out.view(b, s, hq, d)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [b, h, s, d]
    gqa = q.shape[1] != k.shape[1]
    if doc_masking:
        mask = PER_BATCH.get(position_ids, "mask", lambda: document_causal_mask(position_ids))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
    else:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
    return out.transpose(1, 2)


# ---- blocks -------------------------------------------------------------------------------------
def _plain_int_shard_shapes(module: nn.Module) -> None:
    """nanotron's chunked sharding records `unsharded_shape` with numpy ints, which numpy >= 2 writes
    into checkpoint metadata as 'np.int64(128)' that nanotron cannot read back (re-sharding fails)."""
    for param in module.parameters():
        if isinstance(param, NanotronParameter) and param.is_sharded:
            info = param.get_sharded_info()
            info.unsharded_shape = tuple(int(x) for x in info.unsharded_shape)


def _tp_args(parallel_config: Optional[ParallelismArgs]):
    mode = parallel_config.tp_mode if parallel_config is not None else TensorParallelLinearMode.ALL_REDUCE
    async_comm = parallel_config.tp_linear_async_communication if parallel_config is not None else False
    return mode, async_comm


class CausalSelfAttention(nn.Module):
    def __init__(self, config: SmolLM3Config, parallel_config, tp_pg: dist.ProcessGroup, layer_idx: int):
        super().__init__()
        tp = tp_pg.size()
        if config.num_attention_heads % tp or config.num_key_value_heads % tp:
            raise ValueError(f"attention heads ({config.num_attention_heads}/{config.num_key_value_heads}) % tp={tp}")
        mode, async_comm = _tp_args(parallel_config)
        self.d = config.head_dim
        self.n_q = config.num_attention_heads // tp
        self.n_kv = config.num_key_value_heads // tp
        self.use_rope = config.uses_rope(layer_idx)
        self.theta = config.rope_theta
        self.doc_masking = config.use_doc_masking
        self.flash = config.attn_implementation == "flash_attention_2"
        chunks = (config.num_attention_heads * self.d, config.num_key_value_heads * self.d,
                  config.num_key_value_heads * self.d)
        self.qkv_proj = TensorParallelColumnLinear(
            config.hidden_size, sum(chunks), pg=tp_pg, mode=mode, bias=False,
            async_communication=async_comm, contiguous_chunks=chunks,
        )  # fmt: skip
        self.o_proj = TensorParallelRowLinear(
            config.num_attention_heads * self.d, config.hidden_size, pg=tp_pg, mode=mode, bias=False,
            async_communication=async_comm and mode is TensorParallelLinearMode.REDUCE_SCATTER,
        )  # fmt: skip
        _plain_int_shard_shapes(self)

    def forward(self, hidden_states, position_ids):  # [seq(/tp), batch, hidden], [batch, seq]
        qkv = self.qkv_proj(hidden_states)  # [seq, batch, local q+k+v]
        s, b, _ = qkv.shape
        q, k, v = torch.split(qkv, [self.n_q * self.d, self.n_kv * self.d, self.n_kv * self.d], dim=-1)
        q = q.view(s, b, self.n_q, self.d).transpose(0, 1)
        k = k.view(s, b, self.n_kv, self.d).transpose(0, 1)
        v = v.view(s, b, self.n_kv, self.d).transpose(0, 1)
        if self.use_rope:
            cos, sin = PER_BATCH.get(position_ids, ("rope", self.d, self.theta, q.dtype),
                                     lambda: rope_cos_sin(position_ids, self.d, self.theta, q.dtype))
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        out = attention(q, k, v, position_ids, self.doc_masking, self.flash)  # [b, s, n_q, d]
        out = out.reshape(b, s, self.n_q * self.d).transpose(0, 1).contiguous()
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self, config: SmolLM3Config, parallel_config, tp_pg: dist.ProcessGroup):
        super().__init__()
        mode, async_comm = _tp_args(parallel_config)
        chunks = (config.intermediate_size, config.intermediate_size)
        self.gate_up_proj = TensorParallelColumnLinear(
            config.hidden_size, 2 * config.intermediate_size, pg=tp_pg, mode=mode, bias=False,
            async_communication=async_comm, contiguous_chunks=chunks,
        )  # fmt: skip
        self.down_proj = TensorParallelRowLinear(
            config.intermediate_size, config.hidden_size, pg=tp_pg, mode=mode, bias=False,
            async_communication=async_comm and mode is TensorParallelLinearMode.REDUCE_SCATTER,
        )  # fmt: skip
        _plain_int_shard_shapes(self)

    def forward(self, hidden_states):
        gate, up = self.gate_up_proj(hidden_states).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, config: SmolLM3Config, parallel_config, tp_pg: dist.ProcessGroup, layer_idx: int):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.attn = CausalSelfAttention(config, parallel_config, tp_pg, layer_idx)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = MLP(config, parallel_config, tp_pg)
        self.recompute = config.recompute_layer

    def _layer(self, hidden_states, position_ids):
        hidden_states = hidden_states + self.attn(self.input_layernorm(hidden_states), position_ids)
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))

    def forward(self, hidden_states, position_ids):
        if self.recompute and torch.is_grad_enabled():
            # Activation recompute (parallelism.recompute_layer): keep only the layer's input and run its
            # forward again during backward. Non-reentrant checkpointing replays the tensor-parallel
            # collectives in the same order on every rank.
            hidden_states = torch.utils.checkpoint.checkpoint(self._layer, hidden_states, position_ids,
                                                              use_reentrant=False)
        else:
            hidden_states = self._layer(hidden_states, position_ids)
        return {"hidden_states": hidden_states, "position_ids": position_ids}


class Embedding(nn.Module):
    def __init__(self, config: SmolLM3Config, parallel_config, tp_pg: dist.ProcessGroup):
        super().__init__()
        mode, _ = _tp_args(parallel_config)
        self.token_embedding = TensorParallelEmbedding(config.vocab_size, config.hidden_size, pg=tp_pg, mode=mode)

    def forward(self, input_ids):  # [batch, seq] -> [seq, batch, hidden]
        return {"input_embeds": self.token_embedding(input_ids.transpose(0, 1))}


class Loss(nn.Module):
    def __init__(self, tp_pg: dist.ProcessGroup):
        super().__init__()
        self.tp_pg = tp_pg

    def forward(self, sharded_logits, label_ids, label_mask):  # [seq, batch, vocab/tp], [batch, seq] x2
        loss = sharded_cross_entropy(
            sharded_logits, label_ids.transpose(0, 1).contiguous(), group=self.tp_pg, dtype=torch.float
        ).transpose(0, 1)
        label_mask = label_mask.to(loss.dtype)
        return {"loss": (loss * label_mask).sum() / label_mask.sum()}


class SmolLM3Model(nn.Module):
    """The pipeline graph: embedding -> decoder layers -> final norm -> lm_head -> fp32 logits."""

    def __init__(self, config: SmolLM3Config, parallel_context: ParallelContext, parallel_config):
        super().__init__()
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.p2p = P2P(parallel_context.pp_pg, device=device)
        self.config = config
        tp_pg = parallel_context.tp_pg
        mode, async_comm = _tp_args(parallel_config)
        common = {"config": config, "parallel_config": parallel_config, "tp_pg": tp_pg}
        self.token_position_embeddings = PipelineBlock(
            p2p=self.p2p, module_builder=Embedding, module_kwargs=common,
            module_input_keys={"input_ids"}, module_output_keys={"input_embeds"},
        )  # fmt: skip
        self.decoder = nn.ModuleList(
            PipelineBlock(
                p2p=self.p2p, module_builder=DecoderLayer, module_kwargs={**common, "layer_idx": i},
                module_input_keys={"hidden_states", "position_ids"},
                module_output_keys={"hidden_states", "position_ids"},
            )  # fmt: skip
            for i in range(config.num_hidden_layers)
        )
        self.final_layer_norm = PipelineBlock(
            p2p=self.p2p, module_builder=RMSNorm,
            module_kwargs={"hidden_size": config.hidden_size, "eps": config.rms_norm_eps},
            module_input_keys={"input"}, module_output_keys={"hidden_states"},
        )  # fmt: skip
        self.lm_head = PipelineBlock(
            p2p=self.p2p, module_builder=TensorParallelColumnLinear,
            module_kwargs={"in_features": config.hidden_size, "out_features": config.vocab_size, "pg": tp_pg,
                           "bias": False, "mode": mode, "async_communication": async_comm},
            module_input_keys={"x"}, module_output_keys={"logits"},
        )  # fmt: skip
        self.cast_to_fp32 = PipelineBlock(
            p2p=self.p2p, module_builder=lambda: lambda x: x.float(), module_kwargs={},
            module_input_keys={"x"}, module_output_keys={"output"},
        )  # fmt: skip

    def forward(self, input_ids, position_ids):
        """-> fp32 logits [seq, batch, vocab / tp] (vocab-sharded) on the output pipeline rank."""
        hidden = self.token_position_embeddings(input_ids=input_ids)["input_embeds"]
        state = {"hidden_states": hidden, "position_ids": position_ids}
        for block in self.decoder:
            state = block(**state)
        hidden = self.final_layer_norm(input=state["hidden_states"])["hidden_states"]
        return self.cast_to_fp32(x=self.lm_head(x=hidden)["logits"])["output"]


class SmolLM3ForTraining(NanotronModel):
    def __init__(
        self,
        config: SmolLM3Config,
        parallel_context: ParallelContext,
        parallel_config: Optional[ParallelismArgs],
        random_states=None,
    ):
        super().__init__()
        self.model = SmolLM3Model(config, parallel_context, parallel_config)
        self.loss = PipelineBlock(
            p2p=self.model.p2p, module_builder=Loss, module_kwargs={"tp_pg": parallel_context.tp_pg},
            module_input_keys={"sharded_logits", "label_ids", "label_mask"}, module_output_keys={"loss"},
        )  # fmt: skip
        self.config = config
        self.parallel_context = parallel_context
        self.parallel_config = parallel_config

    def forward(
        self,
        input_ids: Union[torch.Tensor, TensorPointer],
        position_ids: Union[torch.Tensor, TensorPointer],
        input_mask: Union[torch.Tensor, TensorPointer],
        label_ids: Union[torch.Tensor, TensorPointer],
        label_mask: Union[torch.Tensor, TensorPointer],
    ) -> Dict[str, Union[torch.Tensor, TensorPointer]]:
        logits = self.model(input_ids=input_ids, position_ids=position_ids)
        return {"loss": self.loss(sharded_logits=logits, label_ids=label_ids, label_mask=label_mask)["loss"]}

    @torch.no_grad()
    def init_model_randomly(self, config: Config):
        """N(0, std) for the embedding and column-parallel linears, std / sqrt(2 x layers) for the output
        projections (o_proj, down_proj), 1 for RMSNorm weights. Every full tensor is drawn from a
        generator seeded by (seed, parameter name), then sliced: the same seed gives the same model
        at any tp / pp."""
        init = config.model.init_method
        std = getattr(init, "std", None) or self.config.initializer_range
        row_std = std / math.sqrt(2 * self.config.num_hidden_layers)
        prefixes = {id(module): f"{name}." for name, module in self.named_modules()}
        prefixes[id(self)] = ""
        done = set()
        for local_name, param in self.named_parameters():
            name = (param.get_tied_info().get_full_name_from_module_id_to_prefix(prefixes) if param.is_tied
                    else local_name)
            if name in done:
                continue
            done.add(name)
            module = self.get_submodule(local_name.rsplit(".", 1)[0])
            if isinstance(module, RMSNorm):
                param.fill_(1.0)
                continue
            if not isinstance(module, (TensorParallelColumnLinear, TensorParallelRowLinear, TensorParallelEmbedding)):
                raise TypeError(f"no initialisation rule for {name} ({type(module).__name__})")
            sigma = row_std if isinstance(module, TensorParallelRowLinear) else std
            generator = torch.Generator(device=param.device)
            generator.manual_seed((config.general.seed * 1_000_003 + zlib.crc32(name.encode())) % 2**63)
            full = torch.randn(_unsharded_shape(param), generator=generator, device=param.device) * sigma
            param.copy_(_local_slice(param, full))

    def get_embeddings_lm_head_tied_names(self):
        return [EMBEDDING_NAME, LM_HEAD_NAME] if self.config.tie_word_embeddings else []

    def get_block_compute_costs(self):
        c = self.config
        attn = c.hidden_size * (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim
        attn += c.num_attention_heads * c.head_dim * c.hidden_size
        return {DecoderLayer: attn + 3 * c.intermediate_size * c.hidden_size,
                TensorParallelColumnLinear: c.vocab_size * c.hidden_size}  # fmt: skip

    def get_flops_per_sec(self, iteration_time_in_sec, sequence_length, global_batch_size):
        c = self.config
        costs = self.get_block_compute_costs()
        matmul_params = c.num_hidden_layers * costs[DecoderLayer] + costs[TensorParallelColumnLinear]
        tokens = global_batch_size * sequence_length
        attn = 4 * c.num_hidden_layers * c.num_attention_heads * c.head_dim * sequence_length * tokens
        flops = 3 * (2 * matmul_params * tokens + attn)  # forward + 2 x backward
        per_s = flops / (iteration_time_in_sec * self.parallel_context.world_pg.size() * 1e12)
        return per_s, per_s


def _unsharded_shape(param: NanotronParameter):
    return tuple(param.get_sharded_info().unsharded_shape) if param.is_sharded else tuple(param.shape)


def _local_slice(param: NanotronParameter, full: torch.Tensor) -> torch.Tensor:
    """The part of an unsharded tensor this rank holds (nanotron's sharding metadata)."""
    if not param.is_sharded:
        return full
    local = torch.empty_like(param)
    for pair in param.get_sharded_info().local_global_slices_pairs:
        local[pair.local_slices] = full[pair.global_slices]
    return local


# ---- building outside the trainer (inference, tests, conversion checks) -------------------------
def build_smollm3(
    config: SmolLM3Config,
    parallel_context: ParallelContext,
    parallel_config: Optional[ParallelismArgs] = None,
    dtype: torch.dtype = torch.float32,
) -> SmolLM3ForTraining:
    """Build the model on this rank's pipeline stage and tie its parameters, as the trainer does."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(
        model_builder=lambda: SmolLM3ForTraining(config, parallel_context, parallel_config),
        parallel_context=parallel_context,
        dtype=dtype,
        device=device,
    )
    mark_tied_parameters(model=model, parallel_context=parallel_context, parallel_config=parallel_config)
    sanity_check(root_module=model)
    return model


# ---- optimizer with named parameter groups -------------------------------------------------------
def param_groups(named_params, weight_decay: float, patterns=NO_WEIGHT_DECAY_PATTERNS):
    """Two named groups: weight decay for everything but the names matching `patterns` (embedding)."""
    regexes = [re.compile(p) for p in patterns]
    decay, no_decay = [], []
    for name, param in named_params:
        (no_decay if any(r.fullmatch(name) for r in regexes) else decay).append((name, param))
    return [
        {"named_params": decay, "weight_decay": weight_decay},
        {"named_params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, optimizer_args, parallel_context: ParallelContext):
    """Drop-in for nanotron.helpers.init_optimizer_and_grad_accumulator (which builds one AdamW group
    with one weight decay) building the groups of :func:`param_groups`; ZeRO-1 and fp32 gradient
    accumulation are wired as nanotron does. Returns (optimizer, grad_accumulator or None)."""
    unwrapped = model.module if isinstance(model, DistributedDataParallel) else model
    named_params = list(unwrapped.get_named_params_with_correct_tied())
    groups = param_groups(named_params, optimizer_args.weight_decay)

    def adamw(named_groups):
        return NamedOptimizer(
            named_params_or_groups=named_groups,
            optimizer_builder=lambda groups_: torch.optim.AdamW(
                groups_,
                lr=optimizer_args.learning_rate_scheduler.learning_rate,
                weight_decay=optimizer_args.weight_decay,
                eps=optimizer_args.adam_eps,
                betas=(optimizer_args.adam_beta1, optimizer_args.adam_beta2),
                fused=optimizer_args.torch_adam_is_fused,
            ),
        )

    builder, accumulator = adamw, None
    if optimizer_args.accumulate_grad_in_fp32:

        def builder(named_groups):
            nonlocal accumulator
            result = OptimizerFromGradientAccumulator(
                gradient_accumulator_builder=lambda named: FP32GradientAccumulator(
                    named_parameters=named, grad_buckets_named_params=named_params
                ),
                named_params_or_groups=named_groups,
                optimizer_builder=adamw,
            )
            accumulator = result.gradient_accumulator
            return result

    if optimizer_args.zero_stage > 0:
        optimizer = ZeroDistributedOptimizer(
            named_params_or_groups=groups, optimizer_builder=builder, dp_pg=parallel_context.dp_pg
        )
        if accumulator is not None:
            accumulator.assign_param_offsets(
                dp_rank=dist.get_rank(parallel_context.dp_pg),
                param_name_to_offsets=optimizer.param_name_to_dp_rank_offsets,
            )
    else:
        optimizer = builder(groups)

    if isinstance(model, DistributedDataParallel) and accumulator is not None:
        prefixes = {id(m): f"{n}." for n, m in unwrapped.named_modules()}
        prefixes[id(unwrapped)] = ""
        model.register_comm_hook(
            state=FP32GradBucketManager(
                dp_pg=parallel_context.dp_pg,
                accumulator=accumulator,
                param_id_to_name={
                    id(p): p.get_tied_info().get_full_name_from_module_id_to_prefix(prefixes) if p.is_tied else n
                    for n, p in unwrapped.named_parameters()
                },
            ),
            hook=get_fp32_accum_hook(
                reduce_scatter=optimizer.inherit_from(ZeroDistributedOptimizer), reduce_op=dist.ReduceOp.AVG
            ),
        )
    return optimizer, accumulator


@contextlib.contextmanager
def _grouped_optimizer_in_trainer():
    original = nanotron.trainer.init_optimizer_and_grad_accumulator
    nanotron.trainer.init_optimizer_and_grad_accumulator = build_optimizer
    try:
        yield
    finally:
        nanotron.trainer.init_optimizer_and_grad_accumulator = original


class SmolLM3Trainer(DistributedTrainer):
    """nanotron's DistributedTrainer with this model registered (``model_config_class`` /
    ``model_class``) and the optimizer built by :func:`build_optimizer` (no decay on the embedding)."""

    def __init__(self, config_file: str, config_class=Config):
        with _grouped_optimizer_in_trainer():
            super().__init__(
                config_file, config_class=config_class, model_config_class=SmolLM3Config, model_class=SmolLM3ForTraining
            )
        if self.init_checkpoint_path is not None:
            # nanotron 0.4 builds the LambdaLR after loading the optimizer: its constructor sets every group's
            # lr to lr x lambda(0) (0 with a linear warmup), and loading the scheduler state restores the step
            # count but not the groups' lr, so the first step after a resume would use lambda(0). Put back
            # the lr of the resumed step. The scheduler's base lr is the config's, not the checkpoint's: a run
            # continued under a changed learning rate (--continue) trains with the new one.
            sched = self.lr_scheduler
            peak = self.config.optimizer.learning_rate_scheduler.learning_rate
            sched.base_lrs = [peak for _ in sched.base_lrs]
            sched._last_lr = [peak * fn(sched.last_epoch) for fn in sched.lr_lambdas]
            for group, lr in zip(sched.optimizer.param_groups, sched.get_last_lr()):
                group["lr"] = lr

    def save_checkpoint(self):
        # nanotron's save() sanity check broadcasts the tied parameters in place with autograd on,
        # which torch >= 2.x answers with an autograd-fallback warning at the next backward.
        with torch.no_grad():
            return super().save_checkpoint()
