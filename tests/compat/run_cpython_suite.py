"""Run CPython's own Lib/test/test_smtplib.py against mailtransfer.compat.smtplib.

Usage (from the repository root, with any Python >= 3.11 for the outer part):

    python tests/compat/run_cpython_suite.py /root/.pyenv/versions/3.12.1/bin/python
    python tests/compat/run_cpython_suite.py --stdlib PYTHON   # the standard module, to compare

The outer part installs mailtransfer's runtime dependencies for the target
interpreter into a cache folder (once: ``~/.cache/mailtransfer/compat-deps/X.Y``,
or ``$MAILTRANSFER_COMPAT_DEPS``) with that interpreter's own pip, then runs
this same file inside it with ``--inner``. The inner part puts ``src/`` and
the cache on ``sys.path``, calls :func:`mailtransfer.compat.install` so that
the suite's ``import smtplib`` gives the replacement, runs the suite with
unittest, and prints one JSON line: ``{"run": N, "passed": N, "skipped": N, ...}``.
The exit code is 0 only when nothing failed and something ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARK = "COMPAT-SUITE-RESULT "


def _dependencies() -> list[str]:
    import tomllib  # the outer part only: the inner one may run on Python 3.10

    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def _version(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2], sep='.')"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def ensure_deps(python: str) -> Path:
    """Install the runtime dependencies for ``python`` into the cache, once; return the folder."""
    base = Path(
        os.environ.get("MAILTRANSFER_COMPAT_DEPS", Path.home() / ".cache/mailtransfer/compat-deps")
    )
    target = base / _version(python)
    deps = _dependencies()
    stamp = target / ".deps.json"
    if stamp.exists() and json.loads(stamp.read_text()) == deps:
        return target
    subprocess.run(
        [
            python,
            *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *("--no-warn-script-location", "--upgrade", "--target", str(target), *deps),
        ],
        check=True,
        capture_output=True,
    )
    stamp.write_text(json.dumps(deps))
    return target


def run(python: str, *, stdlib: bool = False, timeout: float = 300) -> dict[str, object]:
    """Run the suite under ``python``; return the counts (see the module docstring)."""
    env = dict(os.environ)
    paths = [str(ROOT / "src"), str(ensure_deps(python))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("PYTHONHOME", None)
    command = [python, "-X", "faulthandler", __file__, "--inner"]
    if stdlib:
        command.append("--stdlib")
    proc = subprocess.run(
        command, check=False, capture_output=True, text=True, env=env, timeout=timeout
    )
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            result: dict[str, object] = json.loads(line[len(MARK) :])
            result["output"] = proc.stderr[-20000:]
            return result
    raise RuntimeError(f"the suite printed no result (exit {proc.returncode}):\n{proc.stderr}")


def _signature_mismatches(ours: object, theirs: object) -> list[str]:
    """Public classes and methods whose parameters differ from the standard module's."""
    import inspect

    def shape(func: object) -> list[tuple[object, ...]]:
        params = inspect.signature(func).parameters.values()  # type: ignore[arg-type]
        return [(p.name, p.kind, p.default) for p in params]

    mismatches = []
    for cls in ("SMTP", "SMTP_SSL", "LMTP"):
        mine, std = getattr(ours, cls), getattr(theirs, cls)
        for name in dir(std):
            member = getattr(std, name)
            if not callable(member) or (name.startswith("__") and name != "__init__"):
                continue
            if not hasattr(mine, name) or shape(getattr(mine, name)) != shape(member):
                mismatches.append(f"{cls}.{name}")
    for name in ("quoteaddr", "quotedata"):
        if shape(getattr(ours, name)) != shape(getattr(theirs, name)):
            mismatches.append(name)
    return mismatches


def _inner(stdlib: bool) -> int:
    import unittest
    import warnings

    if not stdlib:
        from mailtransfer import compat

        compat.install()
    import smtplib

    from test import test_smtplib  # type: ignore[import-not-found]

    want = "mailtransfer.compat.smtplib" if not stdlib else "smtplib"
    if test_smtplib.smtplib.__name__ != want:
        print(f"the suite imported {test_smtplib.smtplib.__name__}, not {want}", file=sys.stderr)
        return 2
    assert smtplib.__name__ == want
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        suite = unittest.defaultTestLoader.loadTestsFromModule(test_smtplib)
        result = unittest.TextTestRunner(stream=sys.stderr, verbosity=1).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    counts = {
        "python": ".".join(str(n) for n in sys.version_info[:3]),
        "module": smtplib.__name__,
        "run": result.testsRun,
        "passed": result.testsRun - failed - len(result.skipped) - len(result.expectedFailures),
        "skipped": len(result.skipped),
        "failed": failed,
        "failures": [str(test) for test, _ in result.failures + result.errors],
    }
    if not stdlib:
        from mailtransfer.compat._errors import standard_smtplib

        counts["signature_mismatches"] = _signature_mismatches(smtplib, standard_smtplib)
    print(MARK + json.dumps(counts))
    ok = failed == 0 and result.testsRun > 0 and not counts.get("signature_mismatches")
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    """Command line entry: see the module docstring."""
    if "--inner" in argv:
        return _inner("--stdlib" in argv)
    stdlib = "--stdlib" in argv
    pythons = [a for a in argv if not a.startswith("--")] or [sys.executable]
    status = 0
    for python in pythons:
        result = run(python, stdlib=stdlib)
        result.pop("output")
        print(json.dumps(result))
        status |= 1 if result["failed"] or result.get("signature_mismatches") else 0
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
