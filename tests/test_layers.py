"""The layers of ARCHITECTURE.md, enforced from the imports of every module (AST, lazy imports included):

  recipes/ (describes) <- rundir/ (run directories) <- smollm3/ (model core) <- stage packages (do) <- pipeline/

A lower layer never imports a higher one, no stage package reads a recipe file itself (it gets a resolved
recipe, mixtures attached, and uses only the loader's entry points and error type), and there is no import
cycle: neither between packages nor between modules."""
import ast
from pathlib import Path

import pytest
from conftest import REPO

STAGE_PACKAGES = ("pretrain", "midtrain", "posttrain", "merge", "eval")
# package -> the first-party packages it may import (besides itself)
ALLOWED = {"recipes": set(), "rundir": {"recipes"}, "smollm3": {"recipes", "rundir"},
           "pipeline": {"recipes", "rundir", "smollm3", *STAGE_PACKAGES},
           **{p: {"recipes", "rundir", "smollm3", *STAGE_PACKAGES} for p in STAGE_PACKAGES}}
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


def import_graph(root: Path) -> dict[str, set[str]]:
    """{module: the first-party modules it imports} (a `from package import name` counts for package.name
    when that is a module)."""
    files = {}
    for package in ALLOWED:
        for f in sorted((root / package).rglob("*.py")) if (root / package).is_dir() else []:
            name = ".".join(f.relative_to(root).with_suffix("").parts)
            files[name.removesuffix(".__init__")] = f
    graph = {}
    for name, f in files.items():
        targets = set()
        for _, module, names in imports(f):
            targets |= {t for t in [module] + [f"{module}.{n}" for n in names] if t in files}
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v), on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out = {}
    for module, targets in graph.items():
        out.setdefault(module.split(".")[0], set()).update(t.split(".")[0] for t in targets)
    return {p: t - {p} for p, t in out.items()}


def test_no_import_cycle_between_packages_or_modules():
    graph = import_graph(REPO)
    assert cycles(package_graph(graph)) == []
    assert cycles(graph) == []


def test_the_cycle_rule_catches_a_package_cycle_and_a_module_cycle(tmp_path):
    for package, source in (("eval", "from pretrain import convert\n"), ("pretrain", "def f():\n    import eval\n"),
                            ("pipeline", "")):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(source)
    (tmp_path / "pretrain" / "convert.py").write_text("")
    (tmp_path / "pipeline" / "a.py").write_text("from pipeline import b\n")
    (tmp_path / "pipeline" / "b.py").write_text("def f():\n    from pipeline.a import x\n")
    graph = import_graph(tmp_path)
    assert cycles(package_graph(graph)) == [["eval", "pretrain"]]
    assert sorted(cycles(graph)) == [["eval", "pretrain"], ["pipeline.a", "pipeline.b"]]


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
