"""The run browser: one self-contained HTML file to look at a run's traces and generations.

No server, no network: the page carries its data as a JSON block and its scripts inline, so it
opens from a cluster filesystem copied to a laptop. The front end is Alpine.js 3 (MIT, vendored
unmodified under `assets/`, 56 KB): declarative filters over the embedded rows with no build
step. What is embedded is a stated sample of `results.duckdb` (see `browser_data`).
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import duckdb

from longthought import io
from longthought.results.browser_data import BrowserSettings, collect

ALPINE = "alpine-3.17.5.min.js"


def _asset(name: str) -> str:
    return (resources.files("longthought.results") / "assets" / name).read_text(encoding="utf-8")


def _json_for_script(data: dict) -> str:
    """JSON that cannot end its <script> element early: every '<' is written as \\u003c."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render(data: dict) -> str:
    """The page for `data` (the dict `collect` returns, plus `colors`)."""
    parts = {"/*__CSS__*/": _asset("browser.css"), "/*__APP__*/": _asset("browser.js"),
             "/*__ALPINE__*/": _asset(ALPINE), "/*__DATA__*/": _json_for_script(data)}
    pieces = re.split("(" + "|".join(re.escape(m) for m in parts) + ")", _asset("browser.html"))
    missing = sorted(set(parts) - set(pieces))
    if missing:
        raise RuntimeError(f"browser template lacks {missing}")
    # one pass over the template: text inserted for one marker is never searched for another
    return "".join(parts.get(p, p) for p in pieces)


def write_browser(db: str, out: str | Path, spec: dict | None = None,
                  roles: dict[str, str] | None = None,
                  colors: dict[str, str] | None = None) -> dict:
    """Write the browser for results database `db` to `out`; returns the embedded counts.

    `spec` is config `report.browser`; `roles` maps model names to teacher / student / init /
    model (the defaults of the side-by-side view); `colors` maps models to the plots' colours.
    """
    settings = BrowserSettings.from_spec(spec)
    con = duckdb.connect(str(db), read_only=True)
    try:
        data = collect(con, settings, roles)
    finally:
        con.close()
    if not colors:  # the plots' palette, so a model has its plot colour here too
        from longthought.evaluate.plots import model_colors

        colors = model_colors(m["name"] for m in data["models"])
    data["colors"] = colors
    io.write_text(out, render(data))
    return {"traces": data["trace_stats"]["shown"], "traces_total": data["trace_stats"]["total"],
            "problems": data["eval_stats"]["problems_shown"],
            "samples": data["eval_stats"]["samples_shown"],
            "bytes": Path(out).stat().st_size}
