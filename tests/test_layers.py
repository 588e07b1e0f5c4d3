"""The layers of ARCHITECTURE.md, enforced from the imports of every module (AST, lazy imports included):

  recipes/  (describes)  <-  rundir/  (run directories)  <-  stage packages (do)  <-  pipeline/ (orders)

A lower layer never imports a higher one, and no stage package reads a recipe file itself: it gets a
resolved recipe (mixtures attached) and uses only the loader's entry points and error type."""
import ast
from pathlib import Path

import pytest
from conftest import REPO

STAGE_PACKAGES = ("pretrain", "midtrain", "posttrain", "merge", "eval")
# package -> the first-party packages it may import (besides itself)
ALLOWED = {"recipes": set(), "rundir": {"recipes"}, "pipeline": {"recipes", "rundir", *STAGE_PACKAGES},
           **{p: {"recipes", "rundir", *STAGE_PACKAGES} for p in STAGE_PACKAGES}}
FIRST_PARTY = set(ALLOWED)
# What a stage package may take from the loader: resolve a stage or a recipe, and report bad input.
LOADER_API = {"RecipeError", "display", "load_stage", "load_recipe"}


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in a file, at any depth (imports inside functions too)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module, [a.name for a in node.names]))
    return out


def violations(root: Path) -> list[str]:
    """Every import that runs against the layers, as `file:line: message`."""
    found = []
    for package, allowed in ALLOWED.items():
        for f in sorted((root / package).rglob("*.py")) if (root / package).is_dir() else []:
            rel = f.relative_to(root)
            for line, module, names in imports(f):
                top = module.split(".")[0]
                if top in FIRST_PARTY and top != package and top not in allowed:
                    found.append(f"{rel}:{line}: {package} must not import {module}")
                if package in STAGE_PACKAGES and module == "recipes.loader":
                    extra = sorted(set(names) - LOADER_API)
                    if extra:
                        found.append(f"{rel}:{line}: a stage package reads recipes only through the loader's "
                                     f"entry points, not {', '.join(extra)}")
    return found


def test_no_module_imports_against_the_layers():
    assert violations(REPO) == []


@pytest.mark.parametrize("package, source, expected", [
    ("recipes", "from pretrain.data import stage\n", "recipes must not import pretrain.data"),
    ("recipes", "def f():\n    import pipeline.stages\n", "recipes must not import pipeline.stages"),
    ("rundir", "from eval.stage import run\n", "rundir must not import eval.stage"),
    ("pretrain", "from pipeline.launch import launch\n", "pretrain must not import pipeline.launch"),
    ("eval", "import pipeline\n", "eval must not import pipeline"),
    ("pretrain", "from recipes.loader import load_mixture\n", "not load_mixture"),
])
def test_the_rule_catches_an_import_against_the_layers(tmp_path, package, source, expected):
    (tmp_path / package).mkdir()
    (tmp_path / package / "bad.py").write_text(source)
    found = violations(tmp_path)
    assert len(found) == 1 and found[0].startswith(f"{package}/bad.py:") and expected in found[0], found


def test_every_package_of_the_repository_is_in_a_layer():
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert packages <= FIRST_PARTY | {"tests"}, packages - FIRST_PARTY


def test_only_the_loader_knows_where_a_recipe_lives():
    """Stages get resolved recipes: the recipe directory is the loader's business alone."""
    needle = "recipe" + "_dir"  # spelled apart so that this file does not match itself
    hits = [f"{f.relative_to(REPO)}" for f in REPO.rglob("*") if f.is_file() and f.suffix in (".py", ".md", ".yaml")
            and ".venv" not in f.parts and "runs" not in f.parts and needle in f.read_text()
            and f != REPO / "recipes" / "loader.py"]
    assert hits == []
