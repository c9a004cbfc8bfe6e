"""The approval page in a real browser: headless Chromium (Debian's ``chromium`` package) opens the links
served by the local endpoint server, at desktop (1280x800) and phone (390x844) width. The strict Content
Security Policy must not block the page's own style (Chromium logs a violation on its console), the
screenshots have the requested size, and the DOM Chromium built holds both decisions.

Skipped when no Chromium is installed (CI installs none); the page's HTML is tested without a browser in
tests/approval/test_decision_page.py and tests/plugin/test_approval_page.py. The screenshots land in
``$HOLYSHEEP_PAGE_SHOTS`` when set (to look at them), else in the test's temporary directory."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.plugin.test_approval_page import redis_credentials, route, served  # noqa: F401  (fixtures)

CHROMIUM = next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--force-device-scale-factor=1", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
               "--v=0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def shoot(tmp_path: Path, url: str, name: str) -> list[Path]:
    """Screenshots of ``url`` at each size; fails on a console line about the Content Security Policy."""
    out_dir = Path(os.environ.get("HOLYSHEEP_PAGE_SHOTS") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = []
    for size_name, (width, height) in SIZES.items():
        target = out_dir / f"approval-page-{name}-{size_name}.png"
        target.unlink(missing_ok=True)
        done = chromium(tmp_path, f"--window-size={width},{height}", f"--screenshot={target}", url)
        assert target.exists(), done.stderr[-2000:]
        assert png_size(target) == (width, height)
        assert "Content Security Policy" not in done.stderr, done.stderr[-2000:]
        shots.append(target)
    return shots


def test_the_page_in_headless_chromium_at_desktop_and_phone_width(plugin, redis_credentials, receiver, served, tmp_path) -> None:  # noqa: F811
    _request_id, links = route(plugin, redis_credentials, receiver, served)
    dom = chromium(tmp_path, "--window-size=390,844", "--dump-dom", links["dana"]["approve"])
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'lang="zh-Hans"' in dom.stdout and dom.stdout.count("<form") == 2 and "Content Security Policy" not in dom.stderr
    assert ">批准</button>" in dom.stdout and ">驳回</button>" in dom.stdout and "申请人" in dom.stdout
    shoot(tmp_path, links["dana"]["approve"], "pending-zh_Hans")
    shoot(tmp_path, links["dora"]["approve"], "pending-en_US")
    # Decided, then the used link: what the approver sees afterwards.
    link = links["dora"]["approve"]
    assert requests.post(link, data={"t": parse_qs(urlsplit(link).query)["t"][0]}, timeout=20).status_code == 200
    shoot(tmp_path, link, "used-en_US")
    shoot(tmp_path, links["dana"]["reject"], "closed-zh_Hans")
