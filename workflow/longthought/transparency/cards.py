"""TTI scorecards: one YAML file per project answering every rubric item yes or no.

A card answers each item with `answer: yes|no`, `evidence` (URL, file path or quote; required for
yes), a `note`, and `inferred: true|false` (true when the item choice is ours, not the source's).
A card may carry `published` subtotals (e.g. the paper's Table 4); validation then checks that the
card reproduces them. Every error names the card file and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from longthought.io import read_yaml, write_text
from longthought.transparency.rubric import TTI_DATA, Rubric

DEFAULT_CARDS_DIR = TTI_DATA / "projects"  # the paper's Table 4 efforts, shipped as package data
SELF_SOURCE = "longthought tti self"  # the `source` of a card a run wrote about itself
_CARD_KEYS = {"project", "url", "description", "source", "published", "answers"}
_ANSWER_KEYS = {"answer", "evidence", "note", "inferred"}


@dataclass(frozen=True)
class Answer:
    item: str
    yes: bool
    evidence: tuple[str, ...] = ()
    note: str = ""
    inferred: bool = False


@dataclass
class Card:
    project: str
    rubric: Rubric
    answers: dict[str, Answer]  # item id -> answer, in rubric order
    url: str = ""
    description: str = ""
    source: str = ""
    published: dict[str, int] = field(default_factory=dict)  # dimension|total -> points
    path: str = ""

    def earned(self, item_id: str) -> int:
        return self.rubric.item(item_id).points if self.answers[item_id].yes else 0

    def subtotals(self) -> dict[str, int]:
        """Points earned per dimension (rubric order) plus 'total'."""
        out = {d.id: sum(self.earned(it.id) for it in self.rubric.items_of(d.id))
               for d in self.rubric.dimensions}
        out["total"] = sum(out.values())
        return out


def _answer_value(value: Any) -> bool | None:
    """YAML 1.1 reads a bare yes/no as a bool; accept that and the strings 'yes'/'no'."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "no"):
        return value.strip().lower() == "yes"
    return None


def _evidence(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value.strip(),) if value.strip() else ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    return None


def parse_card(data: Any, rubric: Rubric, source: str = "card") -> Card:
    """Validate a card mapping against `rubric`; one ValueError lists every problem found."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: must be a mapping with 'project' and 'answers'")
    errors: list[str] = []
    unknown = sorted(set(data) - _CARD_KEYS)
    if unknown:
        errors.append(f"{source}: unknown key(s) {unknown} (allowed: {sorted(_CARD_KEYS)})")
    project = data.get("project")
    if not isinstance(project, str) or not project.strip():
        errors.append(f"{source}: project: missing or empty")
    for key in ("url", "description", "source"):
        if data.get(key) is not None and not isinstance(data[key], str):
            errors.append(f"{source}: {key}: must be a string")
    raw = data.get("answers")
    if not isinstance(raw, dict):
        errors.append(f"{source}: answers: missing, or not a mapping of item id -> answer")
        raw = {}

    answers: dict[str, Answer] = {}
    for item in rubric.items:
        where = f"{source}: answers.{item.id}"
        if item.id not in raw:
            errors.append(f"{where}: missing (every rubric item must be answered)")
            continue
        a = raw[item.id]
        if not isinstance(a, dict):
            errors.append(f"{where}: must be a mapping with answer, evidence, note, inferred")
            continue
        bad = sorted(set(a) - _ANSWER_KEYS)
        if bad:
            errors.append(f"{where}: unknown key(s) {bad} (allowed: {sorted(_ANSWER_KEYS)})")
        yes = _answer_value(a.get("answer"))
        if yes is None:
            errors.append(f"{where}.answer: must be yes or no (got {a.get('answer')!r})")
            continue
        evidence = _evidence(a.get("evidence"))
        if evidence is None:
            errors.append(f"{where}.evidence: must be a string or a list of strings")
            continue
        if yes and not evidence:
            errors.append(f"{where}.evidence: a yes needs evidence (a URL, file path or quote)")
        note = a.get("note") or ""
        if not isinstance(note, str):
            errors.append(f"{where}.note: must be a string")
            note = str(note)
        inferred = a.get("inferred", False)
        if not isinstance(inferred, bool):
            errors.append(f"{where}.inferred: must be true or false (got {inferred!r})")
            inferred = bool(inferred)
        answers[item.id] = Answer(item.id, yes, evidence, note.strip(), inferred)
    for extra in raw:
        if extra not in answers and extra not in rubric.item_ids:
            errors.append(f"{source}: answers.{extra}: unknown item "
                          f"(not in {rubric.path or 'the rubric'})")

    published = data.get("published") or {}
    if not isinstance(published, dict):
        errors.append(f"{source}: published: must be a mapping of dimension -> points")
        published = {}
    allowed = set(rubric.dimension_ids) | {"total"}
    for key, value in published.items():
        if key not in allowed:
            errors.append(f"{source}: published.{key}: unknown dimension "
                          f"(allowed: {sorted(allowed)})")
        elif isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{source}: published.{key}: must be an integer (got {value!r})")
    if errors:
        raise ValueError("\n".join(errors))

    card = Card(
        project=project.strip(),
        rubric=rubric,
        answers=answers,
        url=data.get("url") or "",
        description=(data.get("description") or "").strip(),
        source=data.get("source") or "",
        published=dict(published),
        path=source,
    )
    got = card.subtotals()
    mismatch = [f"{source}: published.{k}: the card earns {got[k]} but the published score is {v}"
                for k, v in published.items() if got[k] != v]
    if mismatch:
        raise ValueError("\n".join(mismatch))
    return card


def load_card(path: str | os.PathLike[str], rubric: Rubric) -> Card:
    """Load and validate one scorecard YAML."""
    return parse_card(read_yaml(path, "scorecard"), rubric, str(path))


def card_paths(paths: list[str] | None = None) -> list[Path]:
    """The given card files (directories expand to their *.yaml), default: the shipped cards."""
    out: list[Path] = []
    for p in [Path(x) for x in (paths or [str(DEFAULT_CARDS_DIR)])]:
        if p.is_dir():
            out.extend(sorted(p.glob("*.yaml")))
        else:
            out.append(p)
    return out


def load_cards(paths: list[str] | None, rubric: Rubric) -> list[Card]:
    """Load every card; one ValueError lists the problems of all invalid cards together."""
    cards, errors = [], []
    for p in card_paths(paths):
        try:
            cards.append(load_card(p, rubric))
        except (ValueError, FileNotFoundError) as exc:
            errors.append(str(exc))
    if errors:
        raise ValueError("\n".join(errors))
    names = [c.project for c in cards]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"project name(s) used by more than one card: {dups}")
    return cards


class _YesNo(str):
    """An answer that YAML writes as a bare yes/no (the rubric's wording) and reads back as bool."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _YesNo, lambda d, v: d.represent_scalar("tag:yaml.org,2002:bool", str(v))
)


def card_to_dict(card: Card) -> dict[str, Any]:
    out: dict[str, Any] = {"project": card.project}
    for key in ("url", "description", "source"):
        if getattr(card, key):
            out[key] = getattr(card, key)
    if card.published:
        out["published"] = dict(card.published)
    out["answers"] = {
        a.item: {
            "answer": _YesNo("yes" if a.yes else "no"),
            "evidence": list(a.evidence) if len(a.evidence) != 1 else a.evidence[0],
            "note": a.note,
            "inferred": a.inferred,
        }
        for a in card.answers.values()
    }
    return out


def card_to_yaml(card: Card, header: str = "") -> str:
    body = yaml.dump(card_to_dict(card), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     width=100)
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return lines + body


def write_card(card: Card, path: str | os.PathLike[str], header: str = "") -> None:
    """Write a card atomically; it round-trips through `load_card`."""
    write_text(path, card_to_yaml(card, header))
