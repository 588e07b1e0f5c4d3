"""The tokenizer a data stage uses: a Hub id (smollm3-3b: meta-llama/Llama-3.2-1B), a local folder, or a
small byte-level BPE trained here on the recipe's own local corpora (tokenizer.kind == "build", tiny).

The built tokenizer is a Hugging Face folder (PreTrainedTokenizerFast.save_pretrained: tokenizer.json,
tokenizer_config.json with bos / eos / pad) holding the special tokens the later stages need (chat turns,
thinking, tool calls). Its vocabulary size must equal model.vocab_size, or the stage stops (exit 2).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterable

from recipes.loader import RecipeError, display
from rundir import runs_root

BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"
CHAT_TOKENS = ["<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>", "</tool_call>"]
SPECIAL_TOKENS = [BOS, EOS, PAD] + CHAT_TOKENS
HUB_EOS = "<|end_of_text|>"  # Llama 3 (id 128001): what separates documents in the published recipe
BUILD_VERSION = 1
BUILD_SPEC_FILE = "build_spec.json"


def tokenizer_dir(recipe) -> Path:
    """Where a built / local tokenizer lives. A `runs/...` path follows SMOLLM3_RUNS like every stage does."""
    p = Path(recipe.tokenizer.name_or_path)
    if recipe.tokenizer.kind == "build" and not p.is_absolute() and p.parts and p.parts[0] == "runs":
        return runs_root().joinpath(*p.parts[1:])
    return p


def datatrove_name(recipe) -> str:
    """What datatrove's DocumentTokenizer is given: the path of a tokenizer.json file (a folder would be taken
    for a Hub id); a Hub tokenizer's comes from the Hub cache (hub_folder: fetched, or read offline)."""
    if recipe.tokenizer.kind == "hub":  # its revision's tokenizer.json, in the Hub cache (hub_folder)
        return str(hub_folder(recipe) / "tokenizer.json")
    p = tokenizer_dir(recipe)
    return str((p if p.is_file() else p / "tokenizer.json").resolve())


HUB_TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                       "tokenizer.model", "vocab.json", "merges.txt", "chat_template.jinja"]


def hub_folder(recipe) -> Path:
    """The local folder of a Hub tokenizer at the recipe's revision: its tokenizer files fetched into the Hub
    cache (read from it alone under HF_HUB_OFFLINE=1). What the stage's hf/ folder ships, so that the stages
    after it load the tokenizer from there."""
    from huggingface_hub import constants, snapshot_download

    t = recipe.tokenizer
    try:
        # offline, say so: huggingface_hub 1.x otherwise asks the Hub for a commit's file list (its tree cache)
        return Path(snapshot_download(t.name_or_path, revision=t.revision, allow_patterns=HUB_TOKENIZER_FILES,
                                      local_files_only=constants.HF_HUB_OFFLINE))
    except (OSError, ValueError) as e:  # not cached offline, unknown repository or revision, no network
        raise RecipeError(recipe.file_of("tokenizer.name_or_path"), "tokenizer.name_or_path",
                          f"cannot get the Hub tokenizer {t.name_or_path} at revision {t.revision or 'main'} "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def eos_token(recipe) -> str:
    """The end-of-document token: tokenizer_config.json's eos_token for a folder, Llama 3's for the Hub."""
    if recipe.tokenizer.kind == "hub":
        return HUB_EOS
    p = tokenizer_dir(recipe)
    cfg = (p.parent if p.is_file() else p) / "tokenizer_config.json"
    if cfg.is_file():
        tok = json.loads(cfg.read_text()).get("eos_token")
        if isinstance(tok, dict):
            tok = tok.get("content")
        if tok:
            return tok
    return EOS


def check_vocab(recipe, vocab_size: int, where: str):
    if vocab_size != recipe.model.vocab_size:
        raise RecipeError(where, "model.vocab_size", f"the tokenizer has {vocab_size:,} tokens, the model "
                          f"{recipe.model.vocab_size:,}: they must match "
                          f"(got tokenizer {recipe.tokenizer.name_or_path})")


def check_spec(recipe):
    """Checks that need no file (before anything is written)."""
    t = recipe.tokenizer
    if t.kind == "build":
        if t.build_vocab_size is None:
            raise RecipeError(recipe.file_of("tokenizer.build_vocab_size"), "tokenizer.build_vocab_size",
                              "required for tokenizer.kind build")
        if t.build_vocab_size != recipe.model.vocab_size:
            raise RecipeError(recipe.file_of("tokenizer.build_vocab_size"), "tokenizer.build_vocab_size",
                              f"must equal model.vocab_size ({recipe.model.vocab_size}) (got {t.build_vocab_size})")
        if t.build_vocab_size < 256 + len(SPECIAL_TOKENS) + 1:
            raise RecipeError(recipe.file_of("tokenizer.build_vocab_size"), "tokenizer.build_vocab_size",
                              f"must be > {256 + len(SPECIAL_TOKENS)} (256 bytes + special tokens)")
    if t.kind == "local":
        load_checked(recipe)


def load_checked(recipe):
    """Load the tokenizer (tokenizers.Tokenizer) and check its vocabulary against the model."""
    from tokenizers import Tokenizer

    if recipe.tokenizer.kind == "hub":
        name = recipe.tokenizer.name_or_path
        hub = datatrove_name(recipe)  # no network, gated repo, unknown revision: one line from hub_folder
        try:
            tok = Tokenizer.from_file(hub)
        except Exception as e:
            raise RecipeError(recipe.file_of("tokenizer.name_or_path"), "tokenizer.name_or_path",
                              f"cannot load {name} (revision {recipe.tokenizer.revision or 'main'}) from the Hub "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:200]})")
    else:
        name = datatrove_name(recipe)
        if not Path(name).is_file():
            raise RecipeError(recipe.file_of("tokenizer.name_or_path"), "tokenizer.name_or_path",
                              f"no tokenizer.json at {display(name)}")
        try:
            tok = Tokenizer.from_file(name)
        except Exception as e:
            raise RecipeError(display(name), "", f"not a tokenizers file ({str(e).splitlines()[0][:200]})")
    check_vocab(recipe, tok.get_vocab_size(with_added_tokens=True), display(name))
    eos = eos_token(recipe)
    if tok.token_to_id(eos) is None:
        raise RecipeError(display(name), "eos_token", f"the tokenizer has no {eos!r} token")
    want = getattr(recipe.tokenizer, "eos_token_id", None)
    if want is not None and tok.token_to_id(eos) != want:
        raise RecipeError(recipe.file_of("tokenizer.eos_token_id"), "tokenizer.eos_token_id",
                          f"the tokenizer's {eos} is id "
                          f"{tok.token_to_id(eos)} (got {want})")
    return tok


def build_spec(recipe, corpora_specs: list[dict]) -> dict:
    return {"version": BUILD_VERSION, "vocab_size": recipe.tokenizer.build_vocab_size, "special": SPECIAL_TOKENS,
            "corpora": corpora_specs}


def spec_sha(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def is_built(recipe, spec: dict) -> bool:
    f = tokenizer_dir(recipe) / BUILD_SPEC_FILE
    try:
        return json.loads(f.read_text()) == spec and (tokenizer_dir(recipe) / "tokenizer.json").is_file()
    except (OSError, ValueError):
        return False


def build(recipe, texts: Iterable[str], spec: dict) -> Path:
    """Train the byte-level BPE on `texts` (deterministic) and save it as a Hugging Face folder, atomically."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    vocab = recipe.tokenizer.build_vocab_size
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    check_vocab(recipe, tok.get_vocab_size(with_added_tokens=True),
                f"{recipe.file_of('tokenizer.build_vocab_size')}: tokenizer.build_vocab_size (the corpora are too "
                f"small for it)")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   additional_special_tokens=CHAT_TOKENS)
    out = tokenizer_dir(recipe)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fast.save_pretrained(str(tmp))
    (tmp / BUILD_SPEC_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
