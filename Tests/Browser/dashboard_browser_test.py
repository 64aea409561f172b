#!/usr/bin/env python3
"""The dashboard in a real browser (Debian's chromium, headless, driven by selenium): sign in, see a passing and a
failing swtpm device, open the failing one and read its failed rule and PCR, watch the fleet table change live
when a device re-attests with script in its kernel command line, see that command line as text on its page (no
script runs, no element is injected) with the added event as what changed; as a viewer, find no policy upload form
and be refused when posting one anyway; be refused a form with a wrong CSRF token; and check that without the
session cookie nothing is shown.

Run by DashboardTests (Swift), which starts the controller and the swtpm devices and passes:
  --url URL --token FILE --good ID --bad ID --screenshots DIR --reattest CMD...
CMD is the command that makes the good device re-attest with the hostile command line (its new verdict fails)."""
import argparse
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)
    print(f"ok: {message}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True, help="file holding a viewer token")
    parser.add_argument("--good", required=True)
    parser.add_argument("--bad", required=True)
    parser.add_argument("--screenshots", required=True)
    parser.add_argument("--reattest", nargs=argparse.REMAINDER, required=True)
    args = parser.parse_args()
    token = open(args.token).read().strip()
    os.makedirs(args.screenshots, exist_ok=True)

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,900",
                 "--disable-gpu", "--no-first-run"):
        options.add_argument(flag)
    # The controller's certificate is issued by its own CA (ca.pem), which this throwaway profile does not hold.
    options.accept_insecure_certs = True
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(driver, 30)
    try:
        # No session: the fleet page sends the browser to sign in.
        driver.get(args.url + "/ui/")
        check(driver.current_url.endswith("/ui/login"), "without a session, /ui/ leads to the sign-in page")
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "form[action='/ui/login'] button[type=submit]").click()
        wait.until(EC.presence_of_element_located((By.ID, "fleet")))
        check(driver.current_url.rstrip("/").endswith("/ui"), "signed in, the fleet page")
        names = {c["name"]: c for c in driver.get_cookies()}
        session = names.get("__Host-vigil_session")
        check(session is not None and session.get("httpOnly") and session.get("secure")
              and session.get("sameSite") == "Strict", "the session cookie is HttpOnly, Secure, SameSite=Strict")
        check(driver.execute_script("return document.cookie").find("vigil_session") < 0,
              "scripts cannot read the session cookie")

        good = driver.find_element(By.CSS_SELECTOR, f"tr[data-device='{args.good}']")
        bad = driver.find_element(By.CSS_SELECTOR, f"tr[data-device='{args.bad}']")
        check("state-trusted" in good.get_attribute("class"), "the passing device is shown trusted")
        check("state-failed" in bad.get_attribute("class") and "pcrs.sha256.4" in bad.text,
              "the failing device is shown failed, with its rule")
        driver.save_screenshot(os.path.join(args.screenshots, "fleet.png"))

        # The failing device's page, reached by keyboard-free navigation of its link.
        bad.find_element(By.LINK_TEXT, args.bad).click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.failures")))
        rows = driver.find_elements(By.CSS_SELECTOR, "table.failures tbody tr")
        cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
        check(any(c[0] == "pcrs.sha256.4" and c[3] == "sha256 4" for c in cells),
              f"the device page names the failed rule and its PCR: {cells}")
        driver.save_screenshot(os.path.join(args.screenshots, "device-failed.png"))

        # Live: the fleet page changes when the good device re-attests (now failing), without a reload.
        driver.get(args.url + "/ui/")
        wait.until(EC.text_to_be_present_in_element((By.ID, "live-status"), "Live"))
        driver.execute_script("window.__noReload = true;")
        result = subprocess.run(args.reattest, capture_output=True, text=True, timeout=120)
        print(f"re-attestation exit {result.returncode}: {result.stdout.strip()[:200]}", flush=True)
        wait.until(lambda d: "state-failed" in d.find_element(
            By.CSS_SELECTOR, f"tr[data-device='{args.good}']").get_attribute("class"))
        check(driver.execute_script("return window.__noReload === true"),
              "the row turned failed live (server-sent event), the page was not reloaded")
        driver.save_screenshot(os.path.join(args.screenshots, "fleet-after-reattest.png"))

        # The re-attested device's page: the command line with markup and script is text; nothing ran, nothing was
        # injected; the failed rule names the event, decoded; what changed since the last pass is PCR 8 and one
        # added EV_IPL event.
        driver.get(args.url + "/ui/devices/" + args.good)
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.failures")))
        check(driver.execute_script("return typeof window.__pwned") == "undefined", "no script from the event log ran")
        check(len(driver.find_elements(By.CSS_SELECTOR, "script")) == 0
              and len(driver.find_elements(By.CSS_SELECTOR, "img")) == 0,
              "no script or img element was injected into the device page")
        cmdlines = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "code.cmdline")]
        check(any('"><script>window.__pwned=1</script><img src=x onerror=' in c for c in cmdlines),
              f"the kernel command line is shown as text: {cmdlines}")
        rows = driver.find_elements(By.CSS_SELECTOR, "table.failures tbody tr")
        cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
        check(any(c[0] == "boot.kernel_cmdline" and "EV_IPL" in c[4] and "<script>" in c[4] for c in cells),
              f"the failed rule names its event, decoded: {cells}")
        added = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "table.event-diff tr.change-added")]
        check(any("PCR 8 EV_IPL" in a and "single" in a for a in added), f"the added event is what changed: {added}")
        pcr_rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "table.pcr-diff tbody tr")]
        check(any(r.startswith("sha256 8 ") for r in pcr_rows), f"PCR 8 changed since the last pass: {pcr_rows}")
        driver.save_screenshot(os.path.join(args.screenshots, "device-hostile-cmdline.png"))

        # Policies, as a viewer: listed, no upload form; a post made anyway (with the session's own CSRF token) is
        # refused on the role; and a form with a wrong CSRF token is refused.
        driver.find_element(By.LINK_TEXT, "Policies").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.policies")))
        check("fleet-lab" in driver.find_element(By.CSS_SELECTOR, "table.policies").text, "the policies are listed")
        check(len(driver.find_elements(By.CSS_SELECTOR, "form[action='/ui/policies'], textarea")) == 0
              and "needs the policy-admin role" in driver.page_source, "a viewer is offered no upload form")
        post = """
            const done = arguments[arguments.length - 1];
            const csrf = arguments[0] || document.querySelector("form[action='/ui/logout'] input[name=csrf]").value;
            const body = new URLSearchParams({csrf: csrf, name: "viewer-upload", parent: "",
                yaml: "id: viewer-upload\\nversion: 1\\npcrs:\\n  sha256:\\n    \\"4\\": replay\\n"});
            fetch(arguments[1], {method: "POST", body: body, credentials: "same-origin", redirect: "manual"})
                .then(r => r.text().then(t => done([r.status, t])), e => done([0, String(e)]));
        """
        status, text = driver.execute_async_script(post, None, "/ui/policies")
        check(status == 403 and "policy-admin" in text, f"a viewer's upload is refused on its role ({status})")
        driver.refresh()
        check("viewer-upload" not in driver.find_element(By.CSS_SELECTOR, "table.policies").text,
              "and nothing was stored")
        status, _ = driver.execute_async_script(post, "0" * 64, "/ui/logout")
        check(status == 403, f"a form with a wrong CSRF token is refused ({status})")
        driver.get(args.url + "/ui/")
        check(driver.find_elements(By.ID, "fleet") != [], "and the session was not ended by it")

        # Keyboard: the skip link is the first stop and leads to the content.
        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys("\t")
        check(driver.switch_to.active_element.get_attribute("class") == "skip", "the first Tab stop is the skip link")

        # Without the session cookie, nothing is shown.
        driver.delete_all_cookies()
        driver.get(args.url + "/ui/devices/" + args.bad)
        check(driver.current_url.endswith("/ui/login") and args.bad not in driver.page_source,
              "without the session cookie a device page leads to sign-in and shows nothing")
    except Exception as error:  # the page the browser was on says more than selenium's trace
        print(f"FAIL: {type(error).__name__} at {driver.current_url}\n{driver.page_source[:3000]}", flush=True)
        driver.save_screenshot(os.path.join(args.screenshots, "failure.png"))
        raise
    finally:
        driver.quit()
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
