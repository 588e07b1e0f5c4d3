"""The chat template a recipe trains with: SmolLM3's dual-mode template (chat_template.jinja) with the recipe's
`chat:` values filled in (its two default instructions, its date), or plain ChatML (mid-training).

Usage: python -m posttrain template recipes/smollm3-3b [--out chat_template.jinja]
       smollm3_template(recipe.chat) -> str; template_for(recipe) -> str or None (None: keep the model's own)
"""
from __future__ import annotations

import json
from pathlib import Path

from recipes.loader import RecipeError
from rundir import write_text_atomic

SOURCE = Path(__file__).with_name("chat_template.jinja")
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
          "{% endif %}")  # plain ChatML: alignment-handbook recipes/smollm3/sft/mid.yaml @ 925acdfe4b2b
# The tokens each template writes that must be single tokens of the tokenizer it is used with.
SPECIAL_TOKENS = {"smollm3": ("<|im_start|>", "<|im_end|>", "<think>", "</think>"),
                  "chatml": ("<|im_start|>", "<|im_end|>")}


def _literal(text: str) -> str:
    """A Jinja string literal for `text` (Jinja reads JSON's escapes: \\n, \\", \\\\, \\uXXXX)."""
    return json.dumps(text, ensure_ascii=False)


def smollm3_template(chat) -> str:
    """The dual-mode template with a recipe's `chat` values (recipes.schema.ChatFormat)."""
    today = 'strftime_now("%d %B %Y")' if chat.today_date is None else _literal(chat.today_date)
    return (SOURCE.read_text()
            .replace("__THINK_INSTRUCTIONS__", _literal(chat.think_instructions))
            .replace("__NO_THINK_INSTRUCTIONS__", _literal(chat.no_think_instructions))
            .replace("__TODAY__", today))


def recipe_chat(r, key: str = "chat_template"):
    """The recipe's `chat` section, refused when a stage renders the smollm3 template without one."""
    if r.chat is None:
        raise RecipeError(r.file_of(key), "chat", "the smollm3 template needs the recipe's chat section "
                          "(think_instructions, no_think_instructions, today_date)")
    return r.chat


def template_for(r):
    """The template a TRL stage sets on its tokenizer: ChatML, the dual-mode template, or None (inherit: the
    template saved with the model it starts from)."""
    if r.chat_template == "chatml":
        return CHATML
    if r.chat_template == "smollm3":
        return smollm3_template(recipe_chat(r))
    if r.chat_template == "inherit":
        return None
    raise RecipeError(r.file_of("chat_template"), "chat_template", f"unknown template {r.chat_template!r} (chatml, "
                      "smollm3, inherit)")


def check_tokens(tokenizer, template_kind: str, where: str, key: str) -> None:
    """Refuse a tokenizer that lacks, as one token, a special token the template writes (one line, exit 2)."""
    missing = []
    for token in SPECIAL_TOKENS.get(template_kind, ()):
        ids = tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1 or tokenizer.convert_ids_to_tokens(ids[0]) != token:
            missing.append(token)
    if missing:
        raise RecipeError(where, key, f"the tokenizer lacks the {template_kind} template's special token(s) "
                          f"{', '.join(missing)} (the SmolLM3 tokenizer, e.g. HuggingFaceTB/SmolLM3-3B, has them)")


def write_template(recipe_path, out=None, overrides=()) -> str:
    """The template the recipe's SFT stage (or the named stage file) trains with; written to `out` when given."""
    from recipes.loader import load_stage

    path = Path(recipe_path)
    stage = load_stage(path / "sft.yaml" if path.is_dir() else path, overrides)
    if getattr(stage, "chat_template", "smollm3") == "smollm3":
        text = smollm3_template(recipe_chat(stage))
    else:
        text = template_for(stage)
    if text is None:
        raise RecipeError(stage.file_of("chat_template"), "chat_template", "inherit: the template is the one saved "
                          "with the model the stage starts from (name the sft stage)")
    if out:
        write_text_atomic(out, text)
    return text
