"""Open an HTML page of a run folder in headless Chromium and report what the browser saw:
every image (did it load, its natural width) and every link (as the browser resolved it).

The page is copied with its folder into a temporary place and a small script is added to the
copy: on the window's ``load`` event it writes the result as JSON into the DOM, which
``--dump-dom`` prints (``--virtual-time-budget`` lets the page finish loading first).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

_CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var images = Array.from(document.images).map(function (i) {
    return {src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth};
  });
  var links = Array.from(document.querySelectorAll('a[href]')).map(function (a) {
    return {href: a.getAttribute('href'), url: a.href};
  });
  var out = document.createElement('pre');
  out.id = 'sparse-page-check';
  out.textContent = '\\u00abCHK' + JSON.stringify({images: images, links: links}) + 'CHK\\u00bb';
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    """The Chromium binary. Missing: skipped, except under ``SPARSE_REQUIRE_REFERENCES=1``
    (``scripts/test.sh`` installs it), where it is a failure."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    message = ("chromium is missing: install it (Debian: apt-get install -y chromium; "
               "scripts/test.sh does this when run as root)")
    if os.environ.get("SPARSE_REQUIRE_REFERENCES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def check_page(page: Path, tmp: Path, timeout: float = 120.0) -> dict:
    """Load ``page`` (inside its folder) in headless Chromium; return ``{"images": [...],
    "links": [...]}`` as the browser saw them."""
    page = Path(page)
    folder = tmp / "site"
    shutil.copytree(page.parent, folder, dirs_exist_ok=True)
    copy = folder / page.name
    text = copy.read_text(encoding="utf-8")
    if "</body>" not in text:
        raise AssertionError(f"{page} has no </body>")
    copy.write_text(text.replace("</body>", _CHECK_SCRIPT + "</body>", 1), encoding="utf-8")
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}",
           "--virtual-time-budget=15000", "--dump-dom", copy.resolve().as_uri()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    # the markers are written as escapes in the script, so only the result holds them
    found = re.search("\u00abCHK(.*?)CHK\u00bb", html.unescape(out.stdout), re.S)
    if found is None:
        raise AssertionError(f"chromium did not report on {page} (exit {out.returncode}):\n"
                             f"{out.stderr[-2000:]}")
    return json.loads(found.group(1))


def broken(report: dict) -> list[str]:
    """What did not load: images without pixels, links to files that do not exist."""
    bad = [f"image {i['src']} (naturalWidth {i['width']})" for i in report["images"]
           if not i["complete"] or i["width"] <= 0]
    for link in report["links"]:
        url = urlparse(link["url"])
        if url.scheme != "file":
            bad.append(f"link {link['href']} leaves the run folder ({link['url']})")
        elif not Path(unquote(url.path)).exists():
            bad.append(f"link {link['href']} -> {unquote(url.path)} does not exist")
    return bad
