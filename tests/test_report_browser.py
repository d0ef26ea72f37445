"""The report as a browser lays it out (headless Chromium; skipped where none is installed, and installed by
.ci/run): it fits a 1,400 px window without horizontal scrolling, its comparison table has every baseline the
probe measured, and no caption box overlaps an image box (the DOM's bounding boxes)."""

import json
import re
import shutil
import subprocess
from html import unescape

import pytest

from tests.conftest import copy_run, invoke

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (.ci/run installs it)")

# run in the page once it is laid out: the boxes the test judges, written into the DOM for --dump-dom
MEASURE = """<script>
const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
const all = [...document.querySelectorAll('body *')].filter(e => e.getClientRects().length);
const captions = [...document.querySelectorAll('.group-caption, .thumb-caption, .strip-title, figcaption, '
                                               + '.caption')].map(box);
const images = [...document.querySelectorAll('img')].map(box);
document.body.setAttribute('data-measured', JSON.stringify({
  scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
  left: Math.min(...all.map(e => box(e)[0])), right: Math.max(...all.map(e => box(e)[2])),
  captions, images,
  rows: [...document.querySelectorAll('table.comparison tr td.label')].map(e => e.textContent)}));
</script>"""


def laid_out(page, tmp_path) -> dict:
    html = page.read_text().replace("</body>", MEASURE + "</body>")
    (tmp_path / "measured.html").write_text(html)
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000",
                          "--run-all-compositor-stages-before-draw", "--virtual-time-budget=5000", "--dump-dom",
                          (tmp_path / "measured.html").as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'data-measured="([^"]*)"', out.stdout)
    assert found, out.stderr[-2000:]
    return json.loads(unescape(found.group(1)))


def overlaps(a, b) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


def test_the_report_fits_the_page_shows_every_baseline_and_no_caption_covers_an_image(runner, tiny_run, tmp_path):
    run = copy_run(tiny_run("contrastive", 2), tmp_path / "con")
    r = invoke(runner, "probe", "--run", run, "--baselines", "raw,pca,umap,random", "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    r = invoke(runner, "report", run, "--out", tmp_path / "r.html", "--device", "cpu", "--quiet")
    assert r.exit_code == 0, r.output
    m = laid_out(tmp_path / "r.html", tmp_path)
    assert m["scroll"] <= m["client"] and m["right"] - m["left"] <= 1340, m
    measured = json.loads((run / "probe.json").read_text())["results"]
    names = {"raw": "raw pixels", "pca": "PCA of raw pixels", "umap": "UMAP of raw pixels", "random": "random encoder"}
    for key in measured:
        if key != "encoder":
            assert any(row.startswith(names[key]) for row in m["rows"]), (key, m["rows"])
    assert m["images"] and m["captions"]
    assert not [(c, i) for c in m["captions"] for i in m["images"] if overlaps(c, i)]
