"""Hostile answers: nothing executes, nothing outlives its deadline by much, the run survives."""

from __future__ import annotations

import time

import pytest

from longthought.answers import AnswerChecker, check_many
from longthought.answers.pool import CRASHED, OK, TIMEOUT, DeadlinePool

TIMEOUT_S = 2.0


def _corpus(sentinel: str) -> list[str]:
    touch = f"__import__('os').system('touch {sentinel}')"
    return [
        f"\\boxed{{{touch}}}",
        f"The answer is {touch}",
        f"Answer: {touch}",
        f"\\boxed{{(lambda: open('{sentinel}', 'w'))()}}",
        "\\boxed{().__class__.__bases__[0].__subclasses__()}",
        f"\\boxed{{exec(\"open('{sentinel}','w')\")}}",
        f"\\boxed{{eval(compile('open(\"{sentinel}\",\"w\")','x','exec'))}}",
        "\\boxed{9^{9^{9^{9}}}}",
        "\\boxed{9^{9^{9}}}",
        "\\boxed{9**9**9**9}",
        "the answer is 9**9**9**9",
        "\\boxed{10^{123456789}}",
        "\\boxed{9999999!}",
        "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
        "\\boxed{" + "(" * 3000 + "1" + ")" * 3000 + "}",
        "\\boxed{" + "1" * 1_000_000 + "}",
        "x" * 1_000_000 + " \\boxed{3}",
        "\\boxed{" * 200_000,
        "Answer: " + "9" * 5000,
        "$" + "\\frac{1}{" * 400 + "2" + "}" * 400 + "$",
        "\\boxed{\\int_0^\\infty e^{-x^{x^{x}}} dx}",
        "\\boxed{\\sum_{n=1}^{10^{100}} n^{n}}",
        # shapes that make naive regexes quadratic
        "the answer is 5 " * 5000,
        "\\(" * 50_000,
        "$" * 100_000,
        "the answer is" + " " * 100_000 + "x",
        "Answer:" + "\t " * 50_000 + ".",
    ]


def test_extraction_stays_within_the_check_deadline(tmp_path):
    """Extraction runs in the parent (no worker to kill), so it must be linear on any input."""
    from longthought.answers.extract import extract_answer_detail

    for text in _corpus(str(tmp_path / "S")):
        start = time.process_time()  # CPU time: a busy machine must not fail a linear scan
        extract_answer_detail(text)
        assert time.process_time() - start < TIMEOUT_S, text[:60]


@pytest.mark.parametrize("gold", ["5", "C", "\\text{Evelyn}"])
def test_parent_side_of_every_check_stays_within_the_deadline(tmp_path, gold):
    """Everything before the parser (thinking cut, screen, scan, choice letters, refusal test)
    runs in the parent or the curation workers with no deadline: it must be fast on any input."""
    from longthought.answers import prepare
    from longthought.answers.checker import response_final

    for text in _corpus(str(tmp_path / "S")):
        start = time.process_time()  # CPU time: a busy machine must not fail a linear scan
        prepare(gold, response_final(text), "full", "Q?\n\nA) 1\nB) 2\nC) 5\nD) 7")
        assert time.process_time() - start < TIMEOUT_S, text[:60]


def test_adversarial_corpus_executes_nothing_and_finishes(tmp_path):
    sentinel = tmp_path / "SENTINEL"
    corpus = _corpus(str(sentinel))
    golds = ["5"] * len(corpus)
    start = time.monotonic()
    with AnswerChecker(workers=2, timeout_s=TIMEOUT_S) as checker:
        verdicts = checker.check(golds, corpus)
        elapsed = time.monotonic() - start
        # the pool is still usable after whatever the corpus did to its workers
        after = checker.check(["\\frac{1}{2}", "x+1"], ["\\boxed{0.5}", "\\boxed{1+x}"])
    assert not sentinel.exists()
    assert len(verdicts) == len(corpus)
    assert all(v.correct is not True for v in verdicts)
    assert {v.reason for v in verdicts} <= {"undecided", "timeout", "error", "wrong", "no_answer"}
    # every item is bounded: at worst each one costs a deadline plus a worker restart
    assert elapsed < len(corpus) * (TIMEOUT_S + 5)
    assert [v.reason for v in after] == ["correct", "correct"]
    # the cheap screens decide most of the corpus without a parser
    assert sum(v.reason == "undecided" for v in verdicts) >= len(corpus) // 2


def test_megabyte_answers_are_refused_fast():
    start = time.monotonic()
    v = check_many(["1"], ["\\boxed{" + "1" * 1_000_000 + "}"], timeout_s=TIMEOUT_S, workers=1)[0]
    assert (v.correct, v.reason) == (None, "undecided") and "oversized" in v.detail
    assert time.monotonic() - start < 5


HANDLERS = '''
import os, signal, time

def stubborn(item):
    """Ignores the soft alarm, like a long C-level computation: only a kill stops it."""
    if item == "hang":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)
    if item == "die":
        os._exit(3)
    if item == "raise":
        raise RuntimeError("boom")
    return item * 2
'''


@pytest.fixture()
def handler_module(tmp_path, monkeypatch):
    (tmp_path / "lt_test_handlers.py").write_text(HANDLERS)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return "lt_test_handlers:stubborn"


def test_pool_kills_stuck_worker_and_finishes_batch(handler_module):
    items = ["a", "hang", "b", "die", "c", "raise", "d", "hang", "e"]
    start = time.monotonic()
    with DeadlinePool(handler_module, workers=2, timeout_s=1.0, chunk=4) as pool:
        out = pool.map(items)
        restarts = pool.restarts
        again = pool.map(["x"])
    elapsed = time.monotonic() - start
    assert out[0] == (OK, "aa") and out[2] == (OK, "bb") and out[8] == (OK, "ee")
    assert out[1] == (TIMEOUT, None) and out[7] == (TIMEOUT, None)
    assert out[3][0] == CRASHED and "exit code 3" in out[3][1]
    assert out[5][0] == CRASHED and "boom" in out[5][1]
    assert restarts == 3  # two hangs killed, one death replaced
    assert again == [(OK, "xx")]
    assert elapsed < 30


def test_pool_rejects_bad_arguments():
    with pytest.raises(ValueError, match="workers"):
        DeadlinePool("x:y", workers=0)
    with pytest.raises(ValueError, match="timeout_s"):
        DeadlinePool("x:y", timeout_s=0)
