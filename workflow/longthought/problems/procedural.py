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


# --- column arithmetic shared by the families -------------------------------------------------

def column_add(a: int, b: int) -> list[Step]:
    """a + b (a, b >= 0) written column by column, one fact at a time.

    `tens: 8 + 9 = 17, 17 + 1 = 18, write 8 carry 1.`: the two digits' sum, then the carry
    added to it when there is one. Why: `8 + 9 + 1 = 18` in one step is a three-operand fact a
    small model composes badly (its most common error was that sum off by one, the carry
    dropped or added twice); two facts it meets everywhere are learned far better, as
    multiplication already adds its carry in a step of its own.
    """
    da, db = str(a)[::-1], str(b)[::-1]
    steps, carry = [place_values(a), place_values(b)], 0
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        s = x + y + carry
        add = f"{x} + {y} = {x + y}, {x + y} + {carry}" if carry else f"{x} + {y}"
        text = f"{_place(i)}: {add} = {{v}}, write {s % 10} carry {s // 10}."
        steps.append(Step(text, str(s), str(s + 1)))
        carry = s // 10
    if carry:
        steps.append(Step("final carry: write {v}.", str(carry)))
    return steps


def column_subtract(a: int, b: int) -> list[Step]:
    """a - b (a >= b >= 0) written column by column, borrowing where a digit is too small.

    One fact at a time, as in `column_add`: a borrow owed by the column before is taken from
    this column's digit first (`7 - 1 = 6`), then the digit below is subtracted.
    """
    da, db = str(a)[::-1], str(b)[::-1]
    steps, borrow = [place_values(a), place_values(b)], 0
    for i in range(len(da)):
        x, y = int(da[i]), int(db[i]) if i < len(db) else 0
        if not borrow:
            top, owed = x, ""
        elif x >= 1:
            top, owed = x - 1, f"{x} - 1 = {x - 1}, "
        else:  # 0 - 1: borrow from the next column, then pay the owed 1 from the 10
            top, owed, borrow = 9, "0 - 1 is negative, borrow: 10 - 1 = 9, ", 2
        if top >= y:
            d = top - y
            text = f"{_place(i)}: {owed}{top} - {y} = {{v}}, write {d} borrow {borrow // 2}."
            borrow //= 2
        else:
            d = 10 + top - y
            text = (f"{_place(i)}: {owed}{top} - {y} is negative, borrow: "
                    f"{10 + top} - {y} = {{v}}, write {d} borrow 1.")
            borrow = 1
        steps.append(Step(text, str(d), str(d + 1)))
    return steps


def solve_addition(a: int, b: int) -> Solution:
    total = a + b
    steps = [*column_add(a, b), Step(f"So {a} + {b} = {{v}}.", str(total), str(total + 10))]
    check = f"Check: {a % 10} + {b % 10} ends in {total % 10}, and so does {total}."
    return Solution("addition", str(total), steps, check)


# --- multiplication ---------------------------------------------------------------------------

def gen_multiplication(rng: random.Random, digits: int = 2, by_digits: int = 1) -> Problem:
    a, b = _digits(rng, digits), _digits(rng, by_digits)
    if b == 1:
        b = rng.randint(2, 9)
    return Problem("multiplication", (a, b), f"Compute ${a} \\times {b}$.")


def multiply_by_digit(a: int, d: int, named: bool) -> list[Step]:
    """a x d for one digit d: per digit of a, one table fact, then the carry in single digits.

    `8 x 6 = 48, 8 + 5 = 13, write 3 carry 4 + 1 = 5`: the table fact, the incoming carry added
    to its ones digit (the same one-digit sums as addition), and the new carry. Why: `8 x 6 + 5`
    in one step asks a small model to compose two facts in one token; this asks one at a time.
    """
    steps, carry = [], 0
    for i, ad in enumerate(str(a)[::-1]):
        p = int(ad) * d
        low = p % 10 + carry
        new_carry = p // 10 + low // 10
        place = f"{_place(i)}: " if named else ""
        steps.append(Step(f"{place}{ad} x {d} = {{v}}, {p % 10} + {carry} = {low}, write "
                          f"{low % 10} carry {p // 10} + {low // 10} = {new_carry}.",
                          str(p), str(p + d)))
        carry = new_carry
    if carry:
        steps.append(Step("final carry: write {v}.", str(carry)))
    return steps


def solve_multiplication(a: int, b: int) -> Solution:
    steps = [place_values(a)]
    single = b < 10
    running = 0
    for j, bd in enumerate(str(b)[::-1]):
        d = int(bd)
        steps += multiply_by_digit(a, d, named=single)
        partial = a * d * 10**j
        if not single:
            shift = f" shifted {j} place{'s' if j > 1 else ''}" if j else ""
            steps.append(Step(f"So {a} x {d}{shift} = {{v}}.", str(partial)))
            if j:  # add each new partial product to the running sum, column by column
                steps += column_add(running, partial)
                steps.append(Step(f"Running sum: {running} + {partial} = {{v}}.",
                                  str(running + partial), str(running + partial + 10)))
        running += partial
    total = a * b
    steps.append(Step(f"So {a} x {b} = {{v}}.", str(total), str(total + 10)))
    check = (f"Check: {a % 10} x {b % 10} = {(a % 10) * (b % 10)} ends in {total % 10}, "
             f"and so does {total}.")
    return Solution("multiplication", str(total), steps, check)


# --- linear equations -------------------------------------------------------------------------

def gen_linear(rng: random.Random, max_coef: int = 9, max_x: int = 9, max_b: int = 50) -> Problem:
    """ax + b = c or ax - b = c with a positive integer solution x and c >= 0.

    Why positive: then moving the constant is one column subtraction or addition of
    non-negative numbers, a procedure a small model can learn (signs would double the cases).
    """
    a = rng.randint(2, max_coef)
    x = rng.randint(1, max_x)
    b = rng.randint(0, max_b)
    if rng.random() < 0.5 and a * x - b >= 0:
        b = -b
    c = a * x + b
    sign = "+" if b >= 0 else "-"
    return Problem("linear", (a, b, c), f"Solve for $x$: ${a}x {sign} {abs(b)} = {c}$.")


def divide_steps(n: int, a: int) -> list[Step]:
    """n / a by trying the multiples of a in turn (when the quotient is a digit 1..9).

    Why: a quotient recalled in one step is a fact per (n, a) pair that a small model meets
    rarely; walking `a x 1, a x 2, ...` until the product is n uses only the multiplication
    table, which every family practises, and is the try-and-check habit of a long thought.
    Each try says whether it hit n, restating n (`7 x 2 = 14 (not 56)`): deciding when to stop
    then compares the product with the n written just before it, not with one in the line's
    head; without it a tiny student's most common error was one try too many.
    """
    if a < 1 or n < a or n % a or n // a > 9:
        return []
    tries = ", ".join(f"{a} x {k} = {a * k} ({'yes' if a * k == n else f'not {n}'})"
                      for k in range(1, n // a + 1))
    return [Step(f"Try multiples of {a} until {n}: {tries}.", "")]


def solve_linear(a: int, b: int, c: int) -> Solution:
    """Move the constant (column by column when the numbers allow it), then divide."""
    rhs = c - b
    if b >= 0:
        steps = [Step(f"Subtract {b} from both sides: {a}x = {c} - {b}.", "")]
        if c >= b >= 0:
            steps += column_subtract(c, b)
        steps.append(Step(f"So {c} - {b} = {{v}}.", str(rhs), str(rhs + 1)))
    else:
        steps = [Step(f"Add {-b} to both sides: {a}x = {c} + {-b}.", "")]
        if c >= 0:
            steps += column_add(c, -b)
        steps.append(Step(f"So {c} + {-b} = {{v}}.", str(rhs), str(rhs - 1)))
    x = Fraction(rhs, a)
    plain = f"{x.numerator}/{x.denominator}" if x.denominator > 1 else str(x.numerator)
    steps += divide_steps(rhs, a)
    steps.append(Step(f"Divide both sides by {a}: x = {rhs} / {a} = {{v}}.", plain,
                      str(x.numerator + 1) if x.denominator == 1 else None))
    sign = "+" if b >= 0 else "-"
    check = (f"Check: {a} x {plain} = {rhs}, and {rhs} {sign} {abs(b)} = {c}.")
    return Solution("linear", _latex_fraction(x), steps, check)


# --- sums of fractions ------------------------------------------------------------------------

def gen_fractions(rng: random.Random, max_den: int = 6) -> Problem:
    b, d = rng.randint(2, max_den), rng.randint(2, max_den)
    a, c = rng.randint(1, b - 1), rng.randint(1, d - 1)
    # Short template on purpose: every word 8-gram of the text holds all four numbers, so n-gram
    # decontamination never confuses two different problems that share template words.
    text = f"Compute $\\frac{{{a}}}{{{b}}} + \\frac{{{c}}}{{{d}}}$ in lowest terms."
    return Problem("fractions", (a, b, c, d), text)


def prime_factors(n: int) -> list[int]:
    """Prime factors of n >= 2 with multiplicity, smallest first (12 -> [2, 2, 3])."""
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out + ([n] if n > 1 else [])


def reduce_steps(num: int, den: int) -> list[Step]:
    """num/den to lowest terms by trying each prime factor of the denominator in turn.

    Why not `gcd(num, den) = g` in one step: that is a fact per pair of numbers, which a small
    model meets too rarely to learn; "is 8 a multiple of 2" and "8 / 2 = 4" recur everywhere.
    """
    factors = prime_factors(den)
    steps = [Step(f"Prime factors of {den}: {', '.join(map(str, factors))}.", "")]
    for p in factors:
        if num % p:
            steps.append(Step(f"{p}: {num} is not a multiple of {p}.", ""))
            continue
        steps.append(Step(f"{p}: {num} / {p} = {{v}}, {den} / {p} = {den // p}, so "
                          f"{num // p}/{den // p}.", str(num // p), str(num // p + 1)))
        num, den = num // p, den // p
    return steps


def solve_fractions(a: int, b: int, c: int, d: int) -> Solution:
    """Common denominator, scale each fraction (one fact per step), add, reduce."""
    den = b * d // gcd(b, d)
    ka, kc = den // b, den // d
    na, nc = a * ka, c * kc
    num = na + nc
    q = Fraction(num, den)
    steps = [
        Step(f"Common denominator of {b} and {d}: lcm({b}, {d}) = {{v}}.", str(den),
             str(b * d + 1)),
        Step(f"{a}/{b}: {den} / {b} = {{v}}, {a} x {ka} = {na}, so {na}/{den}.", str(ka)),
        Step(f"{c}/{d}: {den} / {d} = {{v}}, {c} x {kc} = {nc}, so {nc}/{den}.", str(kc)),
        Step(f"Add the numerators: {na} + {nc}.", ""),
        *column_add(na, nc),
        Step(f"So {na} + {nc} = {{v}}, and the sum is {num}/{den}.", str(num), str(num + 1)),
        *reduce_steps(num, den),
        Step("In lowest terms: {v}.", f"{q.numerator}/{q.denominator}"),
    ]
    check = (f"Check: {q.numerator} and {q.denominator} have no common factor, and "
             f"{q.numerator}/{q.denominator} = {num}/{den}.")
    return Solution("fractions", _latex_fraction(q), steps, check)


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
