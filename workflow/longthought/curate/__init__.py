"""longthought.curate: answer checking, trace filters, dedup, decontamination, formatting.

What other parts may use:
    check_answer, check_many, AnswerChecker, Verdict   (answers: safe, deadline-bounded checks)
    extract_answer, extract_thinking                   (extract: pure string scanning)
    curate                                             (pipeline: the `longthought curate` stage)
"""

from longthought.curate.answers import (
    AnswerChecker,
    Verdict,
    check_answer,
    check_many,
    extract_answer,
    extract_thinking,
)

__all__ = ["AnswerChecker", "Verdict", "check_answer", "check_many", "curate", "extract_answer",
           "extract_thinking"]


def curate(*args, **kwargs):  # imported lazily: pandas/pyarrow are not needed to check answers
    """See `longthought.curate.pipeline.curate`."""
    from longthought.curate.pipeline import curate as _curate

    return _curate(*args, **kwargs)
