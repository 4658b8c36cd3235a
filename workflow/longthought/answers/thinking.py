"""Split a model's text into its thinking block and the part after it (where the answer lives).

Only the text after the thinking counts as the answer: a `\\boxed{}` inside `<think>` is an
intermediate value, and a thought cut off before its closing marker (a truncated generation) has
no answer at all, whatever it contains (lighteval #869, lm-eval #3382). Pure string scanning.
"""

from __future__ import annotations

from dataclasses import dataclass

# Thinking formats: name -> (open marker, close marker, solution open, solution close).
THINKING_FORMATS: dict[str, tuple[str, str, str, str]] = {
    "think": ("<think>", "</think>", "", ""),
    "sky": ("<|begin_of_thought|>", "<|end_of_thought|>",
            "<|begin_of_solution|>", "<|end_of_solution|>"),
}


@dataclass(frozen=True)
class FinalPart:
    """The text that may hold the answer. `text` is None when the thought never closed."""

    text: str | None
    thinking: str | None
    detail: str = ""  # why there is no final part


def _detect(text: str) -> str | None:
    for name, (open_m, close_m, _, _) in THINKING_FORMATS.items():
        if open_m in text or close_m in text:
            return name
    return None


def extract_thinking(text: str, fmt: str = "think") -> tuple[str | None, str]:
    """Split a response into (thinking, answer_part).

    `fmt` is "think" (`<think>...</think>`), "sky" (Sky-T1's begin/end of thought markers; the
    `<|begin_of_solution|>` wrapper is removed from the answer part), "auto" (whichever markers
    appear) or "plain" (no split). No markers: (None, text). An opening marker without a close (a
    truncated thought): (rest, ""). A close without an opening (templates that put `<think>` in
    the prompt): the text before the close is the thinking.
    """
    if not isinstance(text, str):
        return None, ""
    if fmt == "auto":
        found = _detect(text)
        if found is None:
            return None, text
        fmt = found
    if fmt == "plain":
        return None, text
    if fmt not in THINKING_FORMATS:
        raise ValueError(f"unknown thinking format {fmt!r}; known: plain, auto, "
                         f"{', '.join(THINKING_FORMATS)}")
    open_m, close_m, sol_open, sol_close = THINKING_FORMATS[fmt]
    start = text.find(open_m)
    end = text.rfind(close_m)
    if start < 0 and end < 0:
        return None, text
    if end < 0 or end < start:
        return text[start + len(open_m):].strip(), ""
    think_start = start + len(open_m) if start >= 0 else 0
    thinking = text[think_start:end].strip()
    answer = text[end + len(close_m):].strip()
    if sol_open and answer.startswith(sol_open):
        answer = answer[len(sol_open):]
        if answer.rstrip().endswith(sol_close):
            answer = answer.rstrip()[: -len(sol_close)]
        answer = answer.strip()
    return thinking, answer


def final_part(text: str) -> FinalPart:
    """The part of `text` after its thinking block (any known markers), or why there is none."""
    fmt = _detect(text)
    if fmt is None:
        return FinalPart(text, None)
    thinking, answer = extract_thinking(text, fmt)
    open_m, close_m = THINKING_FORMATS[fmt][:2]
    if close_m not in text or text.rfind(close_m) < text.find(open_m):
        return FinalPart(None, thinking, f"thought cut off before {close_m}")
    return FinalPart(answer, thinking)


def check_markers(text: str, fmt: str = "think") -> str | None:
    """Why the thought markers of `text` are not well formed, or None when they are.

    Well formed: exactly one opening and one closing marker, in that order, a non-empty thought,
    and something after the close (for "sky", also one begin/end of solution pair after it).
    """
    if fmt == "plain":
        return None
    if fmt not in THINKING_FORMATS:
        raise ValueError(f"unknown thinking format {fmt!r}")
    open_m, close_m, sol_open, sol_close = THINKING_FORMATS[fmt]
    n_open, n_close = text.count(open_m), text.count(close_m)
    if n_open == 0 and n_close == 0:
        return f"no {open_m} ... {close_m} block"
    if n_open != 1 or n_close != 1:
        return f"unbalanced markers: {n_open} x {open_m}, {n_close} x {close_m}"
    start, end = text.find(open_m), text.find(close_m)
    if end < start:
        return f"{close_m} before {open_m}"
    if not text[start + len(open_m):end].strip():
        return "empty thought"
    rest = text[end + len(close_m):]
    if not rest.strip():
        return f"nothing after {close_m}"
    if sol_open and (rest.count(sol_open) != 1 or rest.count(sol_close) != 1
                     or rest.find(sol_close) < rest.find(sol_open)):
        return f"unbalanced {sol_open} ... {sol_close}"
    return None
