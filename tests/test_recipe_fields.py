"""recipes/README.md lists every field of a nanotron stage with what applies it or why it is refused."""
import re
import typing

from conftest import REPO
from pydantic import BaseModel

from recipes.schema import NanotronStage


def schema_fields(model=NanotronStage, prefix=""):
    """Dotted leaf fields of the schema, in declaration order (a mixture counts as one field)."""
    out = []
    for name, f in model.model_fields.items():
        sub = next((c for c in (f.annotation, *typing.get_args(f.annotation))
                    if isinstance(c, type) and issubclass(c, BaseModel)), None)
        name = f.alias or name  # `init.from` (the attribute is from_)
        if sub is not None and name != "mixture":
            out += schema_fields(sub, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


def table_fields(order):
    """Fields named in the first column: `a.b`, `c` (same prefix as the previous one), `x` ... `y` (a range)."""
    text = (REPO / "recipes" / "README.md").read_text()
    named = []
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        tokens, prefix, previous = re.findall(r"`([^`]+)`|(\.\.\.)", first), "", None
        pending_range = False
        for name, dots in tokens:
            if dots:
                pending_range = True
                continue
            full = name if "." in name or not prefix else f"{prefix}.{name}"
            prefix = full.rsplit(".", 1)[0] if "." in full else ""
            if pending_range and previous in order and full in order:
                named += order[order.index(previous) + 1:order.index(full)]
                pending_range = False
            named.append(full)
            previous = full
    return named


def test_every_nanotron_stage_field_is_in_the_table_once():
    order = schema_fields()
    named = table_fields(order)
    assert sorted(set(order) - set(named)) == [], "fields missing from recipes/README.md"
    assert sorted(set(named) - set(order)) == [], "rows naming no schema field"
    assert len(named) == len(set(named)), "a field listed twice"
