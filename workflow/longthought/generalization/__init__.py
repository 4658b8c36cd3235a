"""longthought.generalization: safety, factuality, sycophancy and open QA, before and after SFT.

Public API: `generate_responses` (a model's answers: the GPU side, no API) and
`judge_responses` (the judge's side: a local rule), `generalize` (both in one process), `load_set`,
`parse_verdict`, `score_probe`, `read_scores` / `human_rows` (expert scores), `aggregate`, and
`generalization_markdown` (the report's before/after section).
"""

from longthought.generalization.aggregate import PRIMARY, aggregate
from longthought.generalization.human import human_rows, krippendorff_alpha_interval, read_scores
from longthought.generalization.probe import score_probe
from longthought.generalization.report import generalization_markdown
from longthought.generalization.run import generalize, generate_responses, judge_responses
from longthought.generalization.sets import load_set
from longthought.generalization.verdicts import Judgement, parse_verdict, passed

__all__ = [
    "PRIMARY",
    "Judgement",
    "aggregate",
    "generalization_markdown",
    "generalize",
    "generate_responses",
    "human_rows",
    "judge_responses",
    "krippendorff_alpha_interval",
    "load_set",
    "parse_verdict",
    "passed",
    "read_scores",
    "score_probe",
]
