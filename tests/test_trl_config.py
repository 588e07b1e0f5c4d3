"""posttrain: the recipe -> TRL config table against the published mid-training values, the dataset
mixture's alignment-handbook semantics, and the tiny recipe's local conversations."""
import json

import pytest
from conftest import REPO

from recipes.loader import RecipeError, load_stage


def test_the_published_mid_training_values_reach_trl():
    """alignment-handbook recipes/smollm3/sft/mid.yaml (8 nodes x 8 GPUs, GBS 128), as TRL arguments."""
    from posttrain.trl_config import trl_kwargs

    kw = trl_kwargs(load_stage(REPO / "recipes/smollm3-3b/midtrain.yaml"), cuda=True, output_dir="out")
    expected = {"learning_rate": 2e-5, "lr_scheduler_type": "cosine_with_min_lr",
                "lr_scheduler_kwargs": {"min_lr_rate": 0.1}, "warmup_steps": 0.03, "num_train_epochs": 5,
                "max_length": 32768, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 2,
                "max_grad_norm": 0.2, "activation_checkpointing": True, "bf16": True, "packing": True,
                "eos_token": "<|im_end|>", "save_strategy": "steps", "save_steps": 0.05, "save_total_limit": 1,
                "seed": 42, "use_cpu": False}
    assert {k: kw[k] for k in expected} == expected
    assert kw["packing_strategy"] == "bfd"  # the configs' TRL 0.19 default `ffd`, which TRL 1.16 renamed


def test_a_cpu_run_is_an_fp32_trl_config_that_trl_accepts():
    from trl import SFTConfig

    from posttrain.trl_config import trl_config

    c = trl_config(load_stage(REPO / "recipes/tiny/midtrain.yaml"), cuda=False, output_dir="out")
    assert isinstance(c, SFTConfig) and c.use_cpu and not c.bf16
    assert c.get_warmup_steps(100) == 3 and c.max_steps == 20 and c.gradient_accumulation_steps == 2
    with pytest.raises(RecipeError, match="bf16: needs a CUDA GPU"):
        trl_config(load_stage(REPO / "recipes/tiny/midtrain.yaml", ["bf16=true"]), cuda=False, output_dir="out")


def test_report_to_reaches_trl_and_a_missing_integration_is_refused():
    """The recipe's report_to becomes TrainingArguments.report_to ([] -> "none"); wandb is not installed here,
    so naming it is refused with the file and field, not dropped."""
    import importlib.util

    from posttrain.trl_config import trl_config

    tiny = REPO / "recipes/tiny/midtrain.yaml"
    assert trl_config(load_stage(tiny), cuda=False, output_dir="out").report_to == ["tensorboard"]
    assert trl_config(load_stage(tiny, ["report_to=[]"]), cuda=False, output_dir="out").report_to == []
    assert importlib.util.find_spec("wandb") is None
    with pytest.raises(RecipeError, match=r"report_to: wandb is not installed"):
        trl_config(load_stage(tiny, ["report_to=[wandb]"]), cuda=False, output_dir="out")


def test_apo_gets_a_dpo_config_with_apo_zero():
    from trl import DPOConfig

    from posttrain.trl_config import trl_config

    c = trl_config(load_stage(REPO / "recipes/tiny/apo.yaml"), cuda=False, output_dir="out")
    assert isinstance(c, DPOConfig) and c.loss_type in ("apo_zero", ["apo_zero"])
    assert c.beta == 0.05


def test_the_mixture_keeps_a_fraction_of_each_dataset_shuffled_with_the_seed(tmp_path):
    """alignment-handbook: shuffle(seed).select(range(int(len * weight))) per dataset, then concatenate and
    shuffle; the weight is the fraction of examples kept."""
    from posttrain.mixture import mixture

    for name, n in (("a", 100), ("b", 30)):
        (tmp_path / name).mkdir()
        rows = [{"messages": [{"role": "user", "content": f"{name}{i}"}], "extra": i} for i in range(n)]
        (tmp_path / name / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    datasets = (f"datasets=[{{dataset: {tmp_path / 'a'}, split: train, weight: 0.25, columns: [messages]}}, "
                f"{{dataset: {tmp_path / 'b'}, split: train, weight: 1.0, columns: [messages], mode: think}}]")
    r = load_stage(REPO / "recipes/tiny/midtrain.yaml", [datasets])
    mix = mixture(r)
    firsts = [m[0]["content"] for m in mix["messages"]]
    assert len(mix) == 25 + 30 and sum(f.startswith("a") for f in firsts) == 25
    assert set(mix.column_names) == {"messages", "chat_template_kwargs"}
    kwargs = {f[0]: k for f, k in zip(firsts, mix["chat_template_kwargs"])}
    unset = {"custom_instructions": None, "python_tools": None, "xml_tools": None}
    assert kwargs["b"] == {**unset, "enable_thinking": True} and kwargs["a"] == {**unset, "enable_thinking": None}
    assert [m[0]["content"] for m in mixture(r)["messages"]] == firsts  # the same seed: the same mixture
    other = mixture(load_stage(REPO / "recipes/tiny/midtrain.yaml", [datasets, "dataset_seed=1"]))
    assert [m[0]["content"] for m in other["messages"]] != firsts
    with pytest.raises(RecipeError, match="datasets.0.columns: .* has no column answer"):
        mixture(load_stage(REPO / "recipes/tiny/midtrain.yaml", [datasets.replace("[messages]}", "[answer]}", 1)]))


def test_the_tiny_reasoning_chats_think_then_answer_and_hold_out_their_test_problems():
    from posttrain.mixture import mixture

    r = load_stage(REPO / "recipes/tiny/midtrain.yaml")
    train, test = mixture(r), mixture(r, split="test")
    assert (len(train), len(test)) == (400, 60)
    for conv in train["messages"][:50]:
        user, assistant = conv
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert assistant["content"].startswith("<think>\n") and "\n</think>\nAnswer: " in assistant["content"]
    prompts = {c[0]["content"] for c in train["messages"]}
    assert not prompts & {c[0]["content"] for c in test["messages"]}


def test_the_sft_mixture_keeps_each_splits_fraction_and_applies_its_mode_and_the_date():
    """Per split: int(len * weight) examples; each example's chat_template_kwargs carry its split's mode
    (enable_thinking) and its own tools (the calculator conversations); the date is in the template, not the data."""
    from posttrain.builtin_chats import dataset
    from posttrain.mixture import mixture

    datasets = ("datasets=[{dataset: 'builtin:chats-no-think', split: train, weight: 0.5, mode: no_think, "
                "columns: [messages]}, {dataset: 'builtin:tool-chats', split: train, weight: 0.25, mode: no_think, "
                "columns: [messages, chat_template_kwargs]}, {dataset: 'builtin:reasoning-chats', split: train, "
                "weight: 0.1, mode: think, columns: [messages]}]")
    mix = mixture(load_stage(REPO / "recipes/tiny/sft.yaml", [datasets]))
    sizes = [len(dataset(n, "train")) for n in ("chats-no-think", "tool-chats", "reasoning-chats")]

    def source(messages):
        if any(m["role"] == "tool" for m in messages):
            return 1
        return 2 if messages[-1]["content"].startswith("<think>") else 0

    counts, modes = [0, 0, 0], [set(), set(), set()]
    for messages, kw in zip(mix["messages"], mix["chat_template_kwargs"]):
        s = source(messages)
        counts[s] += 1
        modes[s].add(kw["enable_thinking"])
        assert "today_date" not in kw
        assert (kw["xml_tools"] is not None) == (s == 1)
    assert counts == [int(sizes[0] * 0.5), int(sizes[1] * 0.25), int(sizes[2] * 0.1)]
    assert modes == [{False}, {False}, {True}]
    with pytest.raises(RecipeError, match="template_date: unknown key"):
        load_stage(REPO / "recipes/tiny/sft.yaml", ["template_date='01 July 2025'"])


UPSTREAM = REPO / "tests/upstream/alignment-handbook"  # huggingface/alignment-handbook @925acdf, recipes/smollm3/
# The authors' keys this repository sets elsewhere or not at all, each with its reason; every other key of their
# three YAMLs must reach TRL with their value.
NOT_TRL_ARGS = {
    "model_name_or_path": "init_from / init.from (the pipeline's previous stage, or the same Hub id by override)",
    "model_revision": "init.revision",
    "torch_dtype": "model.dtype -> from_pretrained (model_kwargs, checked below)",
    "attn_implementation": "model.attn_implementation -> from_pretrained (model_kwargs, checked below)",
    "trust_remote_code": "transformers has SmolLM3 itself: no remote code is run",
    "dataset_mixture": "datasets (posttrain/mixture.py, tests/test_trl_config.py mixture tests)",
    "chat_template": "chat_template: smollm3, rendered from the recipe (tests/test_chat_template.py)",
    "output_dir": "runs/<run>/<stage>/checkpoints",
    "run_name": "the recipe's run name",
    "hub_model_id": "no Hub push from the pipeline", "hub_strategy": "no Hub push", "push_to_hub": "no Hub push",
    "do_eval": "the stage scores its held-out slice itself before and after training",
    "eval_strategy": "the same", "per_device_eval_batch_size": "the same",
    "log_level": "the stage prints its own progress", "logging_strategy": "logging_steps 1: every step's loss",
    "overwrite_output_dir": "removed in transformers 5; a stage resumes or refuses (rundir.resume)",
    "report_to": "wandb there; report_to here (tensorboard by default, wandb accepted)",
    "gradient_accumulation_steps": "derived from global_batch_size (compared below)",
    "warmup_ratio": "warmup_steps (transformers 5 takes the ratio there)",
    "gradient_checkpointing": "activation_checkpointing (transformers 5 name)",
    "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs (transformers 5 name)",
    "packing_strategy": "ffd in TRL 0.19 is bfd since TRL 0.20",
    "padding_free": "APO: TRL 1.16's DPOTrainer ignores it and pads (recipes/smollm3-3b/apo.yaml)",
    "save_total_limit": "APO: null, to keep every checkpoint the merge averages (recipes/smollm3-3b/apo.yaml)",
}
RENAMED = {"warmup_ratio": "warmup_steps", "gradient_checkpointing": "activation_checkpointing",
           "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs"}


@pytest.mark.parametrize("stage, upstream", [("midtrain", "mid.yaml"), ("sft", "sft.yaml"), ("apo", "apo.yaml")])
def test_every_trl_argument_of_the_authors_yaml_reaches_trl(stage, upstream):
    """The TRL arguments built from recipes/smollm3-3b equal the authors' alignment-handbook YAML key by key."""
    import torch
    import yaml

    from posttrain.trl_config import model_kwargs, trl_kwargs

    theirs = yaml.safe_load((UPSTREAM / upstream).read_text())
    r = load_stage(REPO / f"recipes/smollm3-3b/{stage}.yaml")
    ours = trl_kwargs(r, cuda=True, output_dir="out")
    checked = []
    for key, value in theirs.items():
        if key in RENAMED:
            assert ours[RENAMED[key]] == value, key
        elif key == "packing_strategy":
            assert (value, ours[key]) == ("ffd", "bfd")
        elif key == "padding_free" and stage == "apo":
            assert value is True and "padding_free" not in ours or ours["padding_free"] is False
        elif key == "save_total_limit" and stage == "apo":
            assert value == 1 and "save_total_limit" not in ours
        elif key == "gradient_accumulation_steps":
            assert ours[key] == value
        elif key == "max_steps":
            assert value == ours[key] == -1
        elif key in NOT_TRL_ARGS:
            continue
        else:
            assert key in ours and ours[key] == value, (key, value, ours.get(key))
        checked.append(key)
    assert len(checked) >= 20, checked
    assert theirs["torch_dtype"] == "bfloat16" and theirs["attn_implementation"] == "flash_attention_2"
    assert r.model.dtype == "bfloat16" and r.model.attn_implementation == "flash_attention_2"
    from trl import DPOConfig, SFTConfig

    fields = set((DPOConfig if stage == "apo" else SFTConfig).__dataclass_fields__)
    assert set(ours) <= fields, set(ours) - fields  # every argument is one TRL 1.16 takes
    with pytest.raises(RecipeError, match="model.attn_implementation: flash_attention_2 needs a CUDA GPU"):
        model_kwargs(r, cuda=False)
    tiny = model_kwargs(load_stage(REPO / f"recipes/tiny/{stage}.yaml"), cuda=False)
    assert tiny == {"dtype": torch.float32, "attn_implementation": "sdpa"}


def test_use_reentrant_without_gradient_checkpointing_is_refused():
    from posttrain.trl_config import trl_kwargs

    # the tiny recipe does not checkpoint activations
    r = load_stage(REPO / "recipes/tiny/sft.yaml", ["gradient_checkpointing_use_reentrant=true"])
    with pytest.raises(RecipeError, match="gradient_checkpointing_use_reentrant: applies with gradient_checkpointing"):
        trl_kwargs(r, cuda=False, output_dir="out")
