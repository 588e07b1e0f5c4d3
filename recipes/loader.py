"""Load a stage recipe: YAML layers, inheritance, `key=value` overrides, strict validation.

A recipe is a directory (`recipes/smollm3-3b/`, `recipes/tiny/`) with
- `base.yaml`: model, tokenizer, cluster, seed shared by every stage; `parent: ../other-recipe` makes this
  recipe inherit everything from another one (the tiny recipe inherits from smollm3-3b);
- one YAML per stage (`pretrain-stage1.yaml`, `sft.yaml`, ...); `extends: _fragment` pulls in a shared
  fragment (files starting with `_`), e.g. the settings common to the three pretraining stages;
- `mixtures/<name>.yaml`: the data mixtures the stages name.

The layers of stage S in recipe D, merged in this order (later wins; mappings merge, lists replace):
  for each recipe from the root ancestor down to D: its base.yaml, the fragments S extends, S.yaml;
  then the command-line overrides (`key=value` for every stage, `<stage>:key=value` for one). A child recipe
  thus applies on top of its parent's resolved stage.
Every leaf remembers the file that set it, so an error names the file to fix:
`recipes/tiny/base.yaml: model.hidden_size: must be ...`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import TypeAdapter, ValidationError

from recipes.schema import InvariantError, Mixture, StageRecipe

META_KEYS = ("parent", "extends")
KINDS = ("data", "pretrain", "longctx", "midtrain", "synth", "sft", "prefs", "apo", "merge", "eval")
_STAGE_ADAPTER = TypeAdapter(StageRecipe)


class RecipeError(Exception):
    """Bad input: printed as one line `file: field: message`, exit code 2."""

    def __init__(self, file: str, field: str, message: str):
        super().__init__(f"{file}: {field}: {message}" if field else f"{file}: {message}")
        self.file, self.field, self.message = file, field, message


def display(path: Path | str) -> str:
    """A path as the user would type it: relative to the working directory, absolute when it lies outside."""
    p = Path(path)
    try:
        rel = os.path.relpath(p)
    except ValueError:
        return str(p)
    return str(p.resolve()) if rel.startswith("..") else rel


def read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise RecipeError(display(path), "", "no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise RecipeError(display(path), "", f"{where}invalid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(display(path), "", f"must be a mapping of keys (got {type(data).__name__})")
    return data


class Layers:
    """Deep-merged YAML layers with the provenance (source file) of every key."""

    def __init__(self):
        self.data: dict = {}
        self.origin: dict[tuple, str] = {}

    def add(self, data: dict, source: str, prefix: tuple = ()):
        target = self.data
        for i, k in enumerate(prefix):
            target = target.setdefault(k, {})
            if not isinstance(target, dict):
                where = ".".join(prefix[: i + 1])
                raise RecipeError(source, ".".join(prefix + tuple(data)),
                                  f"{where} is a value, not a mapping of keys (got {target!r})")
        self._merge(target, data, source, prefix)

    def _merge(self, target: dict, data: dict, source: str, prefix: tuple):
        for key, value in data.items():
            if not prefix and key in META_KEYS:
                continue
            path = prefix + (key,)
            if not (isinstance(value, dict) and isinstance(target.get(key), dict)):
                for p in [p for p in self.origin if p[: len(path)] == path]:
                    del self.origin[p]
                self.origin[path] = source
                target[key] = {} if isinstance(value, dict) else value
            if isinstance(value, dict):
                self._merge(target[key], value, source, path)

    def source_of(self, field: tuple, default: str) -> str:
        for n in range(len(field), 0, -1):
            if field[:n] in self.origin:
                return self.origin[field[:n]]
        return default


def recipe_chain(recipe_dir: Path) -> list[Path]:
    """The recipe directories from the root ancestor down to `recipe_dir`."""
    chain, seen = [], set()
    d: Optional[Path] = recipe_dir.resolve()
    while d is not None:
        if d in seen:
            raise RecipeError(display(d / "base.yaml"), "parent", "inheritance cycle")
        seen.add(d)
        if not (d / "base.yaml").is_file():
            raise RecipeError(display(d), "", "not a recipe directory (no base.yaml)")
        chain.insert(0, d)
        parent = read_yaml(d / "base.yaml").get("parent")
        if parent is not None and not isinstance(parent, str):
            raise RecipeError(display(d / "base.yaml"), "parent", f"must be a path (got {parent!r})")
        d = (d / parent).resolve() if parent else None
    return chain


def stage_extends(chain: list[Path], stage: str) -> Optional[str]:
    """The fragment a stage extends (the last `extends:` along the chain wins)."""
    extends = None
    for d in chain:
        f = d / f"{stage}.yaml"
        if f.is_file():
            value = read_yaml(f).get("extends", extends)
            if value is not None and not isinstance(value, str):
                raise RecipeError(display(f), "extends", f"must be a fragment name (got {value!r})")
            extends = value
    return extends


def stage_layers(chain: list[Path], stage: str) -> list[Path]:
    """The files of one stage in merge order: for each recipe of the chain (root first), its base.yaml, the
    fragments the stage extends, then the stage file. A child recipe thus applies on top of the fully
    resolved stage of its parent."""
    fragments, name = [], stage_extends(chain, stage)
    while name is not None:
        if name in fragments or len(fragments) > 8:
            raise RecipeError(stage, "extends", f"cycle through {name}")
        if not any((d / f"{name}.yaml").is_file() for d in chain):
            raise RecipeError(display(chain[-1] / f"{stage}.yaml"), "extends", f"no fragment {name}.yaml")
        fragments.insert(0, name)
        name = stage_extends(chain, name)
    files = []
    for d in chain:
        for n in ["base"] + fragments + [stage]:
            if (d / f"{n}.yaml").is_file():
                files.append(d / f"{n}.yaml")
    return files


def for_stage(overrides, stage: str) -> list[str]:
    """The overrides that apply to `stage`: `key.path=value` applies to every stage, `<stage>:key.path=value`
    to that stage only (`make all OVERRIDES="data:executor.kind=slurm midtrain:resources.gpus_per_node=2"`:
    a field only some stages have). A prefix that names no pipeline stage is refused."""
    from recipes.derive import PIPELINE

    out = []
    for text in overrides:
        key = text.split("=", 1)[0]
        if ":" not in key:
            out.append(text)
            continue
        prefix, rest = key.split(":", 1)
        if prefix not in PIPELINE or not rest:
            raise RecipeError("<command line>", text, f"an override for one stage looks like <stage>:key.path=value "
                                                      f"(stages: {', '.join(PIPELINE)})")
        if prefix == stage:
            out.append(text[len(prefix) + 1:])
    return out


def parse_override(text: str) -> tuple[tuple, Any]:
    if "=" not in text or text.startswith("="):
        raise RecipeError("<command line>", text, "override must look like key.path=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", value):
        value = float(value)  # YAML 1.1 reads 3e-4 as a string
    return tuple(key.strip().split(".")), value


def format_error(err: dict, layers: Layers, default_file: str, overrides: dict) -> RecipeError:
    """One pydantic error -> RecipeError naming the file that set the field."""
    loc = tuple(str(p) for p in err["loc"])
    if loc and loc[0] in KINDS:  # the discriminated union puts the stage kind first
        loc = loc[1:]
    ctx = err.get("ctx") or {}
    exc = ctx.get("error")
    got = err.get("input")
    if isinstance(exc, InvariantError):
        loc = tuple(exc.field.split("."))
        msg = exc.message
    elif err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    elif err["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
        bound = next(v for k, v in ctx.items() if k in ("gt", "ge", "lt", "le"))
        bound = int(bound) if float(bound).is_integer() else bound
        msg = f"must be {op[err['type']]} {bound} (got {got})"
    elif err["type"] == "literal_error":
        msg = f"must be one of {ctx.get('expected')} (got {got!r})"
    elif err["type"] == "too_short":
        msg = f"must not be empty (got {got!r})"
    elif err["type"] == "union_tag_invalid":
        loc = ("kind",)
        msg = f"must be one of {ctx.get('expected_tags')} (got {ctx.get('tag')!r})"
    else:
        msg = f"{err['msg'][0].lower()}{err['msg'][1:]} (got {got!r})"
    source = layers.source_of(loc, default_file)
    if loc in overrides or source == "<override>":
        key = ".".join(loc)
        return RecipeError(default_file, key, f"{msg} [from the override {key}={overrides.get(loc, '...')}]")
    if overrides:
        msg += " [with the overrides " + " ".join(f"{'.'.join(k)}={v}" for k, v in overrides.items()) + "]"
    return RecipeError(source, ".".join(loc), msg)


def validate(model, layers: Layers, default_file: str, overrides: dict):
    try:
        return model.validate_python(layers.data)
    except ValidationError as e:
        raise format_error(e.errors()[0], layers, default_file, overrides) from None


def load_stage(path: str | Path, overrides: list[str] = ()):
    """Resolve and validate one stage: `recipes/tiny/pretrain-stage1.yaml` (+ overrides).

    The result is fully resolved: the mixtures it names are attached as `Mixture` objects (their local
    paths made absolute), and it remembers which file set each field (`recipe.file_of("model.vocab_size")`),
    so stage code never reads a recipe file itself."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(display(path), "", "no such recipe file")
    stage = path.stem
    if stage == "base" or stage.startswith("_"):
        raise RecipeError(display(path), "", "is not a stage (base.yaml and _fragments are inherited by stages)")
    chain = recipe_chain(path.parent)
    layers = Layers()
    for f in stage_layers(chain, stage):
        layers.add(read_yaml(f), display(f))
    layers.add({"stage": stage}, display(path))
    parsed = {}
    for text in for_stage(overrides, stage):
        key, value = parse_override(text)
        parsed[key] = text.split("=", 1)[1]
        try:
            layers.add({key[-1]: value}, "<override>", prefix=key[:-1])
        except RecipeError as e:
            raise RecipeError(display(path), e.field, f"{e.message} [from the override {text}]") from None
    mixtures = attach_mixtures(layers, chain, display(path))
    recipe = validate(_STAGE_ADAPTER, layers, display(path), parsed)
    if recipe.kind in ("pretrain", "longctx"):
        recipe.data.mixture = mixtures[0]  # the same values, with the file they came from
    elif recipe.kind == "data":
        recipe.mixtures = mixtures
    recipe._stage_file = display(path)
    recipe._origins = {".".join(k): v for k, v in layers.origin.items()}
    check_paths(recipe, display(path))
    return recipe


def stage_names(recipe_dir: Path) -> list[str]:
    """Stages defined along the recipe chain, in pipeline order."""
    from recipes.derive import PIPELINE

    names = set()
    for d in recipe_chain(recipe_dir):
        names |= {p.stem for p in d.glob("*.yaml") if p.stem != "base" and not p.stem.startswith("_")}
    order = {s: i for i, s in enumerate(PIPELINE)}
    return sorted(names, key=lambda s: (order.get(s, len(order)), s))


def load_recipe(recipe_dir: str | Path, overrides: list[str] = ()) -> dict:
    """Every stage of a recipe directory, validated: {stage name: recipe}."""
    recipe_dir = Path(recipe_dir)
    if not recipe_dir.is_dir():
        raise RecipeError(display(recipe_dir), "", "no such recipe directory")
    recipes = {}
    for stage in stage_names(recipe_dir):
        target = recipe_dir / f"{stage}.yaml"
        if not target.is_file():  # stage defined only by the parent recipe: resolve it through this one
            target = _virtual_stage(recipe_dir, stage)
        recipes[stage] = load_stage(target, overrides)
    check_cross_stage(recipes, recipe_dir)
    return recipes


def _virtual_stage(recipe_dir: Path, stage: str) -> Path:
    raise RecipeError(display(recipe_dir), stage, f"stage {stage} is defined by the parent recipe only: "
                                                  f"add {display(recipe_dir / (stage + '.yaml'))} (it may be empty)")


def find_mixture(chain: list[Path], name: str) -> Optional[Path]:
    for d in reversed(chain):
        if (d / "mixtures" / f"{name}.yaml").is_file():
            return d / "mixtures" / f"{name}.yaml"
    return None


def load_mixture(directory: str | Path, name: str, referenced_from: str = "", field: str = "data.mixture",
                 chain: Optional[list[Path]] = None) -> Mixture:
    """Mixture `name` of a recipe directory (or of its parents), validated, its local paths made absolute."""
    chain = chain if chain is not None else recipe_chain(Path(directory))
    if not isinstance(name, str):
        raise RecipeError(referenced_from or display(chain[-1]), field,
                          f"must name a file of mixtures/ (got {name!r})")
    path = find_mixture(chain, name)
    if path is None:
        raise RecipeError(referenced_from or display(chain[-1]), field,
                          f"no mixture file mixtures/{name}.yaml in {display(chain[-1])} or its parents")
    layers = Layers()
    layers.add(read_yaml(path), display(path))
    mixture = validate(TypeAdapter(Mixture), layers, display(path), {})
    if mixture.name != name:
        raise RecipeError(display(path), "name", f"must be the file's name {name!r} (got {mixture.name!r})")
    for i, s in enumerate(mixture.sources):
        kinds = [k for k in ("dataset", "path", "builtin") if getattr(s, k)]
        if len(kinds) > 1:
            raise RecipeError(display(path), f"sources.{i}", f"give one of dataset / path / builtin (got {kinds})")
        if s.path:
            local = path.parent / s.path if (path.parent / s.path).exists() else Path(s.path)
            if not local.exists():
                raise RecipeError(display(path), f"sources.{i}.path",
                                  f"local data path does not exist (got {s.path})")
            s.path = str(local.resolve())
    mixture._file = display(path)
    return mixture


def attach_mixtures(layers: Layers, chain: list[Path], file: str) -> list[Mixture]:
    """Replace the mixture names a stage gives (`data.mixture`, a data stage's `mixtures`) by the mixtures
    themselves, so that the resolved recipe (and its hash) holds every source and weight it trains on.
    Returns the loaded mixtures (they know their file, for error messages)."""
    kind, loaded = layers.data.get("kind"), []

    def resolved(name, field):
        source = layers.source_of(tuple(field.split(".")), file)
        where = file if source == "<override>" else source
        loaded.append(load_mixture(chain[-1], name, where, field, chain))
        return loaded[-1].model_dump(mode="json")

    if kind in ("pretrain", "longctx") and isinstance(layers.data.get("data"), dict) \
            and "mixture" in layers.data["data"]:
        layers.data["data"]["mixture"] = resolved(layers.data["data"]["mixture"], "data.mixture")
    if kind == "data" and isinstance(layers.data.get("mixtures"), list):
        layers.data["mixtures"] = [resolved(n, f"mixtures.{i}") for i, n in enumerate(layers.data["mixtures"])]
    return loaded


def check_paths(recipe, file: str):
    """Local paths named by a stage must exist."""
    tok = recipe.tokenizer
    if tok.kind == "local" and not Path(tok.name_or_path).exists():
        raise RecipeError(file, "tokenizer.name_or_path", f"local data path does not exist (got {tok.name_or_path})")


def check_cross_stage(recipes: dict, recipe_dir: Path):
    """Invariants between stages: stages of one nanotron run agree on its step boundaries."""
    for name, r in recipes.items():
        if getattr(r, "kind", None) not in ("pretrain", "longctx"):
            continue
        key = tuple(r.steps.stage_starts.items()) + (r.steps.train_steps,)
        for other in r.steps.stage_starts:
            if other in recipes and other != name:
                o = recipes[other]
                if tuple(o.steps.stage_starts.items()) + (o.steps.train_steps,) != key:
                    raise RecipeError(display(recipe_dir / f"{other}.yaml"), "steps",
                                      f"must equal the steps of {name} (same run) (got {o.steps.model_dump()})")
        if r.init_from is not None and r.init_from not in recipes:
            raise RecipeError(display(recipe_dir / f"{name}.yaml"), "init_from",
                              f"no stage named {r.init_from!r} in this recipe")
