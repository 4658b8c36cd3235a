"""One gold normaliser for problem loaders, curation and evaluation.

Pools and benchmarks give their gold answers in three shapes: a bare answer (`34`, `27.0` from a
CSV, `\\frac{10}{9}`, `10/9`), LaTeX in math delimiters (`$28\\%$`), or a whole reference
solution whose answer is its last box (NuminaMath). `normalize_gold` turns each into the bare
answer text the checker parses; everything else (percent, units, thousands separators,
`\\text{}`) is left to math-verify, which knows those forms.
"""

from __future__ import annotations

import math
import numbers
import re

from longthought.answers.extract import boxed_answer, has_box

_WHOLE_DEC_RE = re.compile(r"^-?\d+\.0+$")
_DELIMITED_RE = re.compile(
    r"^(?:\$\$(?P<a>.+)\$\$|\$(?P<b>[^$]+)\$|\\\((?P<c>.+)\\\)|\\\[(?P<d>.+)\\\])\.?$", re.DOTALL
)


def normalize_gold(value: object) -> str:
    """A gold answer as bare answer text ("" for none).

    Numbers: whole floats lose their ".0" (AMC's 27.0 -> "27"). Text: a solution with boxes
    gives its last box group (several boxes close together are one answer, joined with ", ");
    an answer wrapped in `$...$`, `$$...$$`, `\\(...\\)` or `\\[...\\]` loses the wrapper;
    "27.0" becomes "27".
    """
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        f = float(value)
        if math.isnan(f):
            return ""
        return str(int(f)) if f.is_integer() else repr(f)
    text = str(value).strip()
    if has_box(text):
        boxed = boxed_answer(text)
        if boxed.answer:
            return boxed.answer
    m = _DELIMITED_RE.match(text)
    if m:
        text = next(g for g in m.groups() if g is not None).strip()
    if _WHOLE_DEC_RE.match(text):
        text = text.split(".")[0]
    return text
