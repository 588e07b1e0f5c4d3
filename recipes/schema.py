"""Typed, strict schema of a resolved stage recipe (pydantic v2).

Every stage YAML, after inheritance and command-line overrides, must validate against one of the stage
models below (chosen by its `kind`). Unknown keys, wrong types and broken invariants are rejected; values
that follow from others (gradient accumulation, steps, tokens, GPUs, nodes) are never typed in a recipe:
`recipes.derive` computes them.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

Pos = Annotated[int, Field(gt=0)]
NonNeg = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class InvariantError(ValueError):
    """A broken cross-field invariant; `field` is the dotted key the message is about."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# ----------------------------------------------------------------------------------------------- shared
class ModelConfig(Strict):
    """SmolLM3 architecture (names follow transformers' SmolLM3Config)."""

    architecture: Literal["smollm3"] = "smollm3"
    hidden_size: Pos
    intermediate_size: Pos
    num_hidden_layers: Pos
    num_attention_heads: Pos
    num_key_value_heads: Pos
    vocab_size: Pos
    max_position_embeddings: Pos
    rope_theta: PosFloat
    no_rope_layer_interval: Pos  # RoPE is skipped in layer i iff (i + 1) % interval == 0
    rms_norm_eps: PosFloat
    tie_word_embeddings: bool
    hidden_act: Literal["silu"]
    attention_bias: bool  # must be false: SmolLM3 has no attention biases, and this model builds none
    init_std: PosFloat
    use_doc_masking: bool
    attn_implementation: Literal["flash_attention_2", "llama3_ring_attention", "sdpa"]
    dtype: Literal["bfloat16", "float32"]

    @model_validator(mode="after")
    def _shapes(self):
        if self.attention_bias:
            raise InvariantError("model.attention_bias", "SmolLM3 has no attention biases and this repository's "
                                 "model builds none: set false (got true)")
        if self.hidden_size % self.num_attention_heads:
            raise InvariantError("model.hidden_size", f"must be divisible by model.num_attention_heads "
                                 f"({self.num_attention_heads}) (got {self.hidden_size})")
        if self.num_attention_heads % self.num_key_value_heads:
            raise InvariantError("model.num_key_value_heads", f"must divide model.num_attention_heads "
                                 f"({self.num_attention_heads}) (got {self.num_key_value_heads})")
        if self.num_hidden_layers % self.no_rope_layer_interval:
            raise InvariantError("model.num_hidden_layers", f"must be divisible by model.no_rope_layer_interval "
                                 f"({self.no_rope_layer_interval}) (got {self.num_hidden_layers})")
        return self

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


class Tokenizer(Strict):
    name_or_path: str  # a Hub id (cluster runs) or a local folder
    kind: Literal["hub", "local", "build"] = "hub"  # build: trained by `make data` into runs/<recipe>/data/tokenizer
    revision: Optional[str] = None  # of a Hub tokenizer (a branch, tag or commit); None: main
    build_vocab_size: Optional[Pos] = None
    bos_token_id: Optional[NonNeg] = None  # None: read from the tokenizer folder
    eos_token_id: Optional[NonNeg] = None
    pad_token_id: Optional[NonNeg] = None

    @model_validator(mode="after")
    def _revision(self):
        if self.revision is not None and self.kind != "hub":
            raise InvariantError("tokenizer.revision", f"applies to a Hub tokenizer (kind hub) only: set null for a "
                                 f"{self.kind} tokenizer (got {self.revision})")
        return self


class ChatFormat(Strict):
    """The dual-mode chat template's recipe values (posttrain/chat_template.py fills them in)."""

    think_instructions: str  # the custom instructions of a /think conversation without its own
    no_think_instructions: str  # the same for /no_think
    # the date in every header ("Today Date: ..."); None: strftime_now("%d %B %Y") when the conversation is
    # rendered (as the authors' runs did), so the tokens change from day to day
    today_date: Optional[str] = None


class Cluster(Strict):
    gpus_per_node: Pos
    gpu: str
    peak_tflops: PosFloat  # dense bf16 peak of one GPU, for the planner
    gpu_memory_gb: PosFloat
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None  # sbatch --constraint (node features)
    time_limit: str = "72:00:00"
    cpus_per_task: Pos = 96
    # further #SBATCH lines, e.g. "--mail-type=FAIL": one option each, on one line
    sbatch_extra: list[Annotated[str, Field(pattern=r"^--[A-Za-z][^\n\r]*$")]] = []


RunName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class Common(Strict):
    name: RunName  # recipe name; run outputs go to runs/<name>/<stage>/
    run_name: Optional[RunName] = None  # a separate run directory runs/<run_name>/ (data stays under <name>)
    stage: str  # the stage's file name (set by the loader)
    description: str = ""  # recorded in the manifest
    seed: int
    model: ModelConfig
    tokenizer: Tokenizer
    cluster: Cluster
    chat: Optional[ChatFormat] = None  # read by the stages that render the smollm3 chat template
    _stage_file: str = PrivateAttr(default="")  # set by the loader: the stage file as the user named it
    _origins: dict = PrivateAttr(default_factory=dict)  # set by the loader: dotted field -> file that set it

    @property
    def run(self) -> str:
        """The run directory's name under runs/: `run_name`, default the recipe name. The data stage always
        writes under the recipe name: its output is shared by every run of the recipe."""
        return self.name if getattr(self, "kind", None) == "data" else (self.run_name or self.name)

    def file_of(self, field: str = "") -> str:
        """The recipe file that set `field` (or an enclosing mapping): where a user fixes it. Overrides and
        fields no file sets are reported against the stage file."""
        parts = field.split(".") if field else []
        for n in range(len(parts), 0, -1):
            source = self._origins.get(".".join(parts[:n]))
            if source is not None:
                return self._stage_file if source == "<override>" else source
        return self._stage_file or f"recipes/{self.name}/{self.stage}.yaml"


class Init(Strict):
    """The model a stage starts from instead of the previous stage's output: a local Hugging Face folder or a
    Hub id (with a revision), e.g. HuggingFaceTB/SmolLM3-3B-checkpoints@it-mid-training."""

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True, serialize_by_alias=True)
    from_: str = Field(alias="from")
    revision: Optional[str] = None


# ------------------------------------------------------------------------------------------------- data
class Executor(Strict):
    kind: Literal["local", "slurm"]
    tasks: Pos
    workers: Pos
    time: str = "20:00:00"


class Filters(Strict):
    min_chars: NonNeg
    max_chars: Optional[Pos] = None
    exact_dedup: bool


class DataStage(Common):
    kind: Literal["data"]
    mixtures: list["Mixture"]  # named in YAML (files of mixtures/); the loader attaches the mixtures
    executor: Executor
    filters: Filters
    shuffle: bool
    max_tokens_per_file: Pos
    max_epochs_warning: PosFloat  # data-report warns when a stage repeats a source more often than this


# ------------------------------------------------------------------------------------ nanotron training
class Parallelism(Strict):
    dp: Pos
    tp: Pos
    pp: Pos
    cp: Pos
    tp_mode: Literal["all_reduce", "reduce_scatter"]
    tp_linear_async_communication: bool
    pp_engine: Literal["1f1b", "afab"]
    recompute_layer: bool
    zero_stage: Literal[0, 1]


class Batch(Strict):
    sequence_length: Pos
    micro_batch_size: Pos
    global_batch_tokens: Pos  # gradient accumulation is derived from it


class Optimizer(Strict):
    name: Literal["adamw"]
    lr: PosFloat
    beta1: Annotated[float, Field(ge=0, lt=1)]
    beta2: Annotated[float, Field(ge=0, lt=1)]
    eps: PosFloat
    weight_decay: NonNegFloat
    weight_decay_exclude: list[str]  # regexes of parameter names without weight decay
    clip_grad: PosFloat
    accumulate_grad_in_fp32: bool


class LRSchedule(Strict):
    warmup_steps: NonNeg
    warmup_style: Literal["linear", "constant"]
    decay_style: Literal["linear", "cosine", "1-sqrt"]
    # step at which decay starts: an integer, or the name of a stage of this run (its start step)
    decay_start: Union[int, str]
    decay_steps: Optional[Pos] = None  # default: until the end of the run
    min_lr: NonNegFloat


class Steps(Strict):
    train_steps: Pos  # last step of the run (nanotron `tokens.train_steps`)
    stage_starts: dict[str, Pos]  # stage name -> first step; a stage ends where the next one starts


class Checkpoints(Strict):
    interval: Pos
    load_optimizer: bool
    load_lr_scheduler: bool
    keep_last: Optional[Pos] = None


class StageData(Strict):
    mixture: "Mixture"  # named in YAML (`mixture: stage1`, a file of mixtures/); the loader attaches the mixture
    seed: int


class LightevalExport(Strict):
    eval_interval: Pos  # steps between evaluated checkpoints: a multiple of checkpoints.interval


class NanotronExport(Strict):
    """Values only `make export-nanotron` writes (the authors' nanotron config); this repository's runs ignore them."""

    lighteval: Optional[LightevalExport] = None  # the authors' in-training evaluation block; None: `lighteval: null`


class NanotronStage(Common):
    kind: Literal["pretrain", "longctx"]
    init_from: Optional[str] = None  # stage whose last checkpoint initializes this run (None: from scratch)
    init: Optional[Init] = None  # an HF model to start from instead (converted to nanotron; a new run)
    parallelism: Parallelism
    batch: Batch
    optimizer: Optimizer
    lr_schedule: LRSchedule
    steps: Steps
    checkpoints: Checkpoints
    data: StageData
    log_interval: Pos = 1
    report_to: list[Literal["tensorboard"]] = []  # also per-step losses in <stage>/tensorboard/ (needs tensorboard)
    # YaRN factor written into the stage's hf/ config, for inference beyond the trained length (the model card
    # runs SmolLM3 at 128k with factor 2 over 65,536); the checkpoints are not affected. None: plain RoPE.
    hf_yarn_factor: Optional[Annotated[float, Field(gt=1)]] = None
    export: NanotronExport = NanotronExport()  # `make export-nanotron` only (pretrain/export_nanotron.py)

    @model_validator(mode="after")
    def _invariants(self):
        m, p, b = self.model, self.parallelism, self.batch
        if m.num_attention_heads % p.tp:
            raise InvariantError("parallelism.tp", f"must divide model.num_attention_heads "
                                 f"({m.num_attention_heads}) (got {p.tp})")
        if m.num_key_value_heads % p.tp:
            raise InvariantError("parallelism.tp", f"must divide model.num_key_value_heads "
                                 f"({m.num_key_value_heads}) (got {p.tp})")
        if p.pp > m.num_hidden_layers:
            raise InvariantError("parallelism.pp", f"must be <= model.num_hidden_layers "
                                 f"({m.num_hidden_layers}) (got {p.pp})")
        if b.sequence_length > m.max_position_embeddings:
            raise InvariantError("batch.sequence_length", f"must be <= model.max_position_embeddings "
                                 f"({m.max_position_embeddings}) (got {b.sequence_length})")
        if b.sequence_length % p.cp:
            raise InvariantError("parallelism.cp", f"must divide batch.sequence_length "
                                 f"({b.sequence_length}) (got {p.cp})")
        per_pass = p.dp * b.micro_batch_size * b.sequence_length
        if b.global_batch_tokens % per_pass:
            raise InvariantError("batch.global_batch_tokens", f"must be divisible by dp x micro_batch_size x "
                                 f"sequence_length ({p.dp} x {b.micro_batch_size} x {b.sequence_length} = "
                                 f"{per_pass}) (got {b.global_batch_tokens})")
        starts = list(self.steps.stage_starts.items())
        if not starts or starts[0][1] != 1:
            raise InvariantError("steps.stage_starts", "the first stage must start at step 1 "
                                 f"(got {dict(starts)})")
        for (prev, a), (name, s) in zip(starts, starts[1:]):
            if s <= a:
                raise InvariantError(f"steps.stage_starts.{name}", f"must be > the start of {prev} ({a}): "
                                     f"stage start steps must be strictly increasing (got {s})")
        if starts[-1][1] > self.steps.train_steps:
            raise InvariantError(f"steps.stage_starts.{starts[-1][0]}", "must be <= steps.train_steps "
                                 f"({self.steps.train_steps}) (got {starts[-1][1]})")
        if self.stage not in self.steps.stage_starts:
            raise InvariantError("steps.stage_starts", f"must list this stage '{self.stage}' "
                                 f"(got {list(self.steps.stage_starts)})")
        ds = self.lr_schedule.decay_start
        if isinstance(ds, str) and ds not in self.steps.stage_starts:
            raise InvariantError("lr_schedule.decay_start", f"must be a step or a stage of steps.stage_starts "
                                 f"{list(self.steps.stage_starts)} (got {ds!r})")
        if isinstance(ds, int) and ds < 0:
            raise InvariantError("lr_schedule.decay_start", f"must be >= 0 (got {ds})")
        return self


# ------------------------------------------------------------------------------------------ TRL stages
class HubDataset(Strict):
    dataset: str  # Hub id, a local folder, builtin:<name> (posttrain/builtin_chats.py) or stage:<stage>
    config: Optional[str] = None
    split: str
    weight: Fraction  # fraction of the split's examples kept (alignment-handbook semantics)
    columns: list[str]
    mode: Optional[Literal["think", "no_think"]] = None


class Resources(Strict):
    nodes: Pos
    gpus_per_node: Optional[Pos] = None  # default: cluster.gpus_per_node


class TrlStage(Common):
    kind: Literal["midtrain", "sft", "apo"]
    init_from: str  # the pipeline stage whose hf/ folder this stage starts from
    init: Optional[Init] = None  # an HF folder or Hub id to start from instead of init_from's output
    chat_template: str  # 'chatml', 'smollm3' (dual mode) or 'inherit' (the template saved with init_from)
    eos_token: Optional[str] = None
    datasets: list[HubDataset] = Field(min_length=1)
    dataset_seed: int
    lr: PosFloat
    lr_scheduler_type: Literal["cosine_with_min_lr", "cosine", "linear", "constant"]
    min_lr_rate: NonNegFloat
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)]
    num_train_epochs: PosFloat
    max_steps: Optional[Pos] = None  # caps training (tiny recipe); None: epochs decide
    max_length: Pos
    per_device_train_batch_size: Pos
    global_batch_size: Pos  # gradient accumulation is derived from it
    max_grad_norm: PosFloat
    gradient_checkpointing: bool
    use_liger_kernel: bool
    bf16: bool
    packing: bool = False
    packing_strategy: Optional[Literal["bfd", "wrapped"]] = None
    padding_free: bool = False
    assistant_only_loss: bool = False
    loss_type: Optional[Literal["apo_zero", "sigmoid"]] = None
    beta: Optional[PosFloat] = None
    save_strategy: Literal["steps", "epoch", "no"]
    save_steps: Optional[PosFloat] = None
    save_total_limit: Optional[Pos] = None
    report_to: list[Literal["tensorboard", "wandb"]] = []  # transformers' integrations; losses.jsonl always
    # TrainingArguments the authors set (alignment-handbook recipes/smollm3); None: transformers' default
    ddp_timeout: Optional[Pos] = None  # seconds before a collective times out (transformers: 1800)
    dataset_num_proc: Optional[Pos] = None  # processes that tokenize and pack the datasets (None: one)
    gradient_checkpointing_use_reentrant: Optional[bool] = None  # gradient_checkpointing_kwargs.use_reentrant
    average_tokens_across_devices: Optional[bool] = None  # the loss normalised by the tokens of all ranks
    resources: Resources

    @model_validator(mode="after")
    def _invariants(self):
        gpn = self.resources.gpus_per_node or self.cluster.gpus_per_node
        per_pass = self.resources.nodes * gpn * self.per_device_train_batch_size
        if self.global_batch_size % per_pass:
            raise InvariantError("global_batch_size", f"must be divisible by nodes x gpus_per_node x "
                                 f"per_device_train_batch_size ({per_pass}) (got {self.global_batch_size})")
        if self.kind == "apo" and (self.loss_type is None or self.beta is None):
            raise InvariantError("loss_type", "an apo stage needs loss_type and beta")
        if self.kind == "apo" and self.padding_free:  # trl DPOTrainer.__init__: warns, then pads anyway
            raise InvariantError("padding_free", "TRL 1.16's DPOTrainer ignores it (it pads every pair to the longest "
                                 "of its batch): set false, and plan memory for padded pairs (got true)")
        if self.kind != "apo" and (self.loss_type is not None or self.beta is not None):
            key = "loss_type" if self.loss_type is not None else "beta"
            raise InvariantError(key, f"applies to an apo stage only (got {getattr(self, key)})")
        if self.max_length > self.model.max_position_embeddings * 4:
            raise InvariantError("max_length", f"must be <= 4 x model.max_position_embeddings "
                                 f"({self.model.max_position_embeddings}, YaRN x2 leaves headroom) "
                                 f"(got {self.max_length})")
        return self


class Sampling(Strict):
    temperature: NonNegFloat  # 0: greedy
    top_p: Fraction
    max_new_tokens: Pos


def _one_gpu_unless_vllm(stage) -> None:
    if stage.tensor_parallel_size > 1 and stage.backend != "vllm":
        raise InvariantError("tensor_parallel_size", f"applies to backend vllm (got {stage.tensor_parallel_size} with "
                                                     f"backend {stage.backend}): set 1")


class SynthStage(Common):
    """Think-mode conversations generated by a teacher for the SFT mixture (`make synth`)."""

    kind: Literal["synth"]
    teacher_from: Optional[str] = None  # a pipeline stage whose hf/ folder is the teacher (tiny recipe)
    teacher: Optional[Init] = None  # an HF folder or Hub id (published: Qwen/Qwen3-32B)
    prompts: list[HubDataset] = Field(min_length=1)  # the first user turn of each conversation is the prompt
    dataset_seed: int
    test_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.0  # prompts (by id hash) held out: the test split
    mode: Literal["think", "no_think"]
    sampling: Sampling
    batch_size: Pos
    backend: Literal["transformers", "vllm"]
    tensor_parallel_size: Pos = 1  # GPUs per model (vLLM backend): a 32B teacher does not fit one GPU's KV cache

    @model_validator(mode="after")
    def _teacher(self):
        if (self.teacher is None) == (self.teacher_from is None):
            raise InvariantError("teacher", "set exactly one of teacher (a model) and teacher_from (a stage) "
                                            f"(got teacher {self.teacher}, teacher_from {self.teacher_from})")
        _one_gpu_unless_vllm(self)
        return self


class PrefsStage(Common):
    """Preference pairs for APO (`make prefs`): in the recipe's mode, a strong model's answer (chosen) and a
    weak model's (rejected) to each prompt, plus the pairs of existing preference datasets."""

    kind: Literal["prefs"]
    strong_from: Optional[str] = None  # a pipeline stage whose hf/ folder answers for `chosen` (tiny recipe)
    strong: Optional[Init] = None  # an HF folder or Hub id (published: Qwen/Qwen3-32B)
    weak_from: Optional[str] = None
    weak: Optional[Init] = None  # published: Qwen/Qwen3-0.6B
    prompts: list[HubDataset] = []  # the first user turn of each conversation is the prompt
    pairs: list[HubDataset] = []  # datasets that already hold prompt / chosen / rejected (Tulu 3 mixture)
    dataset_seed: int
    test_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.0  # pairs (by prompt id hash) held out: the test split
    mode: Literal["think", "no_think"]  # of the generated pairs; a `pairs` dataset has its own `mode`
    sampling: Sampling
    batch_size: Pos
    backend: Literal["transformers", "vllm"]
    tensor_parallel_size: Pos = 1  # GPUs per model (vLLM backend)
    max_length: Pos  # a pair whose rendered prompt + longer answer exceeds it is dropped (counted in the log)

    @model_validator(mode="after")
    def _models(self):
        _one_gpu_unless_vllm(self)
        if not self.prompts and not self.pairs:
            raise InvariantError("prompts", "set prompts (generated pairs), pairs (existing ones) or both (got none)")
        if self.prompts:
            for role in ("strong", "weak"):
                if (getattr(self, role) is None) == (getattr(self, f"{role}_from") is None):
                    raise InvariantError(role, f"set exactly one of {role} (a model) and {role}_from (a stage) "
                                               f"(got {role} {getattr(self, role)}, {role}_from "
                                               f"{getattr(self, role + '_from')})")
        return self


# ---------------------------------------------------------------------------------------- merge / eval
class BlendInput(Strict):
    model: str  # 'soup' or a pipeline stage name
    weight: PosFloat


class MergeStage(Common):
    kind: Literal["merge"]
    soup_from: str  # stage whose checkpoints go into the uniform soup
    # which of its kept checkpoints (their steps); empty: all of them (the blog: "each APO checkpoint")
    soup_steps: list[Pos] = []
    soup_method: Literal["linear"]
    soup_normalize: bool
    blend: list[BlendInput] = Field(min_length=1)
    blend_method: Literal["linear"]
    dtype: Literal["bfloat16", "float32"]

    @model_validator(mode="after")
    def _blend(self):
        if [b.model for b in self.blend].count("soup") != 1:
            raise InvariantError("blend", f"must name the soup exactly once (got {[b.model for b in self.blend]})")
        names = [b.model for b in self.blend]
        if len(set(names)) != len(names):
            raise InvariantError("blend", f"names a model twice (got {names})")
        return self


class EvalStage(Common):
    kind: Literal["eval"]
    backend: Literal["vllm", "transformers"]
    base_suite: str  # for pretraining / long-context checkpoints
    instruct_suite: str  # for post-trained checkpoints
    system_prompts: list[str]  # e.g. ['/think', '/no_think'] for instruct models
    context_lengths: list[Pos]  # passkey / RULER lengths
    # lengths of context_lengths scored on a YaRN view of each checkpoint (rope_scaling yarn, yarn_factor over
    # the length it was trained at), on the checkpoints YaRN stretches that far; the others run as trained
    yarn_factor: Optional[Annotated[float, Field(gt=1)]] = None
    yarn_lengths: list[Pos] = []
    max_samples: Optional[Pos] = None
    # sampling of the instruct-suite jobs, over the suite's own (eval/suites/published.yaml: the authors'
    # temperature 0.6, top_p 0.95, 32,768 new tokens); None: the suite's. Base suites are scored greedily.
    temperature: Optional[NonNegFloat] = None
    top_p: Optional[Fraction] = None
    max_new_tokens: Optional[Pos] = None
    # evaluations run at once, each in a process of its own with cores / parallel_jobs torch threads: on a CPU
    # machine one per core (lighteval's per-item work is single-threaded Python); 1 on a GPU, in-process
    parallel_jobs: Pos = 1

    @model_validator(mode="after")
    def _yarn(self):
        if bool(self.yarn_lengths) != (self.yarn_factor is not None):
            key = "yarn_factor" if self.yarn_factor is None else "yarn_lengths"
            raise InvariantError(key, f"yarn_factor and yarn_lengths go together (got yarn_factor "
                                      f"{self.yarn_factor}, yarn_lengths {self.yarn_lengths})")
        extra = sorted(set(self.yarn_lengths) - set(self.context_lengths))
        if extra:
            raise InvariantError("yarn_lengths", f"must be lengths of context_lengths {self.context_lengths} "
                                                 f"(got {extra})")
        return self




# --------------------------------------------------------------------------------------------- mixtures
class Source(Strict):
    name: str
    category: Literal["web", "multilingual", "code", "math", "reasoning"]
    weight: PosFloat  # sampling probability (normalized over the mixture, as nanotron does)
    dataset: Optional[str] = None  # Hub dataset id (None: not published)
    subset: Optional[str] = None
    split: str = "train"
    text_key: str = "text"
    verified: bool = True  # False: mapping to `dataset` inferred, not named by the upstream config
    upstream_folder: Optional[str] = None
    path: Optional[str] = None  # a local folder of jsonl / parquet files (must exist)
    builtin: Optional[str] = None  # a corpus this repository generates (tiny recipe)
    license: Optional[str] = None


class Mixture(Strict):
    name: str  # the file's name: mixtures/<name>.yaml
    upstream_stage_name: Optional[str] = None
    description: str = ""
    sources: list[Source] = Field(min_length=1)
    _file: str = PrivateAttr(default="")  # set by the loader: the mixture file, for error messages

    @model_validator(mode="after")
    def _unique(self):
        seen = set()
        for i, s in enumerate(self.sources):
            if s.name in seen:
                raise InvariantError(f"sources.{i}.name", f"duplicate source name (got {s.name!r})")
            seen.add(s.name)
        return self


StageRecipe = Annotated[Union[DataStage, NanotronStage, TrlStage, SynthStage, PrefsStage, MergeStage, EvalStage],
                        Field(discriminator="kind")]
StageData.model_rebuild()
DataStage.model_rebuild()
