"""Reading a batch of messages for ``mailtransfer bulk``: mbox, a directory of .eml, JSON lines.

Everything is read and checked before the first message is sent, so a malformed file is a
usage error that names the bad entry, never a batch that stops half-way.
"""

from __future__ import annotations

import email.policy
import json
import mailbox
from collections.abc import Mapping
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from .._sending import BUILD_ARGUMENTS
from ..errors import UsageError

__all__ = ["FORMATS", "detect_format", "read_batch"]

FORMATS = ("mbox", "eml", "jsonl")
_PARSER = BytesParser(policy=email.policy.default)
# JSON lines may spell the sender as "from", as in a message header.
_ALIASES = {"from": "sender"}


def detect_format(path: Path) -> str:
    """``eml`` for a directory, ``jsonl`` for ``.jsonl``/``.ndjson``/``.json``, else ``mbox``."""
    if path.is_dir():
        return "eml"
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "mbox"


def read_batch(path: Path, fmt: str) -> list[tuple[str, EmailMessage | Mapping[str, Any]]]:
    """Every message in ``path``, each with a label for reports (file name or line number).

    Raises:
        UsageError: the file cannot be read, or an entry is malformed (named in the message).
    """
    try:
        if fmt == "eml":
            return _read_eml(path)
        if fmt == "jsonl":
            return _read_jsonl(path)
        return _read_mbox(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_eml(path: Path) -> list[tuple[str, EmailMessage | Mapping[str, Any]]]:
    if not path.is_dir():
        raise UsageError(f"{path} is not a directory of .eml files")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".eml" and p.is_file())
    return [(p.name, _PARSER.parsebytes(p.read_bytes())) for p in files]


def _read_mbox(path: Path) -> list[tuple[str, EmailMessage | Mapping[str, Any]]]:
    if not path.is_file():
        raise UsageError(f"{path} is not an mbox file")
    box = mailbox.mbox(path, create=False)
    try:
        items: list[tuple[str, EmailMessage | Mapping[str, Any]]] = []
        for number, message in enumerate(box, start=1):
            parsed = _PARSER.parsebytes(message.as_bytes())
            del parsed["Status"], parsed["X-Status"]  # mbox bookkeeping, not message headers
            items.append((f"message {number}", parsed))
        return items
    finally:
        box.close()


def _read_jsonl(path: Path) -> list[tuple[str, EmailMessage | Mapping[str, Any]]]:
    items: list[tuple[str, EmailMessage | Mapping[str, Any]]] = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            label = f"line {number}"
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}, {label}: not JSON ({exc.msg})") from None
            if not isinstance(entry, dict):
                raise UsageError(f"{path}, {label}: expected an object of send() arguments")
            arguments = {_ALIASES.get(str(key), str(key)): value for key, value in entry.items()}
            unknown = arguments.keys() - BUILD_ARGUMENTS
            if unknown:
                raise UsageError(f"{path}, {label}: unknown keys {', '.join(sorted(unknown))}")
            items.append((label, arguments))
    return items
