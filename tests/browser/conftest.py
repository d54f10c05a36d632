"""Fixtures every browser module shares: Playwright (skipped without Chromium), one Chromium per
module, the session's local stack and its reference, and a fresh screenshot folder named by the
module's ARTIFACTS."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, sync_playwright_or_skip
from tests.browser.local_stack import LocalStack, has_service
from tests.support import require_or_skip


@pytest.fixture(scope="module")
def playwright_api() -> Any:
    return sync_playwright_or_skip()


@pytest.fixture(scope="module")
def reference(stack_reference: tuple[Path, Path]) -> tuple[Path, Path]:
    return stack_reference


@pytest.fixture(scope="module")
def stack(playwright_api: Any, local_stack: LocalStack) -> LocalStack:
    require_or_skip(has_service("annotator"),
                    "the annotator is not part of the local stack (gas_cli.dev.SERVICES)")
    return local_stack


@pytest.fixture(scope="module")
def browser(playwright_api: Any) -> Iterator[Any]:
    with playwright_api() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def artifacts(request: pytest.FixtureRequest) -> Path:
    folder: Path = request.module.ARTIFACTS
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
