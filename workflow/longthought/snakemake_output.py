"""What a Snakemake run printed, read back: the jobs a dry run plans and the jobs a run executed.

Used by the tests and benchmarks that check which stages a change re-runs (one parser, so they
agree on what a job count means)."""

from __future__ import annotations

import re
from collections import Counter

_JOB = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$", re.M)
_STAT = re.compile(r"^(\S+)\s+(\d+)$")


def planned_jobs(text: str) -> Counter:
    """Jobs by rule from a dry run's "Job stats" table (`total` left out); none if nothing to do."""
    if "Nothing to be done" in text:
        return Counter()
    jobs: Counter = Counter()
    for line in text.split("Job stats:")[1].splitlines()[3:]:
        m = _STAT.match(line.strip())
        if m and m.group(1) != "total":
            jobs[m.group(1)] = int(m.group(2))
        elif jobs and not line.strip():
            break
    return jobs


def ran_jobs(text: str) -> Counter:
    """Jobs by rule that a run executed (`all` left out), from Snakemake's job blocks."""
    return Counter(r for r in _JOB.findall(text) if r != "all")
