"""Compatibility layers: :mod:`mailtransfer.compat.smtplib`, a drop-in for the standard smtplib.

Example:
    >>> import sys
    >>> from mailtransfer import compat
    >>> compat.install()
    >>> import smtplib
    >>> smtplib.__name__
    'mailtransfer.compat.smtplib'
    >>> compat.uninstall()
    >>> sys.modules["smtplib"].__name__
    'smtplib'
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

__all__ = ["install", "installed", "uninstall"]

_saved: list[ModuleType | None] = []


def install() -> None:
    """Make ``import smtplib`` anywhere in this process give :mod:`mailtransfer.compat.smtplib`.

    Modules that imported ``smtplib`` before keep the module they got; call
    this early (at start-up, before importing the code that sends mail).
    Calling it twice is harmless.
    """
    if installed():
        return
    module = importlib.import_module("mailtransfer.compat.smtplib")
    _saved.append(sys.modules.get("smtplib"))
    sys.modules["smtplib"] = module


def uninstall() -> None:
    """Undo :func:`install`: ``import smtplib`` gives what it gave before."""
    if not installed():
        return
    previous = _saved.pop() if _saved else None
    if previous is None:
        sys.modules.pop("smtplib", None)
    else:
        sys.modules["smtplib"] = previous


def installed() -> bool:
    """Whether ``sys.modules["smtplib"]`` is :mod:`mailtransfer.compat.smtplib`.

    Returns:
        True after :func:`install` (and before :func:`uninstall`).
    """
    current = sys.modules.get("smtplib")
    return bool(getattr(current, "__mailtransfer_compat__", False))
