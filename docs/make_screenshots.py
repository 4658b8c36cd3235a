"""Refresh the README's screenshots (docs/img/) from a finished run's report directory.

The run browser is opened in headless Chromium (Debian's chromium + chromium-driver, as in
tests/test_browser_chromium.py): the traces view filtered to one rejection reason with a trace
open, and the evaluation view with "teacher right, student wrong" and two models side by side.
The plots are copied as the report wrote them.

    .venv/bin/python docs/make_screenshots.py results/report
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "img"
PLOTS = ["accuracy_vs_tokens.png", "accuracy_vs_budget.png", "loss.png", "tti_leaderboard.png"]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,860", "--hide-scrollbars"]


def main(report_dir: str) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    report = Path(report_dir)
    OUT.mkdir(exist_ok=True)
    for name in PLOTS:
        shutil.copy(report / name, OUT / name)
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in [*FLAGS, f"--user-data-dir={tempfile.mkdtemp()}"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")
                                              or "/usr/bin/chromedriver"), options=opts)
    try:
        driver.get((report / "browser.html").resolve().as_uri())
        time.sleep(1)
        Select(driver.find_element(By.ID, "f-task")).select_by_value("distill-arith")
        Select(driver.find_element(By.ID, "f-outcome")).select_by_value("filter:correct")
        time.sleep(0.5)
        driver.find_element(By.CSS_SELECTOR, "#trace-table tbody tr").click()
        time.sleep(0.5)
        driver.find_element(By.CSS_SELECTOR, "#panel article.current details.thinking summary") \
            .click()
        time.sleep(0.3)
        driver.save_screenshot(str(OUT / "browser_traces.png"))
        driver.find_element(By.CSS_SELECTOR, "#panel .close").click()
        driver.find_element(By.ID, "tab-eval").click()
        driver.find_element(By.ID, "q-a-right-b-wrong").click()
        time.sleep(0.5)
        driver.find_element(By.CSS_SELECTOR, "#eval-table tbody tr").click()
        time.sleep(0.5)
        driver.save_screenshot(str(OUT / "browser_eval.png"))
    finally:
        driver.quit()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/report")
