"""Config validation messages a person can act on: the key's full path, then what is wrong."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml


def config_errors(config: dict, schema_path: str | Path) -> list[str]:
    """Every schema violation in `config`, as 'pools.arith: ...' lines (empty if valid)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    lines = []
    for err in errors:
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        lines.append(f"{key}: {err.message}")
    return lines


def check_config(config: dict, schema_path: str | Path) -> None:
    """Raise ValueError listing every violation, before any job starts."""
    lines = config_errors(config, schema_path)
    if lines:
        raise ValueError("config does not match config/schema.yaml:\n  " + "\n  ".join(lines))
