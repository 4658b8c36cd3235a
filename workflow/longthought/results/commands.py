"""`longthought report`."""

from __future__ import annotations

import argparse

from longthought.cli import spec_arg


def register(sub: argparse._SubParsersAction) -> None:
    """Add `report`."""
    p = sub.add_parser("report", help="aggregate a run into DuckDB and write the report")
    p.add_argument("--spec", type=spec_arg, default={})
    p.add_argument("--db", required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--generations", nargs="*", default=[])
    p.add_argument("--funnels", nargs="*", default=[])
    p.add_argument("--models", nargs="*", default=[])
    p.add_argument("--generalization", nargs="*", default=[])
    p.add_argument("--tti-cards", nargs="*", default=[])
    p.add_argument("--rubric", default=None, help="TTI rubric YAML (default: the shipped one)")
    p.set_defaults(func=_run)

    w = sub.add_parser("write-config", help="record the resolved config of a run")
    w.add_argument("--spec", type=spec_arg, required=True, help="the whole config as JSON")
    w.add_argument("--out", required=True)
    w.set_defaults(func=_write_config)


def _write_config(a: argparse.Namespace) -> int:
    """Record the config the run resolved (defaults + overlays), as the run's own evidence."""
    import yaml

    from longthought import io

    header = "# The resolved config of this run (config.yaml + overlays), written by the workflow\n"
    io.write_text(a.out, header + yaml.safe_dump(a.spec, sort_keys=False))
    return 0


def _run(a: argparse.Namespace) -> int:
    from longthought.results.build import build_report
    from longthought.transparency.rubric import DEFAULT_RUBRIC

    build_report(a.spec, a.db, a.summary, a.generations, a.funnels, a.models,
                 a.generalization, a.tti_cards, a.rubric or str(DEFAULT_RUBRIC))
    return 0
