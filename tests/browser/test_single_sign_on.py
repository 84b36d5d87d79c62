"""In a real browser: one login opens the three consoles; the nurse's worklist shows a referral; screenshots."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from infra.client import ApiClient
from infra.referrals import referral_bundle
from infra.stack import ROOT, Stack
from tests.conftest import started_stack

pytestmark = pytest.mark.e2e
SHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from started_stack(tmp_path_factory, "browser")


def test_one_login_reaches_every_console_without_a_second_login(stack: Stack, browser: Browser) -> None:
    ApiClient("ehr-delinde", stack.url("triage"), stack.url("coordination"), stack.url("billing_shadow")) \
        .post_referral(referral_bundle(bsn="999990019", given="Aaltje", family="Bakker")).raise_for_status()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(f"{stack.url('coordination')}/console")
    assert page.locator("input[name=password]").is_visible()
    page.screenshot(path=str(SHOTS / "login.png"))
    page.fill("input[name=username]", "beheer")
    page.fill("input[name=password]", "demo-beheer")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{stack.url('coordination')}/console")
    assert "Ingelogd als beheer" in page.inner_text("header")
    page.goto(f"{stack.url('triage')}/console")
    assert page.locator("input[name=password]").count() == 0
    assert "Aaltje Bakker" in page.inner_text("main")
    page.screenshot(path=str(SHOTS / "triage-worklist.png"))
    page.goto(f"{stack.url('billing_shadow')}/console")
    assert page.locator("input[name=password]").count() == 0
    assert "Integrale prestaties" in page.inner_text("main")
    page.goto(f"{stack.url('triage')}/console/audit")
    assert "console login" in page.inner_text("main")
    page.close()
