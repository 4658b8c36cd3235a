"""The TTI rubric as data: dimensions, yes/no items and their points, loaded from YAML.

The rubric is validated on load (item points add up to each dimension, dimensions to the total of
100, ids unique) so a scorecard can never be scored against a rubric that does not add up. Every
error names the file and the key that is wrong.

The rubric and the published scorecards are package data (`longthought/transparency/tti/`), so
`longthought tti ...` works from any directory; `config/tti` in the repository is a link to them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from longthought.io import read_yaml

# a real directory for any regular install (wheel or editable); the package is never zipped
TTI_DATA = Path(str(resources.files("longthought.transparency").joinpath("tti")))
DEFAULT_RUBRIC = TTI_DATA / "rubric.yaml"
TOTAL_POINTS = 100
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Dimension:
    id: str
    title: str
    points: int
    description: str


@dataclass(frozen=True)
class Item:
    id: str
    dimension: str
    points: int
    description: str
    evidence: str  # what counts as evidence for a yes


@dataclass(frozen=True)
class Rubric:
    name: str
    source: str
    total: int
    rule: str
    dimensions: tuple[Dimension, ...]  # in the rubric's order
    items: tuple[Item, ...]  # in the rubric's order
    path: str = ""

    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    def items_of(self, dimension: str) -> list[Item]:
        return [it for it in self.items if it.dimension == dimension]

    @property
    def item_ids(self) -> list[str]:
        return [it.id for it in self.items]

    @property
    def dimension_ids(self) -> list[str]:
        return [d.id for d in self.dimensions]


def _need(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise ValueError(f"{where}.{key}: missing")
    value = obj[key]
    # bool is an int subclass; a YAML `yes` must not pass as a point count
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{where}.{key}: must be an integer (got {value!r})")
    if not isinstance(value, kind):
        raise ValueError(f"{where}.{key}: must be a {getattr(kind, '__name__', kind)} "
                         f"(got {value!r})")
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"{where}.{key}: must not be empty")
    return value


def _only(obj: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} (allowed: {sorted(allowed)})")


def parse_rubric(data: Any, source: str = "rubric") -> Rubric:
    """Validate a rubric mapping (as loaded from YAML); errors name `source` and the key."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: must be a mapping with 'dimensions' and 'items'")
    _only(data, {"name", "source", "total", "rule", "dimensions", "items"}, source)
    total = _need(data, "total", int, source)
    if total != TOTAL_POINTS:
        raise ValueError(f"{source}: total: the TTI has {TOTAL_POINTS} points (got {total})")

    dims_raw = _need(data, "dimensions", dict, source)
    if not dims_raw:
        raise ValueError(f"{source}: dimensions: must not be empty")
    dims = []
    for did, d in dims_raw.items():
        where = f"{source}: dimensions.{did}"
        if not isinstance(did, str) or not _ID.match(did):
            raise ValueError(f"{where}: id must match {_ID.pattern}")
        if not isinstance(d, dict):
            raise ValueError(f"{where}: must be a mapping with title, points, description")
        _only(d, {"title", "points", "description"}, where)
        points = _need(d, "points", int, where)
        if points <= 0:
            raise ValueError(f"{where}.points: must be positive (got {points})")
        dims.append(Dimension(did, _need(d, "title", str, where), points,
                              str(d.get("description", ""))))

    items_raw = _need(data, "items", list, source)
    items: list[Item] = []
    seen: dict[str, int] = {}
    for i, it in enumerate(items_raw):
        where = f"{source}: items[{i}]"
        if not isinstance(it, dict):
            raise ValueError(f"{where}: must be a mapping")
        _only(it, {"id", "dimension", "points", "description", "evidence"}, where)
        iid = _need(it, "id", str, where)
        where = f"{source}: items[{i}] ({iid})"
        if not _ID.match(iid):
            raise ValueError(f"{where}.id: must match {_ID.pattern}")
        if iid in seen:
            raise ValueError(f"{where}.id: duplicate id {iid!r} (first at items[{seen[iid]}])")
        seen[iid] = i
        dim = _need(it, "dimension", str, where)
        if dim not in dims_raw:
            raise ValueError(f"{where}.dimension: unknown dimension {dim!r} "
                             f"(known: {', '.join(dims_raw)})")
        points = _need(it, "points", int, where)
        if points <= 0:
            raise ValueError(f"{where}.points: must be positive (got {points})")
        items.append(Item(iid, dim, points, _need(it, "description", str, where),
                          _need(it, "evidence", str, where)))

    for d in dims:
        got = sum(it.points for it in items if it.dimension == d.id)
        if got != d.points:
            raise ValueError(f"{source}: dimensions.{d.id}.points: is {d.points} but its items "
                             f"add up to {got}")
    dim_sum = sum(d.points for d in dims)
    if dim_sum != total:
        raise ValueError(f"{source}: total: is {total} but the dimensions add up to {dim_sum}")
    return Rubric(
        name=str(data.get("name", "TTI")),
        source=str(data.get("source", "")),
        total=total,
        rule=str(data.get("rule", "")),
        dimensions=tuple(dims),
        items=tuple(items),
        path=source,
    )


def load_rubric(path: str | os.PathLike[str] = DEFAULT_RUBRIC) -> Rubric:
    """Load and validate the rubric YAML at `path`."""
    return parse_rubric(read_yaml(path, "TTI rubric"), str(path))
