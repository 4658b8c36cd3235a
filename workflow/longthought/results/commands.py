"""`longthought report`."""

from __future__ import annotations

import argparse

from longthought.cli import spec_arg


def register(sub: argparse._SubParsersAction) -> None:
    """Add `report`."""
    p = sub.add_parser("report", help="aggregate a run into DuckDB and write the report")
    p.add_argument("--spec", type=spec_arg, default={},
                   help='a JSON file (or JSON text): {"k": [..], "report": {..}, "pair": [..], '
                        '"tasks": {..}, "teachers": [..], "students": [..], "inputs": {one '
                        'list per file option below}}; "inputs" (what the workflow passes, so '
                        "the printed command stays short) stands in for the options below")
    p.add_argument("--db", required=True, help="DuckDB database to write (replaced whole)")
    p.add_argument("--summary", required=True,
                   help="Markdown report to write; its plots (PNG) go beside it")
    p.add_argument("--generations", nargs="*", default=None,
                   help="generations tables (generations/<model>/<bench>.parquet)")
    p.add_argument("--funnels", nargs="*", default=None,
                   help="curation funnels (datasets/<dataset>.funnel.parquet)")
    p.add_argument("--models", nargs="*", default=None,
                   help="trained model directories (their hparams.json and train_log.parquet)")
    p.add_argument("--generalization", nargs="*", default=None,
                   help="generalization tables (generalization/<model>/<set>.parquet)")
    p.add_argument("--items", nargs="*", default=None, help="generalization .items.parquet files")
    p.add_argument("--problems", nargs="*", default=None,
                   help="problem pools (problems/*.parquet)")
    p.add_argument("--benchmarks", nargs="*", default=None,
                   help="benchmark sets (benchmarks/*.parquet)")
    p.add_argument("--traces", nargs="*", default=None, help="traces tables (traces/*.parquet)")
    p.add_argument("--datasets", nargs="*", default=None, help="curated datasets (kept rows)")
    p.add_argument("--rejected", nargs="*", default=None, help="curation's rejected tables")
    p.add_argument("--tti-cards", nargs="*", default=None,
                   help="TTI scorecards to rank (this run's own first, then published ones)")
    p.add_argument("--rubric", default=None, help="TTI rubric (default config/tti/rubric.yaml)")
    p.set_defaults(func=_run)

    b = sub.add_parser("browse", help="write the run browser (one HTML file) from results.duckdb")
    b.add_argument("--db", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--spec", type=spec_arg, default={},
                   help="config report.browser as JSON (traces, problems, samples, max_chars, "
                        "seed)")
    b.set_defaults(func=_browse)

    w = sub.add_parser("write-config", help="record the resolved config of a run")
    w.add_argument("--spec", type=spec_arg, required=True,
                   help="the whole resolved config: a JSON file (or JSON text)")
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
    from longthought.results.build import RunFiles, build_report

    inputs = a.spec.get("inputs") or {}

    def pick(name: str, default):
        given = getattr(a, name)
        return given if given is not None else inputs.get(name, default)

    spec = {k: v for k, v in a.spec.items() if k != "inputs"}
    files = RunFiles(**{name: pick(name, []) for name in (
        "generations", "funnels", "models", "generalization", "items", "problems", "benchmarks",
        "traces", "datasets", "rejected", "tti_cards")},
        rubric=pick("rubric", "config/tti/rubric.yaml"))
    build_report(spec, a.db, a.summary, files)
    return 0


def _browse(a: argparse.Namespace) -> int:
    from longthought.results.browser import write_browser

    stats = write_browser(a.db, a.out, a.spec)
    print(f"browser: {a.out} ({stats['traces']:,} of {stats['traces_total']:,} traces, "
          f"{stats['problems']:,} problems, {stats['bytes'] / 1e6:.1f} MB)")
    return 0
