"""Seeded procedural math problems with exact answers, and their step-by-step solutions.

Four families (addition, multiplication, linear equations, sums of fractions). Each family can
generate a problem from a random generator, parse its own problem text back, and write the
column-by-column steps that solve it. The sim teacher uses `solve()` to answer like a reasoning
model; the generator uses it for the short reference solutions the rewrite task expands.

Train and held-out sets are disjoint by construction: every problem has a canonical key, and a
hash of that key assigns it to exactly one split.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from fractions import Fraction
from math import gcd

SPLITS = ("train", "heldout")
HELDOUT_SHARE = 5  # one key in five belongs to the held-out split


@dataclass(frozen=True)
class Step:
    """One line of work: `text` with `{v}` where the computed value goes."""

    text: str
    value: str
    wrong: str | None = None  # a plausible slip for this step, if it has one

    def render(self, value: str | None = None) -> str:
        return self.text.replace("{v}", self.value if value is None else value)


@dataclass
class Solution:
    family: str
    answer: str  # exact answer in LaTeX (integers plain, fractions \frac{a}{b})
    steps: list[Step] = field(default_factory=list)
    check: str = ""  # a self-check sentence that confirms the answer another way

    def reference(self) -> str:
        """A terse human-style solution, like a textbook's, for the rewrite task to expand."""
        return f"{self.steps[-1].render()} The answer is ${self.answer}$."


@dataclass(frozen=True)
class Problem:
    family: str
    key: tuple[int, ...]
    text: str

    @property
    def split(self) -> str:
        return split_of(self.family, self.key)


def split_of(family: str, key: tuple[int, ...]) -> str:
    digest = hashlib.sha256(f"{family}:{key}".encode()).digest()
    return "heldout" if digest[0] % HELDOUT_SHARE == 0 else "train"


def _digits(rng: random.Random, n: int) -> int:
    return rng.randint(10 ** (n - 1), 10**n - 1)


def _latex_fraction(q: Fraction) -> str:
    if q.denominator == 1:
        return str(q.numerator)
    sign = "-" if q < 0 else ""
    return f"{sign}\\frac{{{abs(q.numerator)}}}{{{q.denominator}}}"


# --- addition ---------------------------------------------------------------------------------

def gen_addition(rng: random.Random, digits: int = 3) -> Problem:
    a, b = _digits(rng, digits), _digits(rng, rng.randint(max(1, digits - 1), digits))
    return Problem("addition", (a, b), f"Compute ${a} + {b}$.")


PLACES = ["ones", "tens", "hundreds", "thousands", "ten-thousands", "hundred-thousands"]


def _place(i: int) -> str:
    return PLACES[i] if i < len(PLACES) else f"digit {i + 1}"


def place_values(n: int) -> Step:
    """'437: hundreds 4, tens 3, ones 7.' -- each digit named by its place.

    Why: the column steps then look digits up by their label instead of counting positions
    from the end of a number, which a small student learns far faster (content, not offsets).
    """
    digits = str(n)
    parts = [f"{_place(len(digits) - 1 - i)} {d}" for i, d in enumerate(digits)]
    return Step(f"{n}: {', '.join(parts)}.", "")


def solve_addition(a: int, b: int) -> Solution:
    da, db = str(a)[::-1], str(b)[::-1]
    steps, carry = [place_values(a), place_values(b)], 0
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        s = x + y + carry
        text = f"{_place(i)}: {x} + {y} + {carry} = {{v}}, write {s % 10} carry {s // 10}."
        steps.append(Step(text, str(s), str(s + 1)))
        carry = s // 10
    if carry:
        steps.append(Step("final carry: write {v}.", str(carry)))
    total = a + b
    steps.append(Step(f"So {a} + {b} = {{v}}.", str(total), str(total + 10)))
    check = (f"Check: the ones digits {a % 10} + {b % 10} end in {total % 10}, and {total} "
             f"ends in {total % 10}.")
    return Solution("addition", str(total), steps, check)


# --- multiplication ---------------------------------------------------------------------------

def gen_multiplication(rng: random.Random, digits: int = 2, by_digits: int = 1) -> Problem:
    a, b = _digits(rng, digits), _digits(rng, by_digits)
    if b == 1:
        b = rng.randint(2, 9)
    return Problem("multiplication", (a, b), f"Compute ${a} \\times {b}$.")


def solve_multiplication(a: int, b: int) -> Solution:
    steps = [place_values(a)]
    partials = []
    single = b < 10
    for j, bd in enumerate(str(b)[::-1]):
        d = int(bd)
        carry = 0
        for i, ad in enumerate(str(a)[::-1]):
            p = int(ad) * d + carry
            place = f"{_place(i)}: " if single else ""
            steps.append(Step(f"{place}{ad} x {d} + {carry} = {{v}}, write {p % 10} "
                              f"carry {p // 10}.", str(p), str(p + d)))
            carry = p // 10
        if carry:
            steps.append(Step("final carry: write {v}.", str(carry)))
        partial = a * d * 10**j
        partials.append(partial)
        if not single:
            shift = f" shifted {j} place{'s' if j > 1 else ''}" if j else ""
            steps.append(Step(f"So {a} x {d}{shift} = {{v}}.", str(partial)))
    total = a * b
    if not single:
        steps.append(Step(f"Add the partial products: {' + '.join(map(str, partials))} = {{v}}.",
                          str(total), str(total + 10)))
    steps.append(Step(f"So {a} x {b} = {{v}}.", str(total), str(total + 10)))
    check = (f"Check: the ones digits {a % 10} x {b % 10} = {(a % 10) * (b % 10)} end in "
             f"{total % 10}, and {total} ends in {total % 10}.")
    return Solution("multiplication", str(total), steps, check)


# --- linear equations -------------------------------------------------------------------------

def gen_linear(rng: random.Random, max_coef: int = 9, max_x: int = 20, max_b: int = 50) -> Problem:
    a = rng.randint(2, max_coef)
    x = rng.randint(-max_x, max_x)
    b = rng.randint(-max_b, max_b)
    c = a * x + b
    sign = "+" if b >= 0 else "-"
    return Problem("linear", (a, b, c), f"Solve for $x$: ${a}x {sign} {abs(b)} = {c}$.")


def solve_linear(a: int, b: int, c: int) -> Solution:
    rhs = c - b
    x = rhs // a
    if b >= 0:
        move = Step(f"Subtract {b} from both sides: {a}x = {c} - {b} = {{v}}.",
                    str(rhs), str(rhs + 1))
    else:
        move = Step(f"Add {-b} to both sides: {a}x = {c} + {-b} = {{v}}.", str(rhs), str(rhs - 1))
    steps = [move, Step(f"Divide both sides by {a}: x = {rhs} / {a} = {{v}}.", str(x), str(x + 1))]
    sign = "+" if b >= 0 else "-"
    return Solution("linear", str(x), steps,
                    f"Check: {a} * {x} = {a * x}, and {a * x} {sign} {abs(b)} = {c}.")


# --- sums of fractions ------------------------------------------------------------------------

def gen_fractions(rng: random.Random, max_den: int = 9) -> Problem:
    b, d = rng.randint(2, max_den), rng.randint(2, max_den)
    a, c = rng.randint(1, b - 1), rng.randint(1, d - 1)
    # Short template on purpose: every word 8-gram of the text holds all four numbers, so n-gram
    # decontamination never confuses two different problems that share template words.
    text = f"Compute $\\frac{{{a}}}{{{b}}} + \\frac{{{c}}}{{{d}}}$ in lowest terms."
    return Problem("fractions", (a, b, c, d), text)


def solve_fractions(a: int, b: int, c: int, d: int) -> Solution:
    den = b * d // gcd(b, d)
    na, nc = a * (den // b), c * (den // d)
    num = na + nc
    g = gcd(num, den)
    q = Fraction(num, den)
    steps = [
        Step(f"Common denominator of {b} and {d}: {{v}}.", str(den), str(b * d + 1)),
        Step(f"{a}/{b} = {na}/{den} and {c}/{d} = {nc}/{den}.", ""),
        Step(f"Add the numerators: {na} + {nc} = {{v}}, so the sum is {num}/{den}.",
             str(num), str(num + 1)),
        Step(f"gcd({num}, {den}) = {{v}}.", str(g)),
        Step("Reduced: {v}.", f"{q.numerator}/{q.denominator}"),
    ]
    return Solution("fractions", _latex_fraction(q), steps,
                    f"Check: {q.numerator} x {g} = {num} and {q.denominator} x {g} = {den}.")


# --- registry ---------------------------------------------------------------------------------

GENERATORS = {
    "addition": gen_addition,
    "multiplication": gen_multiplication,
    "linear": gen_linear,
    "fractions": gen_fractions,
}

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("addition", re.compile(r"Compute \$(\d+) \+ (\d+)\$")),
    ("multiplication", re.compile(r"Compute \$(\d+) \\times (\d+)\$")),
    ("linear", re.compile(r"Solve for \$x\$: \$(\d+)x ([+-]) (\d+) = (-?\d+)\$")),
    ("fractions", re.compile(r"\\frac\{(\d+)\}\{(\d+)\} \+ \\frac\{(\d+)\}\{(\d+)\}")),
]


def parse(text: str) -> tuple[str, tuple[int, ...]] | None:
    """Find a procedural problem in free text (e.g. a chat prompt); None if there is none."""
    for family, pattern in _PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        if family == "linear":
            a, sign, b, c = m.groups()
            return family, (int(a), int(b) * (1 if sign == "+" else -1), int(c))
        return family, tuple(int(g) for g in m.groups())
    return None


def solve_key(family: str, key: tuple[int, ...]) -> Solution:
    return {
        "addition": solve_addition,
        "multiplication": solve_multiplication,
        "linear": solve_linear,
        "fractions": solve_fractions,
    }[family](*key)


def solve(text: str) -> Solution | None:
    """Parse a problem out of `text` and solve it step by step; None if it is not ours."""
    found = parse(text)
    return solve_key(*found) if found else None


def generate(
    families: list[str] | dict[str, dict],
    n: int,
    seed: int,
    split: str,
    patience: int = 2000,
) -> list[dict]:
    """`n` distinct problems of `split`, drawn round-robin over `families` (names or name->kwargs).

    Rows follow the `problems` schema. A family whose number space is used up (no new problem
    in `patience` draws) leaves the rotation and the others fill in; raises ValueError if all
    of them together cannot supply `n` distinct problems of the split.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    specs = families if isinstance(families, dict) else {f: {} for f in families}
    unknown = sorted(set(specs) - set(GENERATORS))
    if unknown:
        raise ValueError(f"unknown problem families {unknown}; known: {sorted(GENERATORS)}")
    rng = random.Random(f"{seed}:{split}")
    active = sorted(specs)
    misses = dict.fromkeys(active, 0)
    seen: set[tuple[str, tuple[int, ...]]] = set()
    rows: list[dict] = []
    turn = 0
    while len(rows) < n:
        if not active:
            raise ValueError(f"could only draw {len(rows)} of {n} distinct {split} problems "
                             f"from {sorted(specs)}: widen the families' ranges")
        family = active[turn % len(active)]
        prob = GENERATORS[family](rng, **(specs[family] or {}))
        if prob.split != split or (family, prob.key) in seen:
            misses[family] += 1
            if misses[family] >= patience:
                active.remove(family)
            continue
        misses[family] = 0
        turn += 1
        seen.add((family, prob.key))
        sol = solve_key(family, prob.key)
        rows.append({
            "problem_id": f"{family}-{'_'.join(str(k) for k in prob.key)}",
            "problem": prob.text,
            "answer": sol.answer,
            "answer_type": "rational" if "frac" in sol.answer else "integer",
            "source": f"procedural:{family}",
            "solution": sol.reference(),
            "meta": json.dumps({"family": family, "split": split, "key": list(prob.key)}),
        })
    return rows
