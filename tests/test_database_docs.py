"""docs/database.md describes every table and column of results.duckdb, and its example queries
run against the installed DuckDB (on a synthetic run here; on the small workflow run in
tests/test_workflow.py)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from longthought.results.synthetic import synthetic_run

DOC = Path(__file__).resolve().parents[1] / "docs" / "database.md"


def documented() -> dict[str, dict[str, str]]:
    """table -> column -> documented type, from the doc's `## \\`table\\`` sections."""
    out: dict[str, dict[str, str]] = {}
    table = None
    for line in DOC.read_text().splitlines():
        head = re.match(r"^## `(\w+)`", line)
        if head:
            table = head.group(1)
            out[table] = {}
            continue
        row = re.match(r"^\| `(\w+)` \| (\w+) \|", line)
        if table and row:
            out[table][row.group(1)] = row.group(2)
    return out


def example_queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)


def check_database(db: str) -> None:
    """Every table and column of `db` is documented with its type; every query runs."""
    docs = documented()
    con = duckdb.connect(db, read_only=True)
    try:
        tables = sorted(r[0] for r in con.execute("SHOW TABLES").fetchall())
        assert tables == sorted(docs), (tables, sorted(docs))
        for table in tables:
            cols = {r[0]: r[1] for r in con.execute(f'DESCRIBE "{table}"').fetchall()}
            assert list(cols) == list(docs[table]), table  # same columns, same order
            for col, kind in cols.items():
                assert kind == docs[table][col], (table, col, kind)
        queries = example_queries()
        assert len(queries) >= 6
        for sql in queries:
            con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    return synthetic_run(tmp_path_factory.mktemp("docs"), 120, workers=1)["db"]


def test_every_table_and_column_is_documented_and_the_queries_run(db: str) -> None:
    check_database(db)


def test_family_query_reads_the_family_column(db: str) -> None:
    sql = example_queries()[0]
    con = duckdb.connect(db, read_only=True)
    rows = con.execute(sql).fetchall()
    con.close()
    assert {r[1] for r in rows} == {"addition", "multiplication"}  # the synthetic benchmark's
    assert all(r[3] > 0 for r in rows)


@pytest.mark.parametrize("meta,family", [
    ('{"family": "addition", "split": "train"}', "addition"),
    ('{"subject": "Algebra", "level": 3}', "Algebra"),  # MATH500's subject
    ('{"level": 3}', None), (None, None), ("not json", None), ("[1, 2]", None),
])
def test_family_comes_from_meta_not_the_id(meta, family) -> None:
    from longthought.results.database import family_of

    assert family_of(meta) == family


def test_a_trace_file_with_the_wrong_columns_is_named(tmp_path) -> None:
    import pandas as pd

    from longthought.io import TableError
    from longthought.results.database import traces_sql

    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"trace_id": ["a"], "colour": ["blue"]}).to_parquet(bad)
    with pytest.raises(TableError, match=r"bad.parquet.*missing column.*'task'.*'colour'"):
        traces_sql([str(bad)])
