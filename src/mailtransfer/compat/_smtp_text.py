"""The text of the smtplib drop-in's command lines and replies, without I/O.

Quoting (:func:`quoteaddr`, :func:`quotedata`), the checks that refuse CR, LF
and NUL in a command line or an address before a byte is sent, the
conversion of a message to CRLF bytes, and the reading of an EHLO reply into
the ``esmtp_features`` mapping. :mod:`mailtransfer.compat.smtplib`
re-exports the public names; the ``SMTP`` layers import the rest from here.
"""

from __future__ import annotations

import email.utils
import re

from ..errors import InvalidAddress, InvalidArgument
from ..protocol._data import normalize_line_endings

CRLF = "\r\n"
bCRLF = b"\r\n"

OLDSTYLE_AUTH = re.compile(r"auth=(.*)", re.I)
_FEATURE = re.compile(r"(?P<feature>[A-Za-z0-9][A-Za-z0-9\-]*) ?")


def quoteaddr(addrstring: str) -> str:
    """Put an address in angle brackets for ``MAIL``/``RCPT``, dropping any display name.

    Args:
        addrstring: an address, with or without a display name.

    Returns:
        ``<address>``; an unparsable string is bracketed as it is, unless it
        already starts with ``<``.
    """
    name, address = email.utils.parseaddr(addrstring)
    if name or address:
        return f"<{address}>"
    if addrstring.strip().startswith("<"):
        return addrstring
    return f"<{addrstring}>"


def _address_only(addrstring: str) -> str:
    name, address = email.utils.parseaddr(addrstring)
    return address if (name or address) else addrstring


def _crlf_text(text: str) -> str:
    # The str form of mailtransfer.protocol's normalisation: CRLF, bare LF, bare CR -> CRLF.
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def quotedata(data: str) -> str:
    """Make every line ending CRLF and double a ``.`` that starts a line.

    Args:
        data: message text.

    Returns:
        The text as ``DATA`` carries it, without the final ``.`` line.
    """
    text = _crlf_text(data).replace("\r\n.", "\r\n..")
    return "." + text if text.startswith(".") else text


def _prohibited(text: str) -> str | None:
    """What is wrong with ``text`` on a command line, shown escaped; None when it is fine."""
    if "\r" in text or "\n" in text:
        shown = text.replace("\n", "\\n").replace("\r", "\\r")
        return f"prohibited newline characters: {shown}"
    if "\0" in text:
        return "a prohibited NUL character: " + text.replace("\0", "\\0")
    return None


def _check_command(line: str) -> None:
    problem = _prohibited(line)
    if problem is not None:
        raise InvalidArgument(f"command and arguments contain {problem}")


def _check_address(address: str) -> None:
    # email.utils.parseaddr silently drops whatever follows a CR or LF, so the standard
    # module would send to a different address than asked: refuse it instead.
    problem = _prohibited(address)
    if problem is not None:
        raise InvalidAddress(f"address contains {problem}")


def _message_bytes(msg: str | bytes | bytearray) -> bytes:
    if isinstance(msg, str):
        return normalize_line_endings(msg.encode("ascii"))
    return normalize_line_endings(bytes(msg))


def _parse_features(reply: bytes) -> dict[str, str]:
    """The ``esmtp_features`` mapping from an EHLO reply's text (first line skipped)."""
    features: dict[str, str] = {}
    for line in reply.decode("latin-1").split("\n")[1:]:
        old_auth = OLDSTYLE_AUTH.match(line)
        if old_auth:
            features["auth"] = features.get("auth", "") + " " + old_auth.group(1)
            continue
        match = _FEATURE.match(line)
        if not match:
            continue
        name = match.group("feature").lower()
        params = line[match.end("feature") :].strip()
        if name == "auth":
            features["auth"] = features.get("auth", "") + " " + params
        else:
            features[name] = params
    return features
