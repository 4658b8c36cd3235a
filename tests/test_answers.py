"""Answer extraction and checking: equivalences, real benchmark golds, verdict reasons."""

from __future__ import annotations

import json

import pytest
from conftest import BENCH_DIR

from longthought.answers import (
    AnswerChecker,
    check_answer,
    check_markers,
    extract_answer,
    extract_thinking,
    final_part,
    normalize_gold,
)

needs_shared = pytest.mark.skipif(not BENCH_DIR.is_dir(), reason="../shared benchmarks absent")


@pytest.fixture(scope="module")
def checker():
    with AnswerChecker(workers=2, timeout_s=10) as c:
        yield c


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so the total is \boxed{42}.", "42"),
        # several boxes close together are one answer (grouped as math-verify groups them)
        (r"first \boxed{1} then \boxed{\frac{1}{2}}", r"1, \frac{1}{2}"),
        (r"\boxed{(1, 2)}, \boxed{(2, 1)}", "(1, 2), (2, 1)"),
        (r"We get \boxed{2}. Hmm, wait, let me recheck this whole computation once more, "
         r"carefully, from the start: \boxed{3}", "3"),
        (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)"),
        (r"set \boxed{\{1,2\}} done", r"\{1,2\}"),
        (r"or \fbox{7}", "7"),
        (r"\boxed 5.", "5"),
        ("Therefore, the answer is $12$.", "12"),
        ("The final answer is: 3/4", "3/4"),
        ("work...\nAnswer: x = 2\n", "x = 2"),
        ("**Answer:** 17", "17"),
        ("we get\n$7$", None),  # no box, no answer line: math-verify's job, not the scan's
        ("no answer at all here", None),
        (r"cut off \boxed{12", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_final_part_cuts_the_thought():
    assert final_part("<think>maybe \\boxed{3}</think>\n\nThe result is \\boxed{4}.").text \
        == "The result is \\boxed{4}."
    cut = final_part("<think>so \\boxed{3}")  # a truncated thought has no answer at all
    assert cut.text is None and "cut off" in cut.detail
    sky = final_part("<|begin_of_thought|>t \\boxed{1}")
    assert sky.text is None and "<|end_of_thought|>" in sky.detail
    assert final_part("no markers \\boxed{2}").text == "no markers \\boxed{2}"
    assert final_part("thought</think>ans").text == "ans"  # <think> was in the prompt


def test_extract_thinking_formats():
    assert extract_thinking("<think>\nhmm\n</think>\n\nAns", "think") == ("hmm", "Ans")
    sky = ("<|begin_of_thought|>\nplan\n<|end_of_thought|>\n\n"
           "<|begin_of_solution|>\nsol \\boxed{2}\n<|end_of_solution|>")
    assert extract_thinking(sky, "sky") == ("plan", "sol \\boxed{2}")
    assert extract_thinking(sky, "auto") == ("plan", "sol \\boxed{2}")
    assert extract_thinking("plain text", "think") == (None, "plain text")
    assert extract_thinking("<think>cut", "think") == ("cut", "")
    assert extract_thinking("thought</think>ans", "think") == ("thought", "ans")
    with pytest.raises(ValueError, match="unknown thinking format"):
        extract_thinking("x", "nope")


def test_check_markers():
    assert check_markers("<think>a</think>b", "think") is None
    assert "no <think>" in check_markers("plain", "think")
    assert "unbalanced" in check_markers("<think>a<think>b</think>c", "think")
    assert "before" in check_markers("</think>a<think>b", "think") or \
        "unbalanced" in check_markers("</think>a<think>b", "think")
    assert check_markers("<think>a</think>", "think") == "nothing after </think>"
    assert check_markers("<think> </think>x", "think") == "empty thought"
    ok_sky = ("<|begin_of_thought|>t<|end_of_thought|>"
              "<|begin_of_solution|>s<|end_of_solution|>")
    assert check_markers(ok_sky, "sky") is None
    assert "solution" in check_markers("<|begin_of_thought|>t<|end_of_thought|>s", "sky")
    assert check_markers("anything", "plain") is None


def test_normalize_gold():
    assert normalize_gold(27.0) == "27"
    assert normalize_gold(2.5) == "2.5"
    assert normalize_gold(7) == "7"
    assert normalize_gold(None) == ""
    assert normalize_gold(float("nan")) == ""
    assert normalize_gold(" \\frac{1}{2} ") == "\\frac{1}{2}"
    # the three shapes a gold comes in: bare, LaTeX in delimiters, a whole solution
    assert normalize_gold("$28\\%$") == "28\\%"
    assert normalize_gold("\\(x+1\\)") == "x+1"
    assert normalize_gold("$$\\frac{10}{9}$$") == "\\frac{10}{9}"
    assert normalize_gold("27.0") == "27"
    solution = ("We have $r = 3$. The answer is $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$, "
                "as drawn.")
    assert normalize_gold(solution) == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert normalize_gold("so $\\boxed{2}$ or $\\boxed{3}$.") == "2, 3"
    assert normalize_gold("\\$32,348") == "\\$32,348"  # an escaped dollar is not a delimiter


EQUIVALENT = [
    (r"\frac{1}{2}", "0.5"),
    ("0.5", r"\frac{1}{2}"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\pi/2)"),
    (r"\text{Evelyn}", "Evelyn"),
    (r"\text{Evelyn}", r"\text{evelyn}"),
    ("27.0", "27"),
    (27.0, "27"),
    ("x=5", "5"),
    ("p - q", "p-q"),
    (r"\frac{14}{3}", r"\dfrac{14}{3}"),
    (r"90^\circ", "90"),
    (r"10\%", "10"),
    ("x^2+1", "1+x^2"),
    (r"\text{(C)}", "C"),
    ("B", r"\text{(B)}"),
    (r"\sqrt{51}", r"\sqrt{51}"),
]


@pytest.mark.parametrize(("gold", "answer"), EQUIVALENT)
def test_equivalent_forms(checker, gold, answer):
    v = checker.check([gold], [f"Thus \\boxed{{{answer}}}."])[0]
    assert v.correct is True and v.reason == "correct", v


NOT_EQUIVALENT = [
    ("p - q", "q-p"),
    (r"\text{Evelyn}", "Bob"),
    (r"\text{Evelyn}", "Evlyne"),  # an anagram: math-verify alone would call a product equal
    ("B", "C"),
    ("B", "12"),
    ("[2,5)", "(2,5)"),
    ("27", "28"),
    (r"\frac{1}{3}", "0.3"),
]


@pytest.mark.parametrize(("gold", "answer"), NOT_EQUIVALENT)
def test_wrong_forms(checker, gold, answer):
    v = checker.check([gold], [f"\\boxed{{{answer}}}"])[0]
    assert v.correct is False and v.reason == "wrong", v


def test_verdict_reasons(checker):
    golds = ["5", "5", "", "5"]
    responses = ["nothing to see", None, "\\boxed{5}", "\\boxed{" + "{" * 40 + "}" * 40 + "}"]
    v = checker.check(golds, responses)
    assert (v[0].correct, v[0].reason, v[0].extracted) == (False, "no_answer", None)
    assert v[1].reason == "no_answer" and "NoneType" in v[1].detail
    assert (v[2].correct, v[2].reason) == (None, "undecided")  # no gold
    assert (v[3].correct, v[3].reason) == (None, "undecided")
    with pytest.raises(ValueError, match="2 gold answers but 1 responses"):
        checker.check(["1", "2"], ["x"])


def test_check_answer_single_call():
    v = check_answer("\\frac{3}{4}", "so we get \\boxed{0.75}")
    assert (v.correct, v.reason, v.extracted) == (True, "correct", "0.75")
    v = check_answer("12", "the answer is 13")
    assert (v.correct, v.reason, v.extracted) == (False, "wrong", "13")


def _bench(name: str) -> list[dict]:
    return [json.loads(line) for line in (BENCH_DIR / name).read_text().splitlines() if line]


@needs_shared
@pytest.mark.parametrize("name", ["aime24.jsonl", "amc23.jsonl", "math500.jsonl"])
def test_benchmark_golds_match_themselves(checker, name):
    rows = _bench(name)
    golds = [r["answer"] for r in rows]
    boxed = [f"The final result is \\boxed{{{normalize_gold(g)}}}." for g in golds]
    verdicts = checker.check(golds, boxed)
    bad = [(g, v) for g, v in zip(golds, verdicts, strict=True) if v.correct is not True]
    assert not bad, bad[:5]


@needs_shared
def test_benchmark_golds_in_other_forms(checker):
    rows = {r["unique_id"]: r["answer"] for r in _bench("math500.jsonl")}
    amc = [r["answer"] for r in _bench("amc23.jsonl")]
    assert rows["test/precalculus/807.json"] == r"\left( 3, \frac{\pi}{2} \right)"
    pairs = [
        (rows["test/precalculus/807.json"], r"(3, \pi/2)"),
        (r"\text{Evelyn}", "Evelyn"),
        (amc[0], "27"),
        (amc[0], "27.00"),
    ]
    # plain-dollar and "answer is" forms of every AIME gold
    pairs += [(r["answer"], None) for r in _bench("aime24.jsonl")]
    golds = [g for g, _ in pairs]
    responses = [f"\\boxed{{{a}}}" if a is not None else f"So the answer is ${normalize_gold(g)}$."
                 for g, a in pairs]
    verdicts = checker.check(golds, responses)
    assert all(v.correct is True for v in verdicts), [
        (g, v) for g, v in zip(golds, verdicts, strict=True) if v.correct is not True]


def test_check_answer_cli(capsys):
    from longthought.cli import main

    assert main(["check-answer", "\\frac{1}{2}", "so \\boxed{0.5}"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["correct"] is True and out["reason"] == "correct" and out["extracted"] == "0.5"
    assert main(["check-answer", "3", "the answer is 4"]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "wrong"
    assert main(["check-answer", "3", "no idea"]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "no_answer"
    assert main(["check-answer", "34", "The largest $n$ is 34."]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "last_math"
    assert main(["check-answer", "--extraction", "boxed", "34", "The largest $n$ is 34."]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "no_answer"


def test_extraction_modes(checker):
    golds = ["34"] * 4
    responses = ["The largest $n$ is 34.", "<think>so 33?</think>\n\nThe answer is $\\boxed{34}$.",
                 "The answer is 34.", "<think>it is \\boxed{34}</think>\n\nThe answer is 34."]
    full = checker.check(golds, responses)  # the default: math-verify's full extraction
    boxed = checker.check(golds, responses, extraction="boxed")
    assert [v.reason for v in full] == ["correct"] * 4
    assert [v.method for v in full] == ["last_math", "boxed", "answer_phrase", "answer_phrase"]
    assert [v.reason for v in boxed] == ["no_answer", "correct", "no_answer", "no_answer"]
    assert "boxed" in boxed[0].detail
    with pytest.raises(ValueError, match="answer_extraction"):
        checker.check(["1"], ["1"], extraction="lenient")


def test_check_answer_without_options_grades_as_evaluation():
    v = check_answer("10455", "Final Answer: The final answer is $10,455$. I hope it is correct.")
    assert (v.correct, v.method) == (True, "answer_phrase")
    v = check_answer("34", "The largest $n$ is 34.", extraction="boxed")
    assert v.reason == "no_answer"


def test_refusal_is_no_answer_not_wrong(checker):
    refusal = ("I'm sorry, but I couldn't find a problem I know how to solve in your message. "
               "Could you state it again, for example as \"Compute $12 + 34$.\"?")
    for mode in ("full", "boxed"):
        v = checker.check(["46"], [refusal], extraction=mode)[0]
        assert (v.correct, v.reason, v.extracted) == (False, "no_answer", None)


GPQA = "Which is right?\n\nA) 1.1 eV\nB) 2.4 eV\nC) 0.8 eV\nD) 3.2 eV"


@pytest.mark.parametrize(("response", "letter"), [
    ("The answer is (C).", "C"), ("Answer: C", "C"), ("\\boxed{C}", "C"), ("\\boxed{(C)}", "C"),
    ("**Answer: (C)**", "C"), ("so the answer is 0.8 eV.", "C"), ("\\boxed{0.8 eV}", "C"),
    ("\\boxed{\\text{(C) } 0.8 eV}", "C"), ("(C)", "C"), ("Answer: I think it is (B).", "B"),
    ("A quick estimate first.\n\nThe correct option is D.", "D"),
])
def test_multiple_choice_by_letter(checker, response, letter):
    v = checker.check(["C"], [response], problems=[GPQA])[0]
    assert v.extracted == letter and v.correct is (letter == "C"), v


def test_multiple_choice_without_a_letter(checker):
    v = checker.check(["C"], ["I am not sure which one."], problems=[GPQA])[0]
    assert v.reason == "no_answer"
    v = checker.check(["C"], ["\\boxed{7}"], problems=[GPQA])[0]
    assert v.reason == "wrong" and "choice letter" in v.detail
