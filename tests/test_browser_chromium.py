"""The run browser in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`,
installed by `make test` when missing and run as root) opens the file from disk, a filter and a
search are applied, and what is visible is asserted; the page must log no console error.

Skips where Chromium cannot be found; with CI=true it fails instead (the Makefile installs it).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from longthought.results.browser import write_browser
from longthought.results.synthetic import synthetic_run

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Without the background-networking flags Chromium tries to reach Google's services at start,
# which a closed network refuses (and which a test has no business doing anyway).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000"]
ROLES = {"teacher": "teacher", "student": "student", "student@init": "init"}


def _need_chromium() -> None:
    missing = [p for p in (CHROMIUM, DRIVER) if not Path(p).exists()]
    if missing:
        reason = f"no {missing}: `make test` installs chromium and chromium-driver (as root)"
        if CI:
            pytest.fail(f"CI=true: the browser test is required, but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """A synthetic run (real curation) and its browser file."""
    work = tmp_path_factory.mktemp("browser")
    paths = synthetic_run(work, 240, workers=1)
    out = work / "copied" / "browser.html"  # written elsewhere: the page needs nothing beside it
    write_browser(paths["db"], out, {"traces": 200}, ROLES)
    return out


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    _need_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield drv
    drv.quit()


def _wait(predicate, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.1)


def _rows(driver, table: str) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    return [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows
            if r.is_displayed()]


def _count(driver, element_id: str) -> int:
    from selenium.webdriver.common.by import By

    text = driver.find_element(By.ID, element_id).text  # "N of M ... match."
    return int(text.split(" of ")[0].replace(",", ""))


def _errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_traces_filter_search_and_panel(page: Path, driver) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get(page.as_uri())
    assert _wait(lambda: _rows(driver, "trace-table")), "no trace rows rendered"
    total = _count(driver, "trace-count")
    assert 100 <= total <= 200
    note = driver.find_element(By.ID, "sample-note").text
    assert "traces (stratified by curation outcome)" in note

    Select(driver.find_element(By.ID, "f-outcome")).select_by_value("filter:truncated")
    assert _wait(lambda: _count(driver, "trace-count") < total)
    rows = _rows(driver, "trace-table")
    assert rows and all(r[5] == "rejected" and r[6].startswith("truncated:") for r in rows)
    n_truncated = _count(driver, "trace-count")

    Select(driver.find_element(By.ID, "f-outcome")).select_by_value("")
    family = rows[0][1].split(" / ")[1]
    search = driver.find_element(By.ID, "f-search")
    search.send_keys(family)  # every trace of that family names it in its id
    assert _wait(lambda: 0 < _count(driver, "trace-count") < total)
    rows = _rows(driver, "trace-table")
    assert rows and all(family in r[0] for r in rows)
    assert "contains(lower(" in driver.find_element(By.CSS_SELECTOR, "#trace-sql pre") \
        .get_attribute("textContent")
    search.clear()
    search.send_keys("no-such-words-anywhere")
    assert _wait(lambda: _count(driver, "trace-count") == 0)
    assert not _rows(driver, "trace-table")
    search.clear()
    search.send_keys(" ")  # clear() fires no input event; a blank query matches everything
    assert _wait(lambda: _count(driver, "trace-count") == total)

    # a rejected trace opens with its problem, gold answer, reason, and its thinking folded
    Select(driver.find_element(By.ID, "f-outcome")).select_by_value("filter:truncated")
    assert _wait(lambda: _count(driver, "trace-count") == n_truncated)
    driver.find_element(By.CSS_SELECTOR, "#trace-table tbody tr").click()
    panel = driver.find_element(By.ID, "panel")
    assert _wait(panel.is_displayed)
    assert "gold answer" in panel.text and "rejected by truncated" in panel.text
    assert "finish_reason=length" in panel.text
    thinking = panel.find_element(By.CSS_SELECTOR, "article.current details.thinking")
    assert thinking.get_attribute("open") is None  # folded
    assert not thinking.find_element(By.TAG_NAME, "pre").is_displayed()
    assert _errors(driver) == []


def test_evaluation_teacher_right_student_wrong_side_by_side(page: Path, driver) -> None:
    from selenium.webdriver.common.by import By

    driver.get(page.as_uri())
    driver.find_element(By.ID, "tab-eval").click()
    assert _wait(lambda: _rows(driver, "eval-table"))
    header = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#eval-table thead th")]
    teacher, student = header.index("teacher"), header.index("student")
    total = _count(driver, "eval-count")

    driver.find_element(By.ID, "q-a-right-b-wrong").click()  # A = teacher, B = student
    assert _wait(lambda: 0 < _count(driver, "eval-count") < total)
    for row in _rows(driver, "eval-table"):
        t_c, t_n = map(int, row[teacher].split("/"))
        s_c, s_n = map(int, row[student].split("/"))
        assert 2 * t_c >= t_n and 2 * s_c < s_n, row

    driver.find_element(By.CSS_SELECTOR, "#eval-table tbody tr").click()
    panel = driver.find_element(By.ID, "panel")
    assert _wait(panel.is_displayed)
    sides = panel.find_elements(By.CSS_SELECTOR, ".pair .side")
    assert len(sides) == 2
    for side in sides:
        samples = side.find_elements(By.CSS_SELECTOR, "article.sample")
        assert samples and all("answer:" in s.text and "tokens" in s.text for s in samples)
    assert any("✗" in s.text for s in sides[1].find_elements(By.CSS_SELECTOR, "article.sample"))
    assert _errors(driver) == []
