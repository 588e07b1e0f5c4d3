"""Tiny random-init SmolLM3 model + local BPE tokenizer for the eval tests (no Hub access).

Usage: from tests.eval_fixtures import make_tiny_model; make_tiny_model(tmp_path / "tiny")
"""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["<|endoftext|>", "<|pad|>"]


def _corpus():
    from pydoc_data.topics import topics

    for key in sorted(topics):
        yield topics[key]


CHAT_SPECIALS = ["<|im_start|>", "<|im_end|>", "<think>", "</think>"]


def make_tiny_tokenizer(out_dir: Path, vocab_size: int = 2048, chat: bool = False):
    """A small byte-level BPE trained on local text; `chat`: with the chat and think tokens, `<|im_end|>` as eos
    and the tiny recipe's smollm3 chat template (posttrain/chat_template.py)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS + (CHAT_SPECIALS if chat else []),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>" if chat else "<|endoftext|>",
        pad_token="<|pad|>",
        model_max_length=2048,
    )
    if chat:
        from posttrain.chat_template import write_template

        fast.chat_template = write_template(Path(__file__).resolve().parent.parent / "recipes" / "tiny")
    fast.save_pretrained(out_dir)
    return fast


def make_tiny_model(out_dir: Path, seed: int = 0, chat: bool = False, **config_overrides) -> Path:
    """Write a random-init SmolLM3ForCausalLM (hidden 64, 4 layers) with its tokenizer to out_dir (`chat`: the
    chat tokenizer of make_tiny_tokenizer); `config_overrides` change the SmolLM3Config."""
    import torch
    from transformers import SmolLM3Config, SmolLM3ForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = make_tiny_tokenizer(out_dir, chat=chat)
    config = SmolLM3Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        no_rope_layer_interval=4,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    for key, value in config_overrides.items():
        setattr(config, key, value)
    torch.manual_seed(seed)
    model = SmolLM3ForCausalLM(config)
    model.save_pretrained(out_dir)
    return out_dir


if __name__ == "__main__":
    import sys

    print(make_tiny_model(Path(sys.argv[1])))
