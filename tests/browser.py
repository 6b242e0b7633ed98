"""Open a page in headless Chromium (Debian's package) with every host unresolvable, and read
back what it loaded: images (and which are broken), figures, sections, resources fetched."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path

PROBE = """<script>window.addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.setAttribute("data-probe", JSON.stringify({
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    figures: Array.from(document.querySelectorAll("figure")).map(f => f.id),
    sections: Array.from(document.querySelectorAll("h2")).map(h => h.textContent),
    resources: performance.getEntriesByType("resource").map(r => r.name)}));
});</script>"""


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "Debian's chromium is not installed: scripts/install-chromium.sh (make test runs it)"
    return found


def probe(page: Path, tmp: Path) -> dict:
    """What ``page`` loads, from a copy with :data:`PROBE` added before ``</body>``."""
    copy = tmp / "probed.html"
    copy.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp / 'chromium'}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--virtual-time-budget=10000", "--dump-dom", copy.as_uri()],
        capture_output=True, text=True, timeout=120)
    start = result.stdout.find('data-probe="')
    assert start >= 0, f"the page did not finish loading: {result.stderr[-2000:]}"
    value = result.stdout[start + len('data-probe="'):]
    return json.loads(html.unescape(value[:value.index('"')]))
