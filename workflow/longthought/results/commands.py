"""`longthought report`."""

from __future__ import annotations

import argparse

from longthought.cli import spec_arg


def register(sub: argparse._SubParsersAction) -> None:
    """Add `report`."""
    p = sub.add_parser("report", help="aggregate a run into DuckDB and write the report")
    p.add_argument("--spec", type=spec_arg, default={},
                   help='JSON: {"k": [k values of pass@k and maj@k], "report": <report config>, '
                        '"pair": [baseline, tuned] of the generalization table}')
    p.add_argument("--db", required=True, help="DuckDB database to write (replaced whole)")
    p.add_argument("--summary", required=True,
                   help="Markdown report to write; its plots (PNG) go beside it")
    p.add_argument("--generations", nargs="*", default=[],
                   help="generations tables (generations/<model>/<bench>.parquet)")
    p.add_argument("--funnels", nargs="*", default=[],
                   help="curation funnels (datasets/<dataset>.funnel.parquet)")
    p.add_argument("--models", nargs="*", default=[],
                   help="trained model directories (their hparams.json and train_log.parquet)")
    p.add_argument("--generalization", nargs="*", default=[],
                   help="generalization tables (generalization/<model>/<set>.parquet)")
    p.add_argument("--tti-cards", nargs="*", default=[],
                   help="TTI scorecards to rank (this run's own first, then published ones)")
    p.add_argument("--rubric", default="config/tti/rubric.yaml",
                   help="TTI rubric YAML (default config/tti/rubric.yaml)")
    p.set_defaults(func=_run)

    w = sub.add_parser("write-config", help="record the resolved config of a run")
    w.add_argument("--spec", type=spec_arg, required=True, help="the whole config as JSON")
    w.add_argument("--out", required=True, help="YAML file to write (results/config.yaml)")
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

    build_report(a.spec, a.db, a.summary, a.generations, a.funnels, a.models,
                 a.generalization, a.tti_cards, a.rubric)
    return 0
