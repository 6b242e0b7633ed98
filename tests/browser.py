"""Open a page in headless Chromium (Debian's package) with every host unresolvable, in a window
as wide as a desktop's, and read back what it loaded: images (and which are broken), figures,
sections, tables, in-page links, which figure sits beside its table, resources fetched."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path

WIDTH = 1500  # CSS pixels: the window the page is laid out in

PROBE = """<script>window.addEventListener("load", () => {
  const images = Array.from(document.images), all = s => Array.from(document.querySelectorAll(s));
  const box = e => e.getBoundingClientRect();
  const beside = f => {  // the title of the table that f sits to the right of, in its block
    const t = f.parentElement.querySelector("table");
    return t && box(f).left >= box(t).right && box(f).top < box(t).bottom ? t.querySelector("caption b").textContent : null;
  };
  document.body.setAttribute("data-probe", JSON.stringify({
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    figures: all("figure").map(f => f.id),
    sections: all("h2").map(h => h.textContent),
    tables: all("caption b").map(b => b.textContent),
    links: all('a[href^="#"]').map(a => a.getAttribute("href").slice(1)).map(id => [id, document.getElementById(id) !== null]),
    beside: Object.fromEntries(all(".block figure").map(f => [f.id, beside(f)])),
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
         f"--user-data-dir={tmp / 'chromium'}", "--host-resolver-rules=MAP * ~NOTFOUND", f"--window-size={WIDTH},1000",
         "--virtual-time-budget=10000", "--dump-dom", copy.as_uri()],
        capture_output=True, text=True, timeout=120)
    start = result.stdout.find('data-probe="')
    assert start >= 0, f"the page did not finish loading: {result.stderr[-2000:]}"
    value = result.stdout[start + len('data-probe="'):]
    return json.loads(html.unescape(value[:value.index('"')]))
