#!/usr/bin/env python3
"""Opens a coverage page (`status --html`) in headless Chromium (Debian's, through Playwright) and
checks it as a user sees it: no console error, the named cell's colour and tooltip, how long the
page took to draw its first rows. Prints one JSON object.

usage: page_check.py PAGE.html [--key K --month YYYY-MM] [--screenshot PNG] [--chromium /usr/bin/chromium]
"""
import argparse
import json
import sys
import time

from playwright.sync_api import sync_playwright


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--key")
    ap.add_argument("--month")
    ap.add_argument("--screenshot")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    out = {"console_errors": []}
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = p.chromium.launch(executable_path=a.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: out["console_errors"].append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: out["console_errors"].append(str(e)))
        started = time.monotonic()
        page.goto("file://" + a.page)
        page.wait_for_selector("body[data-ready='true'] .row .cell")
        out["seconds_to_first_rows"] = round(time.monotonic() - started, 3)
        out["rows_in_document"] = page.locator(".row").count()
        out["title"] = page.title()
        if a.key:
            out["key_found"] = page.evaluate("k => window.showKey(k)", a.key)
            cell = page.locator(f".row[data-key='{a.key}'] .cell[data-month='{a.month}']")
            cell.wait_for()
            out["cell"] = {
                "state": cell.get_attribute("data-state"),
                "color": cell.evaluate("e => getComputedStyle(e).backgroundColor"),
                "tooltip": cell.get_attribute("title"),
            }
            cell.scroll_into_view_if_needed()
        if a.screenshot:
            page.screenshot(path=a.screenshot)
        browser.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
