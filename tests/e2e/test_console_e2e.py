"""The console in a real browser, against `tollgate serve` on the example config.yaml
(its `files:` section and reviewed image route) with the simulator for upstreams:
images made through the proxy with the openai SDK are approved and rejected by a
reviewer, finance's spend table totals to the cost headers and to /admin/spend, each
role is refused the other's pages, and signing out ends the session. Every page is
saved as a screenshot at 1280 and 390 px wide in test-artifacts/console/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from proxy.http.console.sessions import COOKIE

from ..launch_configs import EXAMPLE, replaced
from .browser import screenshots, start_chromium
from .harness import Proxy

ADMIN_KEY = "adm-console-e2e-51c2"
REVIEWER_KEY = "rev-console-e2e-7d0e"
FINANCE_KEY = "fin-console-e2e-a9b4"
CLIENT_KEY = "sk-client-console-e2e"
CONSOLE = "console:\n  session_hours: 8\n"
CONSOLE_KEYS = """  keys:
    - {id: ana, key: "${REVIEWER_KEY}", role: reviewer}
    - {id: finn, key: "${FINANCE_KEY}", role: finance}
"""
CLIENT_KEYS = '\nkeys:\n  - {id: web-app, key: "${CLIENT_KEY}", team: growth}\n'


@pytest.fixture(scope="module")
def proxy(start_proxy) -> Proxy:
    """The README's run command on the example config, with a console key per role and a client key."""
    config = replaced(EXAMPLE, CONSOLE, CONSOLE + CONSOLE_KEYS) + CLIENT_KEYS
    env = {
        "TOLLGATE_ADMIN_KEY": ADMIN_KEY,
        "REVIEWER_KEY": REVIEWER_KEY,
        "FINANCE_KEY": FINANCE_KEY,
        "CLIENT_KEY": CLIENT_KEY,
    }
    return start_proxy(config, "--simulate-upstreams", env=env)


@pytest.fixture(scope="module")
def made(proxy) -> dict[str, Decimal]:
    """Requests made as an app makes them: three images to review and a chat; their costs by id."""
    client = proxy.client(api_key=CLIENT_KEY)
    costs = {}
    for prompt, quality in [("a lighthouse at dawn", "low"), ("a red kite", "low"), ("<b>a teapot</b>", "medium")]:
        raw = client.images.with_raw_response.generate(
            model="gpt-image-2", prompt=prompt, quality=quality, extra_headers={"x-prompt-version": "console-e2e/1"}
        )
        costs[raw.headers["x-request-id"]] = Decimal(raw.headers["x-tollgate-cost-usd"])
    chat = client.chat.completions.with_raw_response.create(
        model="gpt-5.4-mini", messages=[{"role": "user", "content": "hello"}]
    )
    costs[chat.headers["x-request-id"]] = Decimal(chat.headers["x-tollgate-cost-usd"])
    with admin_api(proxy) as admin:
        for request_id in list(costs)[:3]:  # the images are stored after the answer: wait for their URLs
            path = f"/admin/requests/{request_id}"
            wait_for(lambda path=path: admin.get(path).json().get("file_urls"), f"the file URLs of {request_id}")
    return costs


@pytest.fixture(scope="module")
def chromium() -> Iterator[WebDriver]:
    driver = start_chromium()
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium, proxy) -> WebDriver:
    chromium.get(f"{proxy.url}/ui/login")
    chromium.delete_all_cookies()
    return chromium


def admin_api(proxy: Proxy) -> httpx.Client:
    return httpx.Client(base_url=proxy.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)


def wait_for(condition, what: str, timeout_s: float = 10):
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def sign_in(browser: WebDriver, proxy: Proxy, key: str) -> None:
    browser.get(f"{proxy.url}/ui/")
    assert browser.current_url == f"{proxy.url}/ui/login"
    field = browser.find_element(By.NAME, "key")
    field.send_keys(key)
    field.submit()
    WebDriverWait(browser, 10).until(lambda driver: driver.current_url != f"{proxy.url}/ui/login")


def as_session(browser: WebDriver, proxy: Proxy) -> httpx.Client:
    """An HTTP client holding the browser's session cookie: it sees the statuses a browser hides."""
    cookie = browser.get_cookie(COOKIE)
    assert cookie is not None, "signed in"
    return httpx.Client(base_url=proxy.url, cookies={COOKIE: cookie["value"]}, follow_redirects=False, timeout=10)


def page_loads_only_from(browser: WebDriver, proxy: Proxy) -> None:
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(entry => entry.name)")
    assert all(url.startswith(f"{proxy.url}/") for url in loaded), loaded


# --- signing in, and who may open what ---------------------------------------------------------


def test_each_role_lands_on_its_first_page_and_is_refused_the_others(browser, proxy, made):
    screenshots(browser, "login")
    with httpx.Client(base_url=proxy.url, follow_redirects=False) as anonymous:
        assert anonymous.get("/ui/").headers["location"] == "/ui/login"
        for key in ("not-a-key", CLIENT_KEY):
            refused = anonymous.post("/ui/login", data={"key": key})
            assert refused.status_code == 401 and "set-cookie" not in refused.headers
            assert 'name="key"' in refused.text and key not in refused.text
        assert "client API key" in anonymous.post("/ui/login", data={"key": CLIENT_KEY}).text

    browser.find_element(By.NAME, "key").send_keys("not-a-key")
    browser.find_element(By.CSS_SELECTOR, "form button").click()
    refusal = WebDriverWait(browser, 10).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".problem"))
    assert "does not open the console" in refusal[0].text
    assert browser.get_cookie(COOKIE) is None
    screenshots(browser, "login-refused")

    sign_in(browser, proxy, REVIEWER_KEY)
    assert browser.current_url == f"{proxy.url}/ui/review"
    with as_session(browser, proxy) as reviewer:
        assert [reviewer.get(path).status_code for path in ("/ui/review", "/ui/requests")] == [200, 200]
        assert reviewer.get("/ui/spend").status_code == 403
        assert reviewer.get("/ui/spend/export?format=csv").status_code == 403
    browser.get(f"{proxy.url}/ui/spend")
    assert "may not open the spend pages" in browser.find_element(By.CSS_SELECTOR, ".problem").text
    screenshots(browser, "refused-reviewer-on-spend")

    browser.delete_all_cookies()
    sign_in(browser, proxy, FINANCE_KEY)
    assert browser.current_url.startswith(f"{proxy.url}/ui/spend")
    with as_session(browser, proxy) as finance:
        assert [finance.get(path).status_code for path in ("/ui/spend", "/ui/requests")] == [200, 200]
        assert finance.get("/ui/review").status_code == 403
        assert finance.post("/ui/review/req_x", data={"approve": "1"}).status_code == 403

    browser.delete_all_cookies()
    sign_in(browser, proxy, ADMIN_KEY)
    with as_session(browser, proxy) as admin:
        assert [admin.get(path).status_code for path in ("/ui/review", "/ui/spend", "/ui/requests")] == [200] * 3
        answer = admin.get("/ui/review")
    for key in (ADMIN_KEY, REVIEWER_KEY, FINANCE_KEY):
        assert key not in answer.text and key not in str(browser.get_cookies())
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"


# --- reviewing ------------------------------------------------------------------------------


def test_a_reviewer_approves_and_rejects_images_made_through_the_proxy(browser, proxy, made):
    images = list(made)[:3]
    sign_in(browser, proxy, REVIEWER_KEY)
    for request_id in images:
        item = browser.find_element(By.CSS_SELECTOR, f'[data-request-id="{request_id}"]')
        thumbnail = item.find_element(By.TAG_NAME, "img")
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", thumbnail) > 0
        assert {"console-e2e/1", "gpt-image-2", "openai", "openai/org-acme"} <= set(item.text.split("\n"))
        assert item.find_elements(By.NAME, "approve") and item.find_elements(By.NAME, "reject")
    page_loads_only_from(browser, proxy)
    screenshots(browser, "review")

    browser.execute_script("window.stillThisPage = true")  # a full reload would lose it
    first = browser.find_element(By.CSS_SELECTOR, f'[data-request-id="{images[0]}"]')
    first.find_element(By.NAME, "note").send_keys("on brand")
    first.find_element(By.NAME, "approve").click()
    wait_for(lambda: not browser.find_elements(By.CSS_SELECTOR, f'[data-request-id="{images[0]}"]'), "approved")

    # The keyboard: j to the next item, r to reject it, without a dialog or a reload.
    browser.find_element(By.TAG_NAME, "h1").click()
    current = browser.find_element(By.CSS_SELECTOR, ".item.current").get_attribute("data-request-id")
    order = [element.get_attribute("data-request-id") for element in browser.find_elements(By.CSS_SELECTOR, ".item")]
    target = order[order.index(current) + 1] if order.index(current) + 1 < len(order) else current
    body = browser.find_element(By.TAG_NAME, "body")
    if target != current:
        body.send_keys("j")
    assert browser.find_element(By.CSS_SELECTOR, ".item.current").get_attribute("data-request-id") == target
    body.send_keys("r")
    wait_for(lambda: not browser.find_elements(By.CSS_SELECTOR, f'[data-request-id="{target}"]'), "rejected")
    assert browser.execute_script("return window.stillThisPage") is True

    with admin_api(proxy) as admin:
        approved = admin.get(f"/admin/requests/{images[0]}").json()
        rejected = admin.get(f"/admin/requests/{target}").json()
    assert (approved["review_status"], approved["review"]["reviewer"], approved["review"]["note"]) == (
        "approved",
        "ana",
        "on brand",
    )
    assert (rejected["review_status"], rejected["review"]["reviewer"]) == ("rejected", "ana")

    browser.get(f"{proxy.url}/ui/review?status=all")
    decided = browser.find_element(By.CSS_SELECTOR, f'[data-request-id="{images[0]}"] .decided').text
    assert decided.startswith("Approved by ana at ") and "on brand" in decided
    screenshots(browser, "review-all")


# --- spend ----------------------------------------------------------------------------------


def test_the_spend_table_totals_to_the_cost_headers_and_to_the_admin_report(browser, proxy, made):
    sign_in(browser, proxy, FINANCE_KEY)
    browser.get(f"{proxy.url}/ui/spend?by=provider&by=route")
    table = browser.find_element(By.CSS_SELECTOR, "table#spend")
    total = table.find_elements(By.CSS_SELECTOR, "tfoot td")[-1].text
    assert Decimal(total) == sum(made.values())
    since = time.strftime("%Y-%m-01", time.gmtime())  # the default period: this month so far, UTC
    with admin_api(proxy) as admin:
        report = admin.get("/admin/spend", params={"group_by": "provider,route", "since": since}).json()
        expected_csv = admin.get("/admin/spend", params={"group_by": "provider,route", "since": since, "format": "csv"})
        expected_focus = admin.get("/admin/spend", params={"since": since, "format": "focus"})
    assert total == report["total_usd"]
    cells = [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    ]
    assert [[row[0], row[1], row[2], row[4]] for row in cells] == [
        [group["provider"], group["route"], str(group["requests"]), group["cost_usd"]] for group in report["rows"]
    ]
    assert all(Decimal(row[3]) > 0 for row in cells)  # the list price beside each billed cost
    bars = browser.find_elements(By.CSS_SELECTOR, "figure.chart svg rect")
    assert bars and browser.find_element(By.CSS_SELECTOR, "figure.chart svg title").get_attribute("textContent")
    page_loads_only_from(browser, proxy)
    screenshots(browser, "spend")

    links = {link.text: link.get_attribute("href") for link in browser.find_elements(By.CSS_SELECTOR, ".period a")}
    with as_session(browser, proxy) as finance:
        assert finance.get(links["CSV"]).text == expected_csv.text
        assert finance.get(links["FOCUS"]).text == expected_focus.text


# --- requests, and signing out ------------------------------------------------------------


def test_a_request_is_found_by_id_and_shown_whole_then_signing_out_ends_the_session(browser, proxy, made):
    request_id = list(made)[2]
    sign_in(browser, proxy, ADMIN_KEY)
    browser.get(f"{proxy.url}/ui/requests")
    assert {row.get_attribute("data-request-id") for row in browser.find_elements(By.CSS_SELECTOR, "tbody tr")} >= set(
        made
    )
    screenshots(browser, "requests")
    field = browser.find_element(By.NAME, "id")
    field.send_keys(request_id)
    field.submit()
    WebDriverWait(browser, 10).until(lambda driver: f"id={request_id}" in driver.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#requests tbody tr")
    assert [row.get_attribute("data-request-id") for row in rows] == [request_id]
    rows[0].find_element(By.LINK_TEXT, request_id).click()
    WebDriverWait(browser, 10).until(lambda driver: driver.current_url == f"{proxy.url}/ui/requests/{request_id}")
    assert browser.find_elements(By.CSS_SELECTOR, "#attempts tbody tr td")[1].text == "openai"
    charge = browser.find_element(By.CSS_SELECTOR, "#charges tbody tr").text
    assert "openai/org-acme" in charge and str(made[request_id]) in charge
    assert len(browser.find_elements(By.CSS_SELECTOR, "#cost-lines tbody tr")) >= 2
    assert browser.find_element(By.CSS_SELECTOR, ".thumbs img").get_attribute("naturalWidth") != "0"
    screenshots(browser, "request")

    cookie = browser.get_cookie(COOKIE)["value"]
    browser.find_element(By.CSS_SELECTOR, ".signout button").click()
    # The click returns once the form is sent, not once its answer has loaded.
    WebDriverWait(browser, 10).until(lambda driver: driver.current_url == f"{proxy.url}/ui/login")
    with httpx.Client(base_url=proxy.url, cookies={COOKIE: cookie}, follow_redirects=False) as replayed:
        answer = replayed.get("/ui/review")
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/login")
    browser.get(f"{proxy.url}/ui/review")
    assert browser.current_url == f"{proxy.url}/ui/login"
