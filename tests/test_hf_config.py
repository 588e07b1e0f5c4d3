"""Hugging Face folders any reader understands: config.json carries transformers 5's `rope_parameters` and, with
the same values, transformers 4.x's top-level `rope_theta` / `rope_scaling` (what vLLM on a cluster with
transformers 4.x reads), for a converted folder, a `--yarn-factor 2` export and a YaRN view (smollm3/hf_config.py).
transformers 5 loads every such folder exactly as it loads the folder without the 4.x keys."""

import json
import shutil

import pytest
import torch

from pretrain import convert
from smollm3.hf_config import SmolLM3Config, write_hf_config, yarn_view

THETA, TRAINED = 50000.0, 32  # a theta that is not SmolLM3's default (2e6 in transformers 4.x and 5)
# transformers 4.x SmolLM3Config(rope_theta=2000000.0, rope_scaling=None, ...) (v4.53.0,
# src/transformers/models/smollm3/configuration_smollm3.py) keeps both as attributes, copies a 'type' key to
# 'rope_type' and runs rope_config_validation, whose YaRN keys are these (others are warned about and ignored).
V4_DEFAULT_THETA = 2000000.0
V4_YARN_KEYS = {"rope_type", "factor", "attention_factor", "beta_fast", "beta_slow",
                "original_max_position_embeddings", "mscale", "mscale_all_dim"}


def read_like_transformers_4(folder):
    """(RoPE parameters under transformers 5's names, max positions) as a transformers 4.x reader gets them: the
    top-level rope_theta (4.x's SmolLM3 default when absent) and rope_scaling (None: plain RoPE), never
    `rope_parameters`, which 4.x does not know."""
    cfg = json.loads((folder / "config.json").read_text())
    theta, scaling = cfg.get("rope_theta", V4_DEFAULT_THETA), cfg.get("rope_scaling")
    if scaling is None:
        return {"rope_type": "default", "rope_theta": theta}, cfg["max_position_embeddings"]
    scaling = dict(scaling)
    if "type" in scaling:
        scaling["rope_type"] = scaling.pop("type")
    assert scaling["rope_type"] != "yarn" or set(scaling) <= V4_YARN_KEYS, scaling
    return {**scaling, "rope_theta": theta}, cfg["max_position_embeddings"]


def read_like_transformers_5(folder):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    return dict(config.rope_parameters), config.max_position_embeddings


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny HF SmolLM3 -> nanotron -> HF (plain), -> HF with --yarn-factor 2, and a YaRN view of the plain one."""
    from transformers import SmolLM3Config as HFConfig
    from transformers import SmolLM3ForCausalLM

    root = tmp_path_factory.mktemp("hfconfig")
    cfg = SmolLM3Config(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                        num_key_value_heads=2, vocab_size=256, max_position_embeddings=TRAINED, rope_theta=THETA,
                        bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    SmolLM3ForCausalLM(HFConfig(**cfg.to_hf_dict())).save_pretrained(root / "start")
    convert.convert(root / "start", root / "nt", to_nanotron=True)
    return {"plain": convert.convert(root / "nt", root / "plain"),
            "yarn": convert.convert(root / "nt", root / "yarn", yarn_factor=2.0),
            "view": yarn_view(root / "plain", 2.0, root / "view")}


EXPECTED = {"plain": ({"rope_type": "default", "rope_theta": THETA}, TRAINED),
            "yarn": ({"rope_type": "yarn", "rope_theta": THETA, "factor": 2.0,
                      "original_max_position_embeddings": TRAINED}, 2 * TRAINED)}
EXPECTED["view"] = EXPECTED["yarn"]


@pytest.mark.parametrize("name", ["plain", "yarn", "view"])
def test_transformers_4_and_5_read_the_same_rope(folders, name):
    v4, v5 = read_like_transformers_4(folders[name]), read_like_transformers_5(folders[name])
    assert v4 == v5 == EXPECTED[name]
    raw = json.loads((folders[name] / "config.json").read_text())
    assert raw["rope_scaling"] == (None if name == "plain" else
                                   {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": TRAINED})


@pytest.mark.parametrize("name", ["plain", "yarn", "view"])
def test_transformers_5_loads_the_folder_as_without_the_4x_keys(folders, name, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    bare = tmp_path / "bare"
    shutil.copytree(folders[name], bare)
    cfg = json.loads((bare / "config.json").read_text())
    del cfg["rope_theta"], cfg["rope_scaling"]
    (bare / "config.json").write_text(json.dumps(cfg))
    loaded, without = (AutoConfig.from_pretrained(f).to_dict() for f in (folders[name], bare))
    assert loaded.pop("_name_or_path") != without.pop("_name_or_path") and loaded == without
    rotary = AutoModelForCausalLM.from_pretrained(folders[name]).model.rotary_emb
    assert rotary.rope_type == EXPECTED[name][0]["rope_type"] and rotary.max_seq_len_cached == EXPECTED[name][1]


def test_a_transformers_4_file_gets_rope_parameters_and_keeps_its_values(tmp_path):
    """A config.json written by transformers 4.x (top-level keys only, YaRN under the old 'type' name) is read as
    such by SmolLM3Config.from_hf (refused: YaRN is inference-only) and completed by write_hf_config."""
    cfg = {"model_type": "smollm3", "max_position_embeddings": 2 * TRAINED, "rope_theta": THETA,
           "rope_scaling": {"type": "yarn", "factor": 2.0, "original_max_position_embeddings": TRAINED}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="only default RoPE"):
        SmolLM3Config.from_hf(cfg)
    write_hf_config(tmp_path, {"eos_token_id": 7})
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["rope_parameters"] == EXPECTED["yarn"][0] and written["eos_token_id"] == 7
    assert read_like_transformers_4(tmp_path) == EXPECTED["yarn"]


def test_a_trl_stage_folder_has_the_end_of_turn_as_eos(tmp_path):
    """posttrain.trl_stage.save_hf (every TRL stage's hf/): config.json's eos_token_id is the tokenizer's eos,
    <|im_end|>, as alignment-handbook's scripts/sft.py sets model.config.eos_token_id, even when the model came
    with the pretraining eos; the RoPE is written both ways."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from posttrain.trl_stage import save_hf
    from tests.eval_fixtures import make_tiny_model

    source = make_tiny_model(tmp_path / "in", chat=True, eos_token_id=0)  # <|endoftext|>, the pretraining eos
    tok, model = AutoTokenizer.from_pretrained(source), AutoModelForCausalLM.from_pretrained(source)
    trainer = Trainer(model=model, args=TrainingArguments(output_dir=str(tmp_path / "run"), report_to=[]))
    save_hf(trainer, tok, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    generation = json.loads((tmp_path / "hf" / "generation_config.json").read_text())
    assert config["eos_token_id"] == generation["eos_token_id"] == tok.convert_tokens_to_ids("<|im_end|>") != 0
    assert read_like_transformers_4(tmp_path / "hf") == read_like_transformers_5(tmp_path / "hf")
