"""Talk to a post-trained model in either mode; print the chat template a recipe trains with.

Usage: python -m posttrain chat MODEL [--think | --no-think] "prompt"     one answer, then exit
       python -m posttrain chat MODEL --no-think                           a prompt per line from stdin
       python -m posttrain template RECIPE [--out FILE] [key=value ...]    RECIPE: a recipe folder (its sft
                                                                           stage) or a stage file

MODEL is an HF folder (e.g. runs/tiny/sft/hf) or a Hub id. The conversation is rendered by the model's own
chat template with `enable_thinking`; the think block (if any) is printed apart from the final answer.
Defaults: greedy decoding; `--temperature 0.6 --top-p 0.95` are the published sampling settings.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m posttrain", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    chat = sub.add_parser("chat", help="answer a prompt in think or no-think mode")
    chat.add_argument("model")
    mode = chat.add_mutually_exclusive_group()
    mode.add_argument("--think", dest="think", action="store_true", default=True)
    mode.add_argument("--no-think", dest="think", action="store_false")
    chat.add_argument("prompt", nargs="?", help="omit to read one prompt per line from stdin")
    chat.add_argument("--max-new-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float, default=0.0)
    chat.add_argument("--top-p", type=float, default=1.0)
    chat.add_argument("--seed", type=int, default=0)
    template = sub.add_parser("template", help="the exact chat template a recipe trains with")
    template.add_argument("recipe", help="a recipe folder (its sft stage) or a TRL stage file")
    template.add_argument("overrides", nargs="*", help="key=value overrides of the recipe")
    template.add_argument("--out", help="write it to this file (default: print it)")
    args, extra = ap.parse_known_args(argv)  # the prompt may follow --think / --no-think
    if args.command == "template":
        return write_template(ap, args, extra)
    if any(x.startswith("-") for x in extra) or (extra and args.prompt is not None):
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.prompt = " ".join(extra)
    local = Path(args.model)
    if (local.exists() or args.model.startswith((".", "/"))) and not (local / "config.json").is_file():
        print(f"{args.model}: not a Hugging Face model folder (no config.json)", file=sys.stderr)
        return 2
    from posttrain.generate import Sampling, load, render, split_think, transformers_batch

    lm, tok = load(args.model)
    sampling = Sampling(args.temperature, args.top_p, args.max_new_tokens, args.seed)
    prompts = [args.prompt] if args.prompt is not None else (line.strip() for line in sys.stdin)
    for i, prompt in enumerate(p for p in prompts if p):
        text = render(tok, [{"role": "user", "content": prompt}], {"enable_thinking": args.think})
        [answer] = transformers_batch(lm, tok, [text], sampling, i)
        think, final = split_think(answer)
        if think is not None:
            print(f"[think]\n{think}\n[/think]")
        print(f"[answer]\n{final}", flush=True)
    return 0


def write_template(ap, args, extra) -> int:
    from posttrain.chat_template import write_template as write
    from recipes.loader import RecipeError

    if extra:
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        text = write(args.recipe, args.out, args.overrides)
    except RecipeError as e:
        print(e, file=sys.stderr)
        return 2
    if not args.out:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
