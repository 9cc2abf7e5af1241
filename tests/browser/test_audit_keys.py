"""The audit page in a real Chromium: label keys, skip, undo, and a look-alike run labelled as one."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from monitor.records import AuditSample
from tests.browser.conftest import T0, USER, Site, sign_in, snapshot

pytestmark = pytest.mark.browser


def labels(site: Site) -> dict[int, str | None]:
    return {int(s["id"]): s["label"] for s in site.store.list_audit_samples(limit=100)}


def test_label_skip_and_undo_with_the_keyboard(page: Page, site: Site) -> None:
    # The seed has one gate sample (id 1); then a still meadow four times, then a bear there.
    meadow = [
        site.store.add_audit_sample(AuditSample("meadow", T0 + 100 + i, "random", "colornet-3",
                                                "empty", 0.04, {"bear": 0.04}, snapshot("empty", i)))
        for i in range(4)
    ]  # fmt: skip
    bear = site.store.add_audit_sample(
        AuditSample("meadow", T0 + 200, "near_threshold", "colornet-3", "empty", 0.55,
                    {"bear": 0.55}, snapshot("bear", 9))
    )  # fmt: skip
    sign_in(page, site)
    page.goto(site.url + "/audit")
    cards = page.locator("#audit > li.ev")
    expect(cards).to_have_count(3)  # the bear, the meadow run (4 frames), the gate sample
    expect(page.locator("select[name=camera] option")).to_have_text(
        ["all", "gate", "lake", "meadow"]
    )
    expect(cards.nth(1).locator(".run")).to_have_text("+3 similar")
    expect(page.locator("#audit > li.ev.sel")).to_have_attribute("data-id", str(bear))

    page.keyboard.press("1")  # bear: a miss
    expect(cards.nth(0).locator(".say")).to_have_text("labelled bear")
    assert labels(site)[bear] == "bear"
    expect(page.locator("#audit > li.ev.sel")).to_have_attribute("data-id", str(meadow[-1]))

    page.keyboard.press("2")  # empty, for the whole run
    expect(cards.nth(1).locator(".say")).to_have_text("labelled empty (4 frames)")
    got = labels(site)
    assert [got[i] for i in meadow] == ["empty"] * 4

    page.keyboard.press("z")  # takes the run's label back
    expect(cards.nth(1).locator(".say")).to_have_text("label taken back")
    got = labels(site)
    assert [got[i] for i in meadow] == [None] * 4 and got[bear] == "bear"

    page.keyboard.press("s")  # skip the run, to the gate sample
    expect(page.locator("#audit > li.ev.sel")).to_have_attribute("data-id", "1")
    page.keyboard.press("3")  # person
    expect(cards.nth(2).locator(".say")).to_have_text("labelled person")
    (gate,) = [s for s in site.store.list_audit_samples(labelled=True) if s["camera"] == "gate"]
    assert (gate["label"], gate["labelled_by"]) == ("person", USER)
