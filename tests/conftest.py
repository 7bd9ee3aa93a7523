"""Shared fixtures: hypothesis profiles, certificates, and real servers on loopback.

Fixtures that start a server stop it at teardown; a :class:`ScriptedServer` then raises
whatever its scripts raised, so a broken script fails the test that used it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import settings

from mailtransfer.testing import (
    RecordingServer,
    Script,
    ScriptedServer,
    TLSCertificates,
    tls_certificates,
)
from peers import DnsServer, SmtpSink, dnsmasq, smtp_sink

# "dev" keeps the edit-test loop quick; "ci" (chosen when CI is set, as .ci/run does) digs
# deeper and drops the deadline, which a busy shared runner would trip for no reason.
settings.register_profile("dev", max_examples=100, deadline=timedelta(milliseconds=500))
settings.register_profile("ci", max_examples=500, deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

_PEER_FIXTURES = frozenset({"sink", "dns_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses an external peer with ``peers`` (``-m "not peers"``)."""
    for item in items:
        if _PEER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.peers)


@pytest.fixture(scope="session")
def tls() -> TLSCertificates:
    """A throw-away CA with a server certificate for localhost and 127.0.0.1."""
    return tls_certificates("localhost", "127.0.0.1")


@pytest.fixture
def recording_server() -> Iterator[Callable[..., RecordingServer]]:
    """Factory: ``recording_server(**options)`` starts a RecordingServer, stopped at teardown."""
    with ExitStack() as stack:

        def start(**options: Any) -> RecordingServer:
            return stack.enter_context(RecordingServer(**options))

        yield start


@pytest.fixture
def smtp_server(recording_server: Callable[..., RecordingServer]) -> RecordingServer:
    """A plain RecordingServer: no TLS, no AUTH."""
    return recording_server()


@pytest.fixture
def starttls_server(
    recording_server: Callable[..., RecordingServer], tls: TLSCertificates
) -> RecordingServer:
    """A RecordingServer offering STARTTLS with the ``tls`` certificate."""
    return recording_server(tls_context=tls.server_context)


@pytest.fixture
def smtps_server(
    recording_server: Callable[..., RecordingServer], tls: TLSCertificates
) -> RecordingServer:
    """A RecordingServer speaking implicit TLS (SMTPS) with the ``tls`` certificate."""
    return recording_server(implicit_tls=tls.server_context)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    """Factory: ``scripted(script, **options)`` starts a ScriptedServer, stopped at teardown."""
    with ExitStack() as stack:

        def start(script: Script, **options: Any) -> ScriptedServer:
            return stack.enter_context(ScriptedServer(script, **options))

        yield start


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """Postfix's smtp-sink on a free loopback port (skipped when not installed)."""
    with smtp_sink() as running:
        yield running


@pytest.fixture
def dns_server() -> Iterator[Callable[..., DnsServer]]:
    """Factory: ``dns_server(records, domain="test")`` runs dnsmasq; returns (host, port)."""
    with ExitStack() as stack:

        def start(records: list[str], **options: Any) -> DnsServer:
            return stack.enter_context(dnsmasq(records, **options))

        yield start
