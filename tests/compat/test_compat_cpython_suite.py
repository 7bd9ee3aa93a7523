"""CPython's own test_smtplib.py, run against mailtransfer.compat.smtplib on every supported Python.

Each supported minor version's suite runs under that interpreter (found in pyenv's folder or on
PATH). A missing interpreter is a skip, or a failure with MAILTRANSFER_REQUIRE_PEERS=1 (CI).
"""

from __future__ import annotations

import glob
import os
import shutil

import pytest
import run_cpython_suite

VERSIONS = ("3.10", "3.11", "3.12", "3.13")


def find_python(version: str) -> str | None:
    """The newest pyenv build of ``version``, else ``pythonX.Y`` on PATH."""
    builds = sorted(
        glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python"),
        key=lambda p: [int(x) for x in p.split("/")[-3].split(".") if x.isdigit()],
    )
    return builds[-1] if builds else shutil.which(f"python{version}")


@pytest.mark.parametrize("version", VERSIONS)
def test_cpython_suite_passes(version: str) -> None:
    python = find_python(version)
    if python is None:
        if os.environ.get("MAILTRANSFER_REQUIRE_PEERS") == "1":
            pytest.fail(f"Python {version} is required (MAILTRANSFER_REQUIRE_PEERS=1)")
        pytest.skip(f"Python {version} is not installed")
    result = run_cpython_suite.run(python)
    assert result["module"] == "mailtransfer.compat.smtplib"
    assert result["python"].startswith(version + ".")  # type: ignore[union-attr]
    assert result["failed"] == 0, result["failures"]
    assert result["signature_mismatches"] == []
    # The suite has 82-83 tests on 3.10-3.13; far fewer means it did not really run.
    assert result["run"] >= 80
    assert result["passed"] == result["run"] - result["skipped"]
