"""The review page in a real headless Chromium: sign-in, keyboard verdicts, undo, filters, modes, layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, USER, Site, sign_in

pytestmark = pytest.mark.browser


def card(page: Page, event_id: int | str) -> str:
    return f'#queue li.ev[data-id="{event_id}"]'


def selected_id(page: Page) -> int:
    return int(page.get_attribute("#queue li.ev.sel", "data-id") or 0)


def wait_status(page: Page, event_id: int, status: str) -> None:
    page.wait_for_selector(f'{card(page, event_id)}[data-status="{status}"]')


def test_a_wrong_password_stays_on_the_sign_in_page(page: Page, site: Site) -> None:
    sign_in(page, site, password="not it")
    expect(page.locator("[role=alert]")).to_have_text("Wrong name or password.")
    assert page.url.startswith(site.url + "/login")


def test_review_with_the_keyboard(page: Page, site: Site) -> None:
    sign_in(page, site)
    expect(page.locator("header.top")).to_contain_text(USER)
    first = selected_id(page)
    assert first == 6  # the newest pending event is selected on arrival

    page.keyboard.press("c")
    wait_status(page, first, "confirmed")
    confirmed = site.store.get_event(first)
    assert confirmed is not None
    assert (confirmed["review_status"], confirmed["reviewer"]) == ("confirmed", USER)
    assert selected_id(page) == 5  # moved on by itself

    page.keyboard.press("j")
    assert selected_id(page) == 4
    page.keyboard.press("k")
    page.keyboard.press("ArrowDown")
    assert selected_id(page) == 4
    page.keyboard.press("r")
    expect(page.locator("#bar")).to_have_class("bar ask")  # asks for a reason first
    page.keyboard.press("3")  # blur
    wait_status(page, 4, "rejected")
    rejected = site.store.get_event(4)
    assert rejected is not None
    assert (rejected["review_status"], rejected["reason_code"], rejected["reviewer"]) == (
        "rejected",
        "blur",
        USER,
    )

    page.keyboard.press("z")
    wait_status(page, 4, "pending")
    assert selected_id(page) == 4
    history = site.store.verdict_history(4)
    assert [(h["status"], h["reason_code"], h["reviewer"]) for h in history] == [
        ("rejected", "blur", USER),
        ("pending", "undo", USER),
    ]

    page.keyboard.press("l")
    page.keyboard.type("person")
    page.keyboard.press("Enter")
    page.keyboard.press("5")  # wrong-class
    wait_status(page, 4, "relabelled")
    relabelled = site.store.get_event(4)
    assert relabelled is not None
    assert (relabelled["relabel"], relabelled["reason_code"]) == ("person", "wrong-class")

    page.keyboard.press("?")
    expect(page.locator("dialog#help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("dialog#help")).to_be_hidden()
    page.click(f"{card(page, 4)} details.history summary")
    expect(page.locator(f"{card(page, 4)} ol.hist li")).to_have_count(3)


def test_filter_by_camera(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.select_option("select[name=camera]", "lake")
    page.click("form.filters button")
    page.wait_for_url("**camera=lake**")
    cameras = page.locator("#queue li.ev .camera").all_inner_texts()
    assert cameras == ["lake", "lake", "lake"]


def test_change_a_cameras_mode(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.click("nav >> text=Cameras")
    gate = page.locator('section.cam[data-camera="gate"]')
    gate.locator("select[name=mode]").select_option("review")
    gate.locator("input[name=active_hours]").fill("06:00-22:00")
    gate.locator("input[name=reason]").fill("precision 0.96 over two weeks")
    gate.locator("button:has-text('Change mode')").click()
    expect(page.locator('section.cam[data-camera="gate"] .badge')).to_have_text("review")
    (change,) = site.store.mode_history("gate")
    assert (change["old_mode"], change["new_mode"], change["changed_by"]) == (None, "review", USER)
    assert (change["reason"], change["active_hours"]) == (
        "precision 0.96 over two weeks",
        "06:00-22:00",
    )
    expect(page.locator('section.cam[data-camera="gate"] details.history')).to_contain_text(
        "precision 0.96 over two weeks"
    )


def test_label_an_audit_sample(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.click("nav >> text=Audit")
    sample = page.locator("ol.audit li.ev").first
    sample.locator("input[name=note]").fill("a cub behind the tent")
    sample.locator("input[name=note]").press("Enter")  # must not pick a label by itself
    expect(sample.locator(".say")).to_have_text("pick a label")
    sample.locator("button[value=bear]").click()
    expect(sample.locator(".say")).to_have_text("labelled bear")
    (labelled,) = site.store.list_audit_samples(labelled=True)
    assert (labelled["label"], labelled["labelled_by"], labelled["note"]) == (
        "bear",
        USER,
        "a cub behind the tent",
    )


def test_the_queue_looks_right_on_a_laptop_and_a_phone(
    page: Page, site: Site, tmp_path: Path
) -> None:
    sign_in(page, site)
    page.keyboard.press("c")
    wait_status(page, 6, "confirmed")
    page.evaluate("window.scrollTo(0, 0)")
    laptop = tmp_path / "review_laptop.png"
    # Bytes, written here: with path= Playwright writes from an executor thread that outlives the test.
    laptop.write_bytes(page.screenshot())
    page.set_viewport_size(PHONE)
    page.reload()
    # Nothing may stick out sideways on a phone: that is what makes a page pan and zoom out.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for selector in ("#bar .actions", "header.top", "#queue li.ev.sel"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    phone = tmp_path / "review_phone.png"
    phone.write_bytes(page.screenshot())
    # Copies where a person can look at them after the run.
    shutil.copyfile(laptop, "/tmp/bearwatch_review_laptop.png")
    shutil.copyfile(phone, "/tmp/bearwatch_review_phone.png")
