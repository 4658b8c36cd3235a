"""longthought.answers: gold normalisation, final-answer extraction and checking.

Used by problems (gold answers of pools and benchmarks), curate (the correctness filter),
evaluate (scoring, maj@k) and generalization (the sycophancy probe) alike. math-verify does the
extraction and the comparison, in deadline-bounded worker processes; this package adds the
thinking cut, the hostile-shape screen, the fast path and the verdict reasons around it.

What other parts may use:
    check_answer, check_many, AnswerChecker, Verdict, prepare, EXTRACTIONS   (checker)
    normalize_gold                                                          (gold)
    extract_thinking, final_part, check_markers, THINKING_FORMATS           (thinking)
    extract_answer, extract_answer_detail, Extraction                       (extract: the scan)
    DeadlinePool                                                            (pool)
"""

from longthought.answers.checker import (
    DEFAULT_EXTRACTION,
    EXTRACTIONS,
    REASONS,
    AnswerChecker,
    Pending,
    Verdict,
    check_answer,
    check_extraction,
    check_many,
    prepare,
)
from longthought.answers.extract import Extraction, extract_answer, extract_answer_detail
from longthought.answers.gold import normalize_gold
from longthought.answers.pool import DeadlinePool
from longthought.answers.thinking import (
    THINKING_FORMATS,
    FinalPart,
    check_markers,
    extract_thinking,
    final_part,
)

__all__ = ["DEFAULT_EXTRACTION", "EXTRACTIONS", "REASONS", "THINKING_FORMATS", "AnswerChecker",
           "DeadlinePool", "Extraction", "FinalPart", "Pending", "Verdict", "check_answer",
           "check_extraction", "check_many", "check_markers", "extract_answer",
           "extract_answer_detail", "extract_thinking", "final_part", "normalize_gold",
           "prepare"]
