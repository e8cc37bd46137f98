"""The README's pictures of a report and of the matrix, made from real runs against the sandbox tenant.

    .venv/bin/python docs/make_screenshots.py        # writes docs/images/{report,matrix,matrix-over-time}.png

It runs the suite for four profiles side by side (sandbox, fabrikam, flaky, live-events-joinable: the
fictional sandbox tenants, no live data) and four more small sandbox runs for the over-time view, writes the matrix, and
photographs conformance.html and matrix.html in headless Chromium (/usr/bin/chromium, through the
project's Playwright). A page that shows anything of a secret's shape is refused; each PNG must stay
under 300 KB.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PROFILES = ("sandbox", "fabrikam", "flaky", "live-events-joinable")  # the last: a sandbox tenant that admits
# Teams users to live events, so row 8 shows what a FAIL looks like
LATER = ("identity", "identity or chat", "chat", "policies")  # smaller sandbox runs, later, for the trend
LEAKS = ("onmicrosoft.com", "Pw!", "accesskey=", "cs~", "eyJ")  # a sandbox UPN, password, key, secret, token
LIMIT = 300_000


def run(report_dir: Path, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "harness.run.cli", "run", "-q", "--report-dir", str(report_dir), *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


def shoot(page, target: Path, height: int = 0, element: str = "") -> None:  # type: ignore[no-untyped-def]
    """The top `height` pixels of the page, or one element of it; refused if the page shows a secret's shape."""
    text = page.inner_text("body")
    if leaked := [leak for leak in LEAKS if leak in text]:
        raise SystemExit(f"make_screenshots: {page.url} shows {leaked}; not photographed")
    if element:
        page.locator(element).screenshot(path=str(target))
    else:
        clip = {"x": 0, "y": 0, "width": page.viewport_size["width"], "height": height}
        page.screenshot(path=str(target), clip=clip, full_page=True)
    size = target.stat().st_size
    if size > LIMIT:
        raise SystemExit(f"make_screenshots: {target} is {size} bytes (> {LIMIT}); photograph less of the page")
    print(f"{target.relative_to(ROOT)}: {size // 1000} KB")


def main() -> int:
    if not Path(CHROMIUM).exists():
        print("make_screenshots: needs Chromium at /usr/bin/chromium (apt-get install -y chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as work:
        tmp = Path(work)
        for process in [run(tmp / p, "--profile", p) for p in PROFILES]:
            process.wait()
        for i, selection in enumerate(LATER):
            run(tmp / f"later-{i}", "-k", selection).wait()
        for arguments, out in (
            ([str(tmp / p) for p in PROFILES], tmp / "matrix"),
            ([str(tmp / "sandbox"), *(str(tmp / f"later-{i}") for i in range(len(LATER)))], tmp / "over-time"),
        ):
            subprocess.run([sys.executable, "-m", "harness.run.cli", "matrix", *arguments, "-o", str(out)], check=True)
        from harness.client.calling.browser import playwright

        IMAGES.mkdir(parents=True, exist_ok=True)
        browser = playwright().chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto((tmp / "sandbox" / "conformance.html").as_uri())
            shoot(page, IMAGES / "report.png", 1000)
            page.goto((tmp / "matrix" / "matrix.html").as_uri())
            shoot(page, IMAGES / "matrix.png", 820)
            page = browser.new_page(viewport={"width": 760, "height": 900})
            page.goto((tmp / "over-time" / "matrix.html").as_uri())
            shoot(page, IMAGES / "matrix-over-time.png", element='section.profile[data-profile="sandbox"]')
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
