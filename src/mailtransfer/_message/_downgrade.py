"""placeholder"""
from __future__ import annotations

from ._prepare import PreparedMessage


def downgrade(prepared: PreparedMessage, *, eightbitmime: bool, smtputf8: bool) -> PreparedMessage:
    """placeholder."""
    return prepared
