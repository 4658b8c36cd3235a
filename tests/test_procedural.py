"""Procedural problems: exact answers, parseable text, disjoint train/held-out splits."""

from fractions import Fraction

import pytest

from longthought.problems import procedural

FAMILIES = ["addition", "multiplication", "linear", "fractions"]


def _value(answer: str) -> Fraction:
    if answer.startswith("\\frac") or answer.startswith("-\\frac"):
        sign = -1 if answer.startswith("-") else 1
        num, den = answer.split("{")[1].rstrip("}"), answer.split("{")[2].rstrip("}")
        return sign * Fraction(int(num), int(den))
    return Fraction(int(answer))


def _truth(family: str, key: tuple[int, ...]) -> Fraction:
    if family == "addition":
        return Fraction(key[0] + key[1])
    if family == "multiplication":
        return Fraction(key[0] * key[1])
    if family == "linear":
        a, b, c = key
        return Fraction(c - b, a)
    a, b, c, d = key
    return Fraction(a, b) + Fraction(c, d)


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_answers_are_exact_and_text_parses_back(split):
    rows = procedural.generate(FAMILIES, 400, seed=3, split=split)
    assert len(rows) == 400 and len({r["problem_id"] for r in rows}) == 400
    for row in rows:
        family, key = procedural.parse(row["problem"])
        assert row["problem_id"].startswith(family)
        assert _value(row["answer"]) == _truth(family, key)
        sol = procedural.solve(row["problem"])
        assert sol.answer == row["answer"]
        assert sol.steps and all("{v}" not in s.render() for s in sol.steps)


def test_fraction_answers_are_reduced_latex():
    rows = procedural.generate({"fractions": {"max_den": 9}}, 200, seed=1, split="train")
    fracs = [r["answer"] for r in rows if "frac" in r["answer"]]
    assert fracs
    for ans in fracs:
        q = _value(ans)
        assert ans == f"\\frac{{{q.numerator}}}{{{q.denominator}}}"


def test_train_and_heldout_are_disjoint_by_construction():
    train = procedural.generate(FAMILIES, 2000, seed=1, split="train")
    held = procedural.generate(FAMILIES, 300, seed=1, split="heldout")
    assert not {r["problem"] for r in train} & {r["problem"] for r in held}
    for row in held:
        assert procedural.split_of(*procedural.parse(row["problem"])) == "heldout"


def test_same_seed_same_problems_and_different_seed_differs():
    a = procedural.generate(FAMILIES, 50, seed=5, split="train")
    b = procedural.generate(FAMILIES, 50, seed=5, split="train")
    c = procedural.generate(FAMILIES, 50, seed=6, split="train")
    assert a == b and a != c


def test_bad_requests_fail_clearly():
    with pytest.raises(ValueError, match="unknown problem families"):
        procedural.generate(["calculus"], 5, seed=1, split="train")
    with pytest.raises(ValueError, match="distinct"):
        procedural.generate({"addition": {"digits": 1}}, 500, seed=1, split="train")
    assert procedural.solve("What is the capital of France?") is None


def test_an_exhausted_family_leaves_the_rotation_and_others_fill_in():
    # 2-digit x 1-digit has only ~580 train problems: the rest of 1,200 come from addition
    rows = procedural.generate({"multiplication": {"digits": 2, "by_digits": 1},
                                "addition": {"digits": 3}}, 1200, seed=1, split="train")
    fams = [r["problem_id"].split("-")[0] for r in rows]
    assert len(rows) == 1200 and len(set(r["problem"] for r in rows)) == 1200
    assert 500 < fams.count("multiplication") < 720 and fams.count("addition") > 480


def _written_digits(steps) -> str:
    """The digits a column procedure writes, most significant first (final carry included)."""
    import re

    digits = []
    for s in steps:
        m = re.search(r"write (\d)", s.render())
        if m:
            digits.append(m.group(1))
    return "".join(reversed(digits)).lstrip("0") or "0"


@pytest.mark.parametrize("a,b", [(0, 0), (5, 7), (437, 85), (999, 1), (12, 9988), (505, 505)])
def test_column_addition_writes_the_sum(a, b):
    assert _written_digits(procedural.column_add(a, b)) == str(a + b)


@pytest.mark.parametrize("a,b", [(65, 23), (81, 49), (100, 1), (1000, 999), (42, 42), (7, 0)])
def test_column_subtraction_borrows_and_writes_the_difference(a, b):
    steps = procedural.column_subtract(a, b)
    assert _written_digits(steps) == str(a - b)
    # a borrow is taken exactly where the written digits of a - b need one
    needs = [(a // 10**i) % 10 < (b // 10**i) % 10 + ((a % 10**i) < (b % 10**i))
             for i in range(len(str(a)))]
    assert ["borrow 1." in s.render() for s in steps[2:]] == needs


def test_every_arithmetic_step_is_one_fact():
    # a column sum is the digits' sum, then the carry added to it: two facts, not one of three
    lines = [s.render() for s in procedural.solve("Compute $583 + 497$.").steps]
    assert lines[2:4] == ["ones: 3 + 7 = 10, write 0 carry 1.",
                          "tens: 8 + 9 = 17, 17 + 1 = 18, write 8 carry 1."]
    # a multiplication line states the table fact, then adds the carry in single digits
    sol = procedural.solve("Compute $47 \\times 8$.")
    lines = [s.render() for s in sol.steps]
    assert "ones: 7 x 8 = 56, 6 + 0 = 6, write 6 carry 5 + 0 = 5." in lines
    assert "tens: 4 x 8 = 32, 2 + 5 = 7, write 7 carry 3 + 0 = 3." in lines
    # moving a linear equation's constant is a column subtraction, then one division fact
    sol = procedural.solve("Solve for $x$: $8x + 49 = 81$.")
    lines = [s.render() for s in sol.steps]
    assert "ones: 1 - 9 is negative, borrow: 11 - 9 = 2, write 2 borrow 1." in lines
    assert "tens: 8 - 1 = 7, 7 - 4 = 3, write 3 borrow 0." in lines  # the borrow, then the digit
    assert ("Try multiples of 8 until 32: 8 x 1 = 8 (not 32), 8 x 2 = 16 (not 32), "
            "8 x 3 = 24 (not 32), 8 x 4 = 32 (yes).") in lines
    assert lines[-1] == "Divide both sides by 8: x = 32 / 8 = 4."


def test_linear_problems_have_positive_solutions_and_any_equation_still_solves():
    rows = procedural.generate({"linear": {"max_coef": 9, "max_x": 9, "max_b": 50}}, 300, seed=4,
                               split="train")
    for row in rows:
        _, (a, b, c) = procedural.parse(row["problem"])
        assert 1 <= int(row["answer"]) <= 9 and c >= 0
    # text from elsewhere (negative constants, non-integer solutions) is still solved exactly
    assert procedural.solve("Solve for $x$: $3x - 40 = -10$.").answer == "10"
    assert procedural.solve("Solve for $x$: $3x + 1 = 5$.").answer == "\\frac{4}{3}"
