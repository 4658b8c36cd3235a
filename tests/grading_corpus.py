"""A labelled regression corpus for the answer checker: gold / response / is-it-correct.

Written here from the answer shapes real models and real datasets produce: long R1-style outputs
(a `<think>` block with intermediate values, sometimes an intermediate `\\boxed{}`, then the
answer), o1-style outputs without a thinking block, Minerva-style "Final Answer: The final
answer is $X$. I hope it is correct.", chat replies that ran into the next turn, Sky-T1 markers,
truncated thoughts, refusals, GPQA letters; golds as pools and benchmarks give them (bare,
`$...$`, `10/9`, `28 percent`, a whole reference solution). The label is what a careful human
grader says, not what any checker says: where a checker misses, the agreement figure shows it
(`benchmarks/bench_grading.py` prints it for the project's checker and for math-verify alone).

`CASES` is a list of `Case`; `response(case)` is the full text a model would have returned.
"""

from __future__ import annotations

from dataclasses import dataclass

_THOUGHTS = [
    "Okay, let me read the problem again carefully. We need the final quantity, so let me set up "
    "the relationships first. If the first part is $a$ and the second is $b$, then $a + b = 17$ "
    "and $a - b = 3$, which gives $a = 10$ and $b = 7$. Hmm, but wait, that was for the warm-up "
    "version of the question. Let me redo it with the actual numbers.",
    "Let me try small cases. For $n = 1$ we get $2$, for $n = 2$ we get $6$, for $n = 3$ we get "
    "$12$. The differences are $4, 6$, so the pattern looks quadratic: $n(n+1)$. Let me verify "
    "with $n = 4$: $4 \\cdot 5 = 20$. Yes, that matches a direct count.",
    "First I'll compute the discriminant: $b^2 - 4ac = 25 - 24 = 1$. So the roots are "
    "$\\frac{5 \\pm 1}{2}$, that is $3$ and $2$. Wait, I should double-check the sign of $b$. The "
    "equation is $x^2 - 5x + 6 = 0$, so $b = -5$, fine.",
    "Alternatively, I could use coordinates. Put the first vertex at the origin and the second at "
    "$(4, 0)$. Then the third vertex is at $(1, 3)$, and the area is $\\frac{1}{2} \\cdot 4 \\cdot "
    "3 = 6$. Hmm, the problem asks for something else, though, so this is only a check.",
    "Let me be careful with the arithmetic. $37 \\times 12 = 444$, and $444 - 19 = 425$. Then "
    "dividing by $5$ gives $85$. Actually, let me recompute $37 \\times 12$: "
    "$30 \\times 12 = 360$, $7 \\times 12 = 84$, total $444$. Good.",
    "I wonder whether there is a symmetry argument. Swapping $x$ and $y$ leaves the expression "
    "unchanged, so the extremum should occur at $x = y$. Then the constraint $x + y = 8$ gives "
    "$x = y = 4$ and the product is $16$. But the question is not about the product, so let me go "
    "back to what is actually asked.",
]


@dataclass(frozen=True)
class Case:
    """One labelled pair. `shape`: r1 (a <think> block first), o1 (worked text, no thinking
    block) or raw (the response exactly as written)."""

    kind: str
    gold: str
    final: str
    label: bool
    shape: str = "r1"
    boxed_in_thought: str | None = None  # an intermediate \boxed{} inside the thought
    problem: str | None = None  # multiple-choice options live here
    note: str = ""


def _thought(i: int, boxed: str | None) -> str:
    parts = [_THOUGHTS[(i + j) % len(_THOUGHTS)] for j in range(4)]
    if boxed is not None:
        parts.insert(2, f"So tentatively the answer would be $\\boxed{{{boxed}}}$. Wait, let me "
                        "check that again before committing to it.")
    parts.append("Let me double-check everything once more. The steps are consistent, so I am "
                 "fairly confident now.")
    return "\n\n".join(parts)


def response(case: Case, index: int = 0) -> str:
    """The full response text for a case (the thought is deterministic in `index`)."""
    if case.shape == "raw":
        return case.final
    if case.shape == "o1":
        steps = "\n\n".join(_THOUGHTS[(index + j) % len(_THOUGHTS)] for j in range(2))
        return f"Let's solve this step by step.\n\n{steps}\n\n{case.final}"
    return f"<think>\n{_thought(index, case.boxed_in_thought)}\n</think>\n\n{case.final}"


_MC = ("Which value is the photon energy?\n\nA) 1.1 eV\nB) 2.4 eV\nC) 0.8 eV\nD) 3.2 eV")
_MC2 = ("What is the capital of France?\n\n(A) Lyon\n(B) Paris\n(C) Nice\n(D) Lille")
_REFUSAL = ("I'm sorry, but I couldn't find a problem I know how to solve in your message. Could "
            "you state it again, for example as \"Compute $12 + 34$.\"?")


def C(kind: str, gold: str, final: str, label: bool, shape: str = "r1", **kw) -> Case:
    return Case(kind, gold, final, label, shape, **kw)


CASES: list[Case] = [
    # --- one boxed answer, forms that must be equal or not ------------------------------------
    C("boxed", "34", "The largest value is $\\boxed{34}$.", True),
    C("boxed", "\\frac{10}{9}", "Thus the ratio is $\\boxed{\\dfrac{10}{9}}$.", True),
    C("boxed", "10/9", "**Final Answer**\n\\[\n\\boxed{\\frac{10}{9}}\n\\]", True),
    C("boxed", "\\frac{1}{2}", "So the probability is $\\boxed{0.5}$.", True),
    C("boxed", "\\frac{1}{3}", "The probability is approximately $\\boxed{0.33}$.", False),
    C("boxed", "2\\sqrt{3}", "Hence $AB = \\boxed{\\sqrt{12}}$.", True),
    C("boxed", "\\sqrt{2}/2", "$\\boxed{\\frac{\\sqrt{2}}{2}}$", True),
    C("boxed", "x^2+2x+1", "The polynomial is $\\boxed{(x+1)^2}$.", True),
    C("boxed", "-\\frac{3}{4}", "The slope is $\\boxed{-0.75}$.", True),
    C("boxed", "7", "There are $\\boxed{8}$ such integers.", False),
    C("boxed", "\\pi", "The area is $\\boxed{3.14}$.", False, note="exact answer asked"),
    C("boxed", "\\left( 3, \\frac{\\pi}{2} \\right)",
      "The polar coordinates are $\\boxed{\\left(3, \\frac{\\pi}{2}\\right)}$.", True),
    C("boxed", "(3,\\pi/2)", "$\\boxed{(3, \\frac{\\pi}{2})}$", True),
    C("boxed", "p - q", "The sum equals $\\boxed{p-q}$.", True),
    C("boxed", "p - q", "The sum equals $\\boxed{q-p}$.", False),
    C("boxed", "90^\\circ", "The angle is $\\boxed{90^\\circ}$.", True),
    C("boxed", "90", "The angle measures $\\boxed{90^{\\circ}}$.", True),
    C("boxed", "1", "The solution is $\\boxed{x=1}$.", True),
    C("boxed", "y=2x+3", "The line is $\\boxed{y = 3 + 2x}$.", True),
    C("boxed", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
      "$\\boxed{\\begin{pmatrix}1\\\\2\\end{pmatrix}}$", True),
    C("boxed", "6", "Therefore the number of ways is $\\boxed{6}$.", True, boxed_in_thought="12"),
    C("boxed", "12", "Therefore the number of ways is $\\boxed{6}$.", False, boxed_in_thought="12",
      note="the box inside the thought is not the answer"),
    C("boxed", "2^{10}", "The count is $\\boxed{1024}$.", True),
    C("boxed", "4", "$\\boxed{ 4 }$", True),
    C("boxed", "\\frac{7}{2}", "The mean is $\\boxed{3.5}$.", True),
    C("boxed", "3.5", "The mean is $\\boxed{\\frac72}$.", True),
    C("boxed", "e^2", "The limit is $\\boxed{e^{2}}$.", True),
    C("boxed", "\\log_2 5", "$x = \\boxed{\\frac{\\ln 5}{\\ln 2}}$", True),
    C("boxed", "\\sin x", "The derivative is $\\boxed{\\cos x}$.", False),
    C("boxed", "36\\pi", "The volume is $\\boxed{36 \\pi}$.", True),
    C("boxed", "36\\pi", "The volume is $\\boxed{113.1}$.", False),
    C("boxed", "\\frac{\\sqrt{3}}{3}", "$\\tan 30^\\circ = \\boxed{\\frac{1}{\\sqrt{3}}}$", True),
    C("boxed", "2+\\sqrt{3}", "The maximum is $\\boxed{\\sqrt{3}+2}$.", True),
    C("boxed", "\\frac{1}{2}", "The answer is $\\boxed{\\frac{1}{3}}$.", False),
    C("boxed", "x^2+1", "The quotient is $\\boxed{x^2-1}$.", False),
    C("boxed", "5", "The value is $\\boxed{5.0001}$.", False),
    C("boxed", "2021", "$\\boxed{\\pm 2021}$", False, note="Math-Verify #13"),
    C("boxed", "13", "The remainder is $\\boxed{31}$.", False),
    C("boxed", "-5", "The minimum is $\\boxed{5}$.", False),
    C("boxed", "840", "$\\boxed{840}$\n\nThus the answer is $\\boxed{840}$.", True,
      note="two boxes with one value (Math-Verify read 840840 before 0.8)"),
    C("boxed", "4", "$$\n\\boxed{4}\n$$", True, shape="o1"),
    C("boxed", "10", "We get $\\boxed{8}$.\n\nWait, I made an arithmetic slip: the second term "
      "is 6, not 4, so the total is 10 after all, as the check below confirms.\n\nFinal answer: "
      "$\\boxed{10}$", True),
    C("boxed", "0", "So the remainder is $\\boxed{0}$.", True, shape="o1"),
    C("boxed", "17", "The answer is $\\boxed{17}$.", True, shape="o1"),
    C("boxed", "17", "The answer is $\\boxed{71}$.", False, shape="o1"),
    # --- several boxed answers: one set or tuple ----------------------------------------------
    C("multi_box", "(1,2),(2,1)", "The solutions are $\\boxed{(1, 2)}, \\boxed{(2, 1)}$.", True),
    C("multi_box", "k=45, n=2", "$\\boxed{k = 45} \\quad\\text{and}\\quad \\boxed{n = 2}$", True),
    C("multi_box", "\\{1,2,3\\}", "\\boxed{1},\\boxed{2},\\boxed{3}", True),
    C("multi_box", "1, 2, 3", "The roots are $\\boxed{1}$, $\\boxed{2}$, and $\\boxed{3}$.", True,
      shape="o1"),
    C("multi_box", "1,2,3", "The roots are $\\boxed{1}$ and $\\boxed{2}$.", False),
    C("multi_box", "2", "So $x = \\boxed{2}$ or $x = \\boxed{-2}$.", False,
      note="an extra answer the problem excludes"),
    C("multi_box", "-2, 2", "So $x=\\boxed{-2}$ or $x=\\boxed{2}$.", True),
    C("multi_box", "\\pm 2", "$x = \\boxed{2}$ and $x = \\boxed{-2}$", True),
    C("multi_box", "3, 5", "The two values are $\\boxed{3}$ and $\\boxed{5}$.", True),
    C("multi_box", "(1,2),(2,1)", "The solution is $\\boxed{(1,2)}$.", False),
    C("multi_box", "3", "$\\boxed{3, 4}$", False, note="any overlap is not a match"),
    C("multi_box", "\\{3, 4\\}", "$\\boxed{3}$", False),
    C("multi_box", "5", "First I get $\\boxed{5}$, and checking again gives $\\boxed{5}$.", True),
    C("multi_box", "1, 5", "The solutions are $x=\\boxed{1}$ and $x=\\boxed{5}$.", True),
    # --- no box at all: what math-verify's own extraction finds --------------------------------
    C("no_box", "10455", "Final Answer: The final answer is $10,455$. I hope it is correct.",
      True, shape="raw"),
    C("no_box", "10455", "Final Answer: The final answer is $10,454$. I hope it is correct.",
      False, shape="raw"),
    C("no_box", "34", "The largest $n$ is 34.", True, shape="raw"),
    C("no_box", "\\frac{2}{3}", "Dividing, the probability is 2/3 <|im_start|>user", True,
      shape="raw"),
    C("no_box", "100\\%", "So the price increases by 100%.", True, shape="raw"),
    C("no_box", "100\\%", "So the price increases by 50%.", False, shape="raw"),
    C("no_box", "42", "Therefore, the answer is 42.", True, shape="o1"),
    C("no_box", "42", "Therefore, the answer is 24.", False, shape="o1"),
    C("no_box", "\\frac{5}{8}", "**Answer:** $\\frac{5}{8}$", True, shape="o1"),
    C("no_box", "7", "The answer is: 7", True, shape="raw"),
    C("no_box", "7", "The answer is $7$.", True),
    C("no_box", "3", "Hence $n = 3$.", True),
    C("no_box", "3", "Hence $n = 4$.", False),
    C("no_box", "12", "After simplifying we obtain $x = 12$, which satisfies the original "
      "equation.", True, shape="raw"),
    C("no_box", "-1", "Final answer: $-1$", True, shape="o1"),
    C("no_box", "5", "The area is 5 square units.", True, shape="raw"),
    C("no_box", "73", "The answer is **73**.", True, shape="o1", note="Math-Verify #44"),
    C("no_box", "11", "So there are 11 such numbers.", True, shape="o1"),
    C("no_box", "11", "So there are 12 such numbers.", False, shape="o1"),
    C("no_box", "4", "**Final Answer**\n\n$4$", True, shape="o1"),
    C("no_box", "\\frac{1}{4}", "Thus the probability that both are red is $\\frac{1}{4}$.",
      True, shape="o1"),
    C("no_box", "9", "The answer is 9.", True),
    C("no_box", "9", "The answer is 6.", False),
    # --- golds as people write them --------------------------------------------------------------
    C("gold_form", "10/9", "$\\boxed{\\frac{10}{9}}$", True, shape="raw"),
    C("gold_form", "$28\\%$", "The percentage is $28\\%$.", True, shape="raw"),
    C("gold_form", "28 percent", "$\\boxed{28\\%}$", True),
    C("gold_form", "28 pct", "$\\boxed{28\\%}$", True),
    C("gold_form", "28 %", "$\\boxed{28}$", True),
    C("gold_form", "28\\%", "$\\boxed{0.28}$", True),
    C("gold_form", "$\\frac{3}{5}$", "$\\boxed{0.6}$", True),
    C("gold_form", "Let $x$ be the number. Then $2x+3=11$, so $x=\\boxed{4}$.",
      "The number is $\\boxed{4}$.", True, note="gold is a whole solution"),
    C("gold_form", "Using the identity, the value is $\\boxed{\\frac{\\sqrt{3}}{2}}$.",
      "$\\boxed{\\frac{\\sqrt3}{2}}$", True),
    C("gold_form", "The solutions are $x=\\boxed{1}$ and $x=\\boxed{5}$.",
      "$\\boxed{1, 5}$", True),
    C("gold_form", "Counting carefully gives $\\boxed{12}$ arrangements.", "$\\boxed{13}$", False),
    C("gold_form", "27.0", "$\\boxed{27}$", True),
    C("gold_form", "\\(\\dfrac{1}{4}\\)", "$\\boxed{1/4}$", True),
    C("gold_form", "0.25", "$\\boxed{25\\%}$", True),
    C("gold_form", "\\$18.90", "The total is $\\boxed{18.90}$.", True),
    C("gold_form", "18.9", "The total is $\\boxed{\\$18.90}$.", True),
    # --- thousands separators, units, currency ---------------------------------------------------
    C("units", "10455", "$\\boxed{10,455}$", True),
    C("units", "10455", "$\\boxed{10{,}455}$", True),
    C("units", "1000.99", "The total cost is 1,000.99€.", True, shape="raw"),
    C("units", "1000.99", "$\\boxed{\\$1,000.99}$", True),
    C("units", "32348", "The answer is \\$32,348.", True, shape="raw"),
    C("units", "\\$32,348", "$\\boxed{32348}$", True),
    C("units", "5", "$\\boxed{5\\text{ cm}}$", True),
    C("units", "5", "The area is $\\boxed{5 \\text{ cm}^2}$.", True),
    C("units", "12", "$\\boxed{12 \\text{ inches}}$", True),
    C("units", "1,000,000", "$\\boxed{10^6}$", True),
    C("units", "2500", "$\\boxed{2,500 \\text{ dollars}}$", True),
    C("units", "18", "It takes $\\boxed{18 \\text{ minutes}}$.", True),
    C("units", "1.5", "$\\boxed{1.5\\,\\text{m}}$", True),
    C("units", "1,234", "$\\boxed{1234}$", True),
    C("units", "1234", "$\\boxed{1243}$", False),
    C("units", "45", "$\\boxed{45^\\circ}$", True),
    C("units", "50", "She earns $\\boxed{\\$60}$.", False),
    # --- answers in words -------------------------------------------------------------------------
    C("text", "\\text{Evelyn}", "$\\boxed{\\text{Evelyn}}$", True),
    C("text", "\\text{Evelyn}", "The answer is Evelyn.", True, shape="o1"),
    C("text", "\\text{Evelyn}", "$\\boxed{\\text{Evlyne}}$", False, note="an anagram"),
    C("text", "\\text{Evelyn}", "$\\boxed{\\text{Bob}}$", False),
    C("text", "\\text{(C)}", "$\\boxed{\\text{(C)}}$", True),
    C("text", "\\text{Tuesday}", "$\\boxed{\\text{Tuesday}}$", True),
    C("text", "\\text{Tuesday}", "So the day is $\\boxed{\\textbf{Tuesday}}$.", True),
    C("text", "\\text{even}", "$\\boxed{\\text{odd}}$", False),
    C("text", "\\text{no}", "$\\boxed{\\text{No}}$", True),
    C("text", "\\text{yes}", "The answer is: yes.", True, shape="raw"),
    # --- intervals and inequalities ---------------------------------------------------------------
    C("interval", "[-2,7]", "$\\boxed{[-2, 7]}$", True),
    C("interval", "[-2,7]", "$\\boxed{(-2, 7)}$", False),
    C("interval", "(-\\infty, 3)", "$\\boxed{(-\\infty,3)}$", True),
    C("interval", "(-\\infty,-2]\\cup[3,\\infty)",
      "$\\boxed{(-\\infty, -2] \\cup [3, \\infty)}$", True),
    C("interval", "x \\in [-2, 7]", "$\\boxed{[-2,7]}$", True),
    C("interval", "[-\\frac{3}{2},-1]\\cup[1,\\frac{3}{2}]", "$1 \\le |z| \\le 3/2$", True,
      shape="raw", note="equivalent for real z; math-verify compares sets with relations as "
      "different"),
    C("interval", "[1,5)", "$\\boxed{1 \\le x < 5}$", True),
    C("interval", "(2, \\infty)", "$\\boxed{x > 2}$", True),
    C("interval", "(0,1)", "$\\boxed{(0,1]}$", False),
    C("interval", "[0, \\infty)", "$\\boxed{[0,\\infty)}$", True),
    # --- multiple choice (GPQA): graded by letter -------------------------------------------------
    C("choice", "C", "The answer is (C).", True),
    C("choice", "C", "Answer: C", True),
    C("choice", "C", "$\\boxed{C}$", True),
    C("choice", "C", "$\\boxed{(C)}$", True),
    C("choice", "C", "**Answer: (B)**", False),
    C("choice", "B", "After comparing the options, the correct option is B.", True, shape="o1"),
    C("choice", "A", "$\\boxed{\\text{A}}$", True),
    C("choice", "D", "The answer is 3.2 eV.", True, problem=_MC, note="the option's text"),
    C("choice", "D", "$\\boxed{2.4 \\text{ eV}}$", False, problem=_MC),
    C("choice", "B", "Answer: B) Paris", True, problem=_MC2),
    C("choice", "B", "The final answer is Paris.", True, problem=_MC2),
    C("choice", "A", "I considered A, but the correct answer is (D).", False),
    C("choice", "D", "I considered A, but the correct answer is (D).", True),
    C("choice", "C", "(C)", True),
    C("choice", "E", "$\\boxed{E}$", True, shape="o1"),
    C("choice", "B", "The final answer is $\\boxed{B}$.", True),
    # --- thinking blocks: only the text after the thought counts ---------------------------------
    C("thinking", "5", "<think>\nLet me compute. $2 + 3 = 5$, so it's $\\boxed{5}$ and now I "
      "should double-check the", False, shape="raw",
      note="no answer: thought cut off before </think>"),
    C("thinking", "5", "<think>\nThe answer is $\\boxed{5}$... wait\n</think>\n\n", False,
      shape="raw", note="no answer: nothing after the thought"),
    C("thinking", "5", "The answer is $\\boxed{5}$.", True, boxed_in_thought="7"),
    C("thinking", "7", "The answer is $\\boxed{5}$.", False, boxed_in_thought="7"),
    C("thinking", "5", "<|begin_of_thought|>\nFirst guess $\\boxed{3}$, but the carry is "
      "wrong.\n<|end_of_thought|>\n\n<|begin_of_solution|>\nAdding column by column gives "
      "$\\boxed{5}$.\n<|end_of_solution|>", True, shape="raw"),
    C("thinking", "3", "<|begin_of_thought|>\nFirst guess $\\boxed{3}$, but the carry is "
      "wrong.\n<|end_of_thought|>\n\n<|begin_of_solution|>\nAdding column by column gives "
      "$\\boxed{5}$.\n<|end_of_solution|>", False, shape="raw"),
    C("thinking", "5", "<|begin_of_thought|>\nAdding: $2+3 = \\boxed{5}$ and then", False,
      shape="raw", note="no answer: Sky-T1 thought cut off"),
    C("thinking", "12", "The product is 12.\n</think>\n\nThe answer is $\\boxed{12}$.", True,
      shape="raw", note="the template put <think> in the prompt"),
    C("thinking", "12", "So it's $\\boxed{12}$, I think.\n</think>\n\nI could not finish the "
      "verification.", False, shape="raw", note="no answer: only the thought had one"),
    C("thinking", "6", "So $\\boxed{6}$.", True, boxed_in_thought="6"),
    # --- refusals and replies with no answer ------------------------------------------------------
    C("refusal", "46", _REFUSAL, False, shape="raw"),
    C("refusal", "2", "I cannot help with that request.", False, shape="raw"),
    C("refusal", "3", "Could you clarify whether $x$ is an integer? If so, is it $3$?", False,
      shape="raw"),
    C("refusal", "4", "I'm not able to see the figure you mention. Could you describe it?",
      False),
    C("refusal", "8", "", False, shape="raw"),
    C("refusal", "15", "Let me know if you want me to walk through the computation of $3 \\times "
      "5$ in more detail?", False, shape="o1"),
]
