"""What the sim teacher says: a reasoning model's long thought, a rewriter's detailed solution.

The sim server picks a persona per request and calls `compose`. Everything is drawn from the
`random.Random` it is given, so a reply is a pure function of (sim seed, request content, sample
seed). The procedural problem families supply the exact steps (`problems.procedural.solve`); the
persona decides how to voice them, where to slip and correct itself, and whether to end wrong.

The rewriter also handles any problem that comes with a reference solution (MATH500, AIME,
NuminaMath rows): it rewrites the given solution's steps into the long, numbered step-by-step
format and keeps its final answer (the solution's last box group), as the paper's cheaper
rewriting model does (`rewrite_reference`). A problem it can neither solve nor rewrite gets a
refusal with no final answer.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from longthought.answers.extract import box_spans
from longthought.answers.gold import normalize_gold
from longthought.problems.procedural import Solution, Step, solve

REASONING_MARKERS = ("o1", "o3", "o4", "r1", "reason", "think")
REWRITE_MARKER = "Reference solution:"


@dataclass
class Reply:
    """A reply before transport: `thought` (no <think> tags) is None for non-reasoning styles."""

    thought: str | None
    answer: str
    persona: str


def style_for(model: str, style: str) -> str:
    """`reasoning` or `chat`: explicit from config, else guessed from the model name."""
    if style in ("reasoning", "chat"):
        return style
    low = model.lower()
    return "reasoning" if any(m in low for m in REASONING_MARKERS) else "chat"


def wrong_answer(answer: str, rng: random.Random) -> str:
    """A plausible wrong answer in the same form as `answer` (integer or LaTeX fraction)."""
    m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", answer)
    if m:
        sign, num, den = m.groups()
        return f"{sign}\\frac{{{int(num) + rng.randint(1, 3)}}}{{{den}}}"
    if re.fullmatch(r"-?\d+", answer):
        delta = rng.choice([-10, -2, -1, 1, 2, 10])
        return str(int(answer) + delta)
    return f"{answer} + 1" if not re.search(r"[,=]", answer) else f"{answer}, 1"


def _plain(answer: str) -> str:
    """LaTeX fraction -> a/b, as the steps write it."""
    return re.sub(r"\\frac\{(\d+)\}\{(\d+)\}", r"\1/\2", answer)


# Short on purpose: every word of a thought costs student training time, and a reasoning model's
# habits (a plan, a slip noticed and fixed, a check) show in a few words as well as in many.
_OPENINGS = ["Okay, let me work through this.", "Alright, step by step.", "Let me think.",
             "Okay, let me solve this."]
_GOALS = {
    "addition": "Plan: add column by column from the ones.",
    "multiplication": "Plan: multiply digit by digit with carries.",
    "linear": "Plan: move the constant, then divide.",
    "fractions": "Plan: common denominator, add, reduce.",
}
_SLIPS = [
    "Wait, that doesn't look right. Let me recompute: {fix}",
    "Hmm, wait. Let me recompute that step more carefully: {fix}",
    "Wait, I think I made a mistake there. Let me recompute: {fix}",
]
_CHECK_INTROS = ["Let me double-check.", "Let me verify.", "Quick check."]
_CLOSINGS = ["Confirmed.", "Good, that matches.", "Consistent."]
_FINALS = ["The answer is $\\boxed{{{a}}}$.", "**Final answer:** $\\boxed{{{a}}}$",
           "So the final answer is $\\boxed{{{a}}}$."]


def _work_lines(sol: Solution, rng: random.Random, slip_rate: float,
                final_value: str | None) -> list[str]:
    """The steps, one per line; at `slip_rate` one step is first done wrong, then corrected.

    `final_value` (plain form) replaces the last step's value: the path to a wrong final answer.
    """
    steps: list[Step] = list(sol.steps)
    slippable = [i for i, s in enumerate(steps[:-1]) if s.wrong is not None and s.value]
    slip_at = rng.choice(slippable) if slippable and rng.random() < slip_rate else None
    lines = []
    for i, step in enumerate(steps):
        if i == slip_at:
            fix = step.render()
            lines.append(step.render(step.wrong))
            lines.append(rng.choice(_SLIPS).format(fix=fix))
        elif i == len(steps) - 1 and final_value is not None:
            lines.append(step.render(final_value))
        else:
            lines.append(step.render())
    return lines


def _unknown(style: str) -> Reply:
    answer = ("I'm sorry, but I couldn't find a problem I know how to solve in your message. "
              "Could you state it again, for example as \"Compute $12 + 34$.\"?")
    thought = "The message does not contain a math problem that I recognise." \
        if style == "reasoning" else None
    return Reply(thought, answer, "generic")


def compose(text: str, model: str, *, style: str = "auto", slip_rate: float = 0.0,
            wrong_rate: float = 0.0, rng: random.Random) -> Reply:
    """The reply to a user message `text`: rewriter when it carries a reference solution, else
    solver (reasoning style: long thought + short boxed answer; chat style: worked answer)."""
    style = style_for(model, style)
    sol = solve(text)
    if sol is None and REWRITE_MARKER in text:
        return rewrite_reference(text, rng, wrong_rate)
    if sol is None:
        return _unknown(style)
    wrong = rng.random() < wrong_rate
    final = wrong_answer(sol.answer, rng) if wrong else sol.answer
    final_plain = _plain(final) if wrong else None
    if REWRITE_MARKER in text:
        return _rewrite(sol, rng, final, final_plain, slip_rate)
    lines = _work_lines(sol, rng, slip_rate, final_plain)
    if style == "chat":
        body = "Let's solve this step by step.\n\n" + "\n".join(lines)
        return Reply(None, body + "\n\n" + rng.choice(_FINALS).format(a=final), "solver")
    parts = [rng.choice(_OPENINGS), _GOALS.get(sol.family, "Let me go one step at a time."),
             *lines]
    if not wrong:
        parts += [rng.choice(_CHECK_INTROS), sol.check, rng.choice(_CLOSINGS)]
    else:
        parts += ["I'm fairly confident in this."]
    return Reply("\n".join(parts), rng.choice(_FINALS).format(a=final), "solver")


def _rewrite(sol: Solution, rng: random.Random, final: str, final_plain: str | None,
             slip_rate: float) -> Reply:
    """The paper's reformatting step: a detailed, longer, step-by-step solution, answer boxed."""
    lines = _work_lines(sol, rng, slip_rate, final_plain)
    intro = rng.choice([
        "Let's solve this problem carefully, one step at a time, explaining each move.",
        "We work through the problem in detail, step by step, before stating the answer.",
    ])
    goal = _GOALS.get(sol.family, "We proceed step by step.")
    out = [intro, "", goal]
    for i, line in enumerate(lines, 1):
        out.append(f"Step {i}: {line}")
    if final_plain is None:
        out += ["", f"Verification: {sol.check}"]
    out += ["", f"Therefore, the final answer is $\\boxed{{{final}}}$."]
    return Reply(None, "\n".join(out), "rewriter")


# --- rewriting a given reference solution --------------------------------------------------------

_ASY_RE = re.compile(r"\[asy\].*?\[/asy\]", re.DOTALL)
# display math, inline math, or a run of text without math
_SEGMENT_RE = re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]|\\begin\{(\w+\*?)\}.+?\\end\{\1\}|\$[^$]+\$|"
                         r"[^$\\]+|\\.?", re.DOTALL)
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\\$])")
_LINKS = ["This is the key relation for what follows.", "Keeping this in mind, we continue.",
          "Let us make sure this step is justified before moving on.",
          "This narrows down what remains to be computed.", "We will use this below."]
_REWRITE_INTROS = [
    "Let's solve this problem carefully, one step at a time, explaining each move.",
    "We work through the problem in detail, step by step, before stating the answer.",
]


def _unbox(text: str) -> str:
    """`\\boxed{X}` -> `X` (balanced braces): the rewrite boxes only its final answer."""
    out, pos = [], 0
    for start, end, content in box_spans(text, last=None):
        if text.startswith("\\boxed", start) or text.startswith("\\fbox", start):
            out.append(text[pos:start])
            out.append(content)
            pos = end + 1
    out.append(text[pos:])
    return "".join(out)


def split_steps(solution: str) -> list[str]:
    """The solution's sentences, math kept whole (a `.` inside `$...$` ends nothing)."""
    steps: list[str] = []
    for para in re.split(r"\n\s*\n", solution):
        current = ""
        for m in _SEGMENT_RE.finditer(para):
            seg = m.group(0)
            if (re.match(r"\s+[A-Z]", seg) and current.rstrip().endswith((".$", ".\\]", ".$$"))
                    and current.strip()):  # "... = 3.$  Also, ...": the period was in the math
                steps.append(current)
                current = ""
            if seg.startswith(("$", "\\[", "\\begin")) or not _SENTENCE_END_RE.search(seg):
                current += seg
                continue
            pieces = _SENTENCE_END_RE.split(seg)
            current += pieces[0]
            for piece in pieces[1:]:
                steps.append(current)
                current = piece
        steps.append(current)
    return [" ".join(s.split()) for s in steps if s.strip(" .\n")]


def _reference(text: str) -> tuple[str, str]:
    """(problem, reference solution) from a rewrite prompt (`Problem: ...` is optional)."""
    before, _, solution = text.partition(REWRITE_MARKER)
    problem = before.rsplit("Problem:", 1)[1] if "Problem:" in before else ""
    return problem.strip(), solution.strip()


def rewrite_reference(text: str, rng: random.Random, wrong_rate: float = 0.0) -> Reply:
    """The rewriter on a problem it cannot solve itself: the reference solution's own steps,
    numbered and spelled out, then its final answer boxed (nothing boxed when it has none)."""
    problem, solution = _reference(text)
    answer = normalize_gold(solution) if "\\boxed" in solution or "\\fbox" in solution else ""
    body = _unbox(_ASY_RE.sub("", solution))
    steps = split_steps(body)
    if not steps:
        return _unknown("chat")
    if answer and rng.random() < wrong_rate:
        answer = wrong_answer(answer, rng)
    out = [rng.choice(_REWRITE_INTROS), ""]
    if problem:
        first = split_steps(problem)[:1]
        if first:
            out += [f"We are asked: {first[0]}", ""]
    for i, step in enumerate(steps, 1):
        line = f"Step {i}: {step}"
        if i < len(steps) and rng.random() < 0.3:
            line += " " + rng.choice(_LINKS)
        out.append(line)
    out += ["", "Verification: each step follows from the previous ones and from the conditions "
                "of the problem, so the result is consistent."]
    if answer:
        out += ["", f"Therefore, the final answer is $\\boxed{{{answer}}}$."]
    return Reply(None, "\n".join(out), "rewriter")
