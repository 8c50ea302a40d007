"""The Space in headless Chromium (Debian's ``chromium``, driven by Playwright): type, click, see highlights.

Skipped where ``/usr/bin/chromium`` or Playwright is missing. The predictor is the real ``NER`` class on the
tiny model with scripted answers (so the highlighted entities are known); retrieval is real. With
``RAITNER_UPDATE_SCREENSHOT=1`` the screenshot also replaces ``docs/images/space.png`` (the README's).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "images" / "space.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (/usr/bin/chromium)"),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    yield page
    page.close()


@pytest.fixture(scope="module")
def scripted_demo(tiny_model_dir):
    import datasets

    from raitner_hub.predict import NER
    from raitner_hub.records import ANNOTATED_FEATURES
    from raitner_hub.retrieval import RetrievalIndex
    from raitner_hub.serve import build_demo
    from tests.fixtures.serving import POOL, HashingEncoder, rows, scripted_ner

    base = NER.from_pretrained(tiny_model_dir, lang="en", backend="hf", device="cpu")
    predictor = scripted_ner(base, {"person": ["Obama", "Merkel"], "location": ["Paris", "Berlin"]})
    pool = datasets.Dataset.from_list(rows(POOL), features=ANNOTATED_FEATURES)
    index = RetrievalIndex.build(
        pool,
        lang="en",
        embedder="hash512",
        encoder=HashingEncoder(),
        cache_dir=False,
        progress=False,
        pool_source="test-pool",
    )
    demo = build_demo(predictor, index)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    yield demo, url, index
    demo.close()


def test_type_click_and_see_highlighted_entities(browser_page, scripted_demo, tmp_path):
    from tests.fixtures.serving import QUERY

    demo, url, index = scripted_demo
    page = browser_page
    page.goto(url)
    page.locator("#extract-button").wait_for(timeout=60_000)
    page.locator("#text-input textarea").fill(QUERY)
    page.locator("#types-input textarea").fill("person, location")
    page.locator("#extract-button").click()
    page.locator("#status").get_by_text("4 entities found").wait_for(timeout=60_000)

    highlighted = page.locator("#highlighted .token.highlighted")
    assert highlighted.all_inner_texts() == ["Obama", "Paris", "Berlin", "Merkel"]
    assert page.locator("#highlighted").get_by_role("button").all_inner_texts() == ["person", "location"]  # legend
    found, _ = index.search([QUERY], top_k=2)
    demo_table = page.locator("#demo-table").inner_text()
    for row in found[0]:  # the retrieved passages are on the page, so the visitor sees why
        assert index.ids[row] in demo_table and index.texts[row] in demo_table

    shot = tmp_path / "space.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("RAITNER_UPDATE_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_bad_input_shows_a_message_in_the_page(browser_page, scripted_demo):
    _, url, _ = scripted_demo
    page = browser_page
    page.goto(url)
    page.locator("#extract-button").wait_for(timeout=60_000)
    page.locator("#text-input textarea").fill("")
    page.locator("#extract-button").click()
    page.locator("#status").get_by_text("Please enter a text").wait_for(timeout=60_000)
    # ... and the app keeps serving: a proper request right after works
    page.locator("#text-input textarea").fill("Merkel visited Paris.")
    page.locator("#types-input textarea").fill("person, location")
    page.locator("#extract-button").click()
    page.locator("#status").get_by_text("entities found").wait_for(timeout=60_000)
    assert page.locator("#highlighted .token.highlighted").all_inner_texts() == ["Merkel", "Paris"]
