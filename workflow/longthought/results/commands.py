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
    p.add_argument("--items", nargs="*", default=[], help="generalization .items.parquet files")
    p.add_argument("--problems", nargs="*", default=[], help="problem pools (problems/*.parquet)")
    p.add_argument("--benchmarks", nargs="*", default=[])
    p.add_argument("--traces", nargs="*", default=[])
    p.add_argument("--datasets", nargs="*", default=[], help="curated datasets (kept rows)")
    p.add_argument("--rejected", nargs="*", default=[], help="curation's rejected tables")
    p.add_argument("--tti-cards", nargs="*", default=[])
    p.add_argument("--rubric", default="config/tti/rubric.yaml")
    p.set_defaults(func=_run)

    b = sub.add_parser("browse", help="write the run browser (one HTML file) from results.duckdb")
    b.add_argument("--db", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--spec", type=spec_arg, default={},
                   help="config report.browser as JSON (traces, problems, samples, max_chars, "
                        "seed)")
    b.set_defaults(func=_browse)

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
    from longthought.results.build import RunFiles, build_report

    files = RunFiles(generations=a.generations, funnels=a.funnels, models=a.models,
                     generalization=a.generalization, items=a.items, problems=a.problems,
                     benchmarks=a.benchmarks, traces=a.traces, datasets=a.datasets,
                     rejected=a.rejected, tti_cards=a.tti_cards, rubric=a.rubric)
    build_report(a.spec, a.db, a.summary, files)
    return 0


def _browse(a: argparse.Namespace) -> int:
    from longthought.results.browser import write_browser

    stats = write_browser(a.db, a.out, a.spec)
    print(f"browser: {a.out} ({stats['traces']:,} of {stats['traces_total']:,} traces, "
          f"{stats['problems']:,} problems, {stats['bytes'] / 1e6:.1f} MB)")
    return 0
