"""Developer tasks, run with nox.

``nox`` runs lint, typecheck, tests (on every CPython 3.10-3.14 it finds), docs and examples;
``nox -s benchmarks`` runs the benchmark scripts. ``.ci/run`` is the CI entry point: it also
installs the real test peers (smtp-sink, dnsmasq) that some tests need.

With pyenv, nox only sees the versions pyenv exposes; show them all for one run with e.g.
``PYENV_VERSION=3.11.7:3.10.13:3.12.1:3.13.0 nox -s tests``.
"""

from __future__ import annotations

from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13", "3.14"]

nox.options.error_on_missing_interpreters = False  # pyenv machines differ; test what exists
nox.options.sessions = ["lint", "typecheck", "tests", "docs", "examples"]


def _scripts(folder: str) -> list[str]:
    """The runnable scripts in ``folder``: ``*.py`` not starting with ``_`` (helpers)."""
    return sorted(str(p) for p in Path(folder).glob("*.py") if not p.name.startswith("_"))


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite; extra arguments go to pytest, e.g. ``nox -s tests -- -m 'not peers'``."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict", "src")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation; warnings are errors."""
    session.install("-e", ".[docs]", "ruff")  # ruff formats the rendered signatures
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def examples(session: nox.Session) -> None:
    """Run every script in examples/."""
    scripts = _scripts("examples")
    if not scripts:
        session.skip("no examples/*.py yet")
    session.install("-e", ".[testing]")
    for script in scripts:
        session.run("python", script)


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Run every script in benchmarks/ (they need smtp-sink for the send benchmarks)."""
    scripts = _scripts("benchmarks")
    if not scripts:
        session.skip("no benchmarks/*.py yet")
    session.install("-e", ".[test,bench]")
    for script in scripts:
        session.run("python", script, *session.posargs)
