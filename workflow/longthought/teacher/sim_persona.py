"""What the sim teacher says: a reasoning model's long thought, a rewriter's detailed solution.

The sim server picks a persona per request and calls `compose`. Everything is drawn from the
`random.Random` it is given, so a reply is a pure function of (sim seed, request content, sample
seed). The procedural problem families supply the exact steps (`problems.procedural.solve`); the
persona decides how to voice them, where to slip and correct itself, and whether to end wrong.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

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
    return answer + "1"


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
