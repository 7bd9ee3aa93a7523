"""pytest fixtures for code that sends mail: smtp_server, mail_outbox, smtp_certificates.

pytest loads this plugin by itself once mailtransfer is installed (the ``pytest11`` entry
point), so the fixtures need no import and no ``conftest.py``. Loading it costs nothing
beyond importing mailtransfer: aiosmtpd and trustme are imported only by a test that uses
a fixture needing them. Turn it off with ``-p no:mailtransfer``.

- ``smtp_server``: a running `RecordingServer` on loopback, stopped after the test. Its
  ``faults`` script refusals, 421s and hang-ups; ``@pytest.mark.smtp_server(...)`` passes
  options (``starttls=True`` or ``smtps=True`` use the ``smtp_certificates`` fixture).
- ``mail_outbox``: an `OutboxMailer`, also installed as the default mailer behind
  `mailtransfer.send`, so code under test that calls ``mailtransfer.send()`` records its
  messages there instead of needing ``MAILTRANSFER_URL``.
- ``smtp_certificates``: session-wide `tls_certificates("localhost", "127.0.0.1")`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._outbox import OutboxMailer
    from ._recording import RecordingServer
    from ._tls import TLSCertificates

__all__ = ["mail_outbox", "pytest_configure", "smtp_certificates", "smtp_server"]

_MARKER = (
    "smtp_server(**options): options for the smtp_server fixture's RecordingServer;"
    " starttls=True or smtps=True add TLS with the smtp_certificates fixture"
)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``smtp_server`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line("markers", _MARKER)


@pytest.fixture(scope="session")
def smtp_certificates() -> TLSCertificates:
    """A throw-away CA and a certificate for ``localhost`` and ``127.0.0.1`` (needs trustme).

    Returns:
        The certificates: ``server_context``, ``client_context``, ``ca_pem``, ...
    """
    from ._tls import tls_certificates  # noqa: PLC0415  (trustme loads only when used)

    return tls_certificates("localhost", "127.0.0.1")


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest) -> Iterator[RecordingServer]:
    """A `RecordingServer` on an ephemeral loopback port, stopped after the test.

    Options come from the closest ``@pytest.mark.smtp_server(...)`` marker: any
    `RecordingServer` argument, plus ``starttls=True`` (offer STARTTLS) or ``smtps=True``
    (implicit TLS), both with the ``smtp_certificates`` certificate.

    Yields:
        The running server; ``server.url`` is a mailer URL for it.
    """
    from ._recording import RecordingServer  # noqa: PLC0415  (aiosmtpd loads only when used)

    marker = request.node.get_closest_marker("smtp_server")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    starttls = bool(options.pop("starttls", False))
    smtps = bool(options.pop("smtps", False))
    if starttls and smtps:
        raise pytest.UsageError("@pytest.mark.smtp_server: starttls=True or smtps=True, not both")
    if starttls or smtps:
        certs: TLSCertificates = request.getfixturevalue("smtp_certificates")
        options["implicit_tls" if smtps else "tls_context"] = certs.server_context
    with RecordingServer(**options) as server:
        yield server


@pytest.fixture
def mail_outbox(monkeypatch: pytest.MonkeyPatch) -> OutboxMailer:
    """An `OutboxMailer`, also used by `mailtransfer.send` for the duration of the test.

    Returns:
        The outbox mailer; its ``outbox`` list holds what was sent.
    """
    from .. import _default  # noqa: PLC0415  (import mailtransfer's mailers only when used)
    from ._outbox import OutboxMailer  # noqa: PLC0415

    outbox = OutboxMailer()
    monkeypatch.setattr(_default, "_default", outbox)
    return outbox
