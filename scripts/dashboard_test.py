"""The dashboard in headless Chromium (Selenium), run by scripts/test-dashboard.sh against a live `erp-sync serve`.

Env: ERP_SYNC_URL, ADMIN_TOKEN, VIEWER_TOKEN, AUDIT_DB (the demo's SQLite audit database), SCREENSHOTS (folder).
Exits non-zero at the first failed check, naming it.
"""
import json
import os
import sqlite3
import sys
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

URL = os.environ["ERP_SYNC_URL"]
ADMIN = os.environ["ADMIN_TOKEN"]
VIEWER = os.environ["VIEWER_TOKEN"]
SHOTS = os.environ.get("SCREENSHOTS", "docs")


def check(condition, what):
    if not condition:
        print("FAIL: " + what)
        sys.exit(1)
    print("ok: " + what)


def api(path, token, body=None):
    """One tRPC call outside the browser: (HTTP status, JSON)."""
    request = urllib.request.Request(URL + "/trpc/" + path, headers={"Authorization": "Bearer " + token})
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


# Headers of the page and its assets.
with urllib.request.urlopen(URL + "/") as response:
    csp = response.headers["Content-Security-Policy"]
    page = response.read().decode()
check("frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp, "strict CSP on / (" + csp + ")")
check("<script src=\"/dashboard.js\"" in page and "style=" not in page and "onclick" not in page, "no inline script or style in the page")
for asset in ["/dashboard.js", "/dashboard.css"]:
    with urllib.request.urlopen(URL + asset) as response:
        check(response.headers["Content-Security-Policy"] == csp and response.headers["X-Content-Type-Options"] == "nosniff", "headers of " + asset)
with urllib.request.urlopen(URL + "/dashboard.js") as response:
    check("innerHTML" not in response.read().decode(), "the script never uses innerHTML")

options = webdriver.ChromeOptions()
for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,1000"]:
    options.add_argument(argument)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(options=options)
wait = WebDriverWait(driver, 60)


def by_id(name):
    return driver.find_element(By.ID, name)


def sign_in(token):
    driver.get(URL + "/")
    wait.until(lambda d: by_id("token").is_displayed())
    by_id("token").send_keys(token)
    by_id("token").submit()
    wait.until(lambda d: "sakila" in by_id("sources").text)


def buttons(text):
    return [b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == text]


def screenshot(width, name):
    driver.set_window_size(width, 1000)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(height + 120, 6000))
    driver.save_screenshot(os.path.join(SHOTS, name))
    scroll = driver.execute_script("return document.documentElement.scrollWidth")
    check(scroll <= width + 1, "no horizontal page scroll at %d px (scrollWidth %d)" % (width, scroll))


try:
    sign_in(ADMIN)
    check("ops (admin)" in by_id("whoami").text, "signed in as admin")
    check(ADMIN not in driver.current_url, "the token is not in the URL")
    check(driver.execute_script("return sessionStorage.getItem('erpSyncToken')") == ADMIN
          and driver.execute_script("return localStorage.length") == 0, "the token is in sessionStorage only")
    row = by_id("sources").find_element(By.TAG_NAME, "tbody").text
    check("sakila" in row and "sqlite" in row, "the demo source is listed: " + row)

    # Sync now: the bar follows the subscription to 100 %.
    driver.find_element(By.CSS_SELECTOR, "button[aria-label='Sync sakila now']").click()
    seen = set()
    def finished(d):
        seen.add(int(by_id("sync-progress").get_attribute("value") or 0))
        return by_id("progress-text").text.startswith("100 %")
    WebDriverWait(driver, 180, poll_frequency=0.05).until(finished)
    check(int(by_id("sync-progress").get_attribute("value")) == 100, "the progress bar reached 100 % (" + by_id("progress-text").text + ")")
    check(any(0 < value < 100 for value in seen), "the bar showed progress on the way: %s" % sorted(seen))

    # A run's detail.
    wait.until(lambda d: "SUCCESS" in by_id("runs").text or "PARTIAL" in by_id("runs").text)
    by_id("runs").find_element(By.CSS_SELECTOR, "tbody button").click()
    wait.until(lambda d: by_id("run-detail").is_displayed())
    check("SIGN_MISMATCH" in by_id("run-errors").text, "the run's detail lists its quarantined row: " + by_id("run-errors").text[:120])

    # Quarantine and reprocess: the row is fixed at the source without moving its date (behind the checkpoint, so
    # no incremental run reads it again); Reprocess reads it by primary key, loads it, and its entry closes.
    wait.until(lambda d: "99001" in by_id("quarantine").text)
    erp = sqlite3.connect(os.environ["ERP_DB"], timeout=30)
    erp.execute("UPDATE payment SET amount = 2.50 WHERE payment_id = 99001")
    erp.commit()
    erp.close()
    by_id("quarantine").find_element(By.CSS_SELECTOR, "tbody button").click()
    wait.until(lambda d: "eprocess" in by_id("message").text)
    check("Reprocessed" in by_id("message").text and "1 inserted" in by_id("message").text, "reprocess loaded the fixed row: " + by_id("message").text)
    wait.until(lambda d: "99001" not in by_id("quarantine").text)

    # A reconciliation mismatch: one audit row deleted behind the server's back.
    audit = sqlite3.connect(os.environ["AUDIT_DB"], timeout=30)
    audit.execute("DELETE FROM tb_sales WHERE source_id = 'sakila' AND external_id = '1000'")
    audit.commit()
    audit.close()
    Select(by_id("reconciliation-source")).select_by_value("sakila")
    by_id("reconcile-now").click()
    wait.until(lambda d: "1000" in by_id("mismatches").text)
    check("store-" in by_id("mismatches").text, "the mismatched bucket names row 1000: " + by_id("mismatches").find_element(By.TAG_NAME, "tbody").text)
    check(len(driver.find_elements(By.CSS_SELECTOR, "#count-chart svg rect.mismatch")) >= 1, "the chart marks the mismatched day")
    driver.execute_script("window.scrollTo(0, 0)")
    screenshot(1440, "dashboard-1440.png")
    screenshot(375, "dashboard-375.png")
    driver.set_window_size(1440, 1000)

    problems = [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"] or entry["level"] == "SEVERE"]
    check(not problems, "no CSP violations or script errors: %s" % problems)

    # Viewer: no admin buttons, and the API refuses the admin procedures anyway.
    by_id("sign-out").click()
    sign_in(VIEWER)
    check("auditor (viewer)" in by_id("whoami").text, "signed in as viewer")
    check(not buttons("Sync now") and not buttons("Reprocess") and not driver.find_elements(By.ID, "reconcile-now"),
          "a viewer sees no Sync now, Reprocess or Reconcile now button")
    check("1000" in by_id("mismatches").text, "a viewer sees the stored reconciliation")
    for path, body in [("erp.syncNow", {"source": "sakila"}), ("erp.reconcile", {"source": "sakila"}), ("erp.testConnection", {"source": "sakila"})]:
        status, answer = api(path, VIEWER, body)
        check(status == 403 and answer["error"]["data"]["code"] == "FORBIDDEN", "the API refuses %s to a viewer (%d)" % (path, status))
finally:
    driver.quit()
