"""Debian's Chromium driven by Playwright, as every browser test launches it (never
`playwright install`, which downloads a browser and fails offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support import require_or_skip

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach outside hosts.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def sync_playwright_or_skip() -> Any:
    """Playwright's `sync_playwright`, or a skip (a failure under CI) naming what is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    require_or_skip(sync_playwright is not None,
                    "Python playwright is not installed (uv sync installs it with the dev group)")
    require_or_skip(CHROMIUM.exists(),
                    f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    return sync_playwright
