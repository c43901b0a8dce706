"""Test-wide fixtures and the gate for tests that need root and Linux namespaces."""

from __future__ import annotations

import os
import shutil
import sys

import pytest


def _can_run_root_tests() -> str | None:
    if sys.platform != "linux":
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs the {tool} command"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _can_run_root_tests()
    if reason is None:
        return
    if os.environ.get("AMBIENTMESH_REQUIRE_ROOT_TESTS") == "1":
        raise pytest.UsageError(f"root tests are required here but cannot run: {reason}")
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
