"""OpenTelemetry for mailtransfer: spans per SMTP stage and message, and metrics.

With ``opentelemetry-api`` installed (``pip install 'mailtransfer[otel]'``) mailtransfer
reports to the global tracer and meter providers from the first connection: configure the
OpenTelemetry SDK as usual and the spans and metrics appear. Without it, nothing is
imported and every hook is a single ``is None`` check.

Spans: ``smtp.connect`` (TCP, greeting, EHLO, TLS, AUTH) with children ``smtp.tls``
(STARTTLS) and ``smtp.auth``; ``smtp.send`` per message. Metrics:
``mailtransfer.messages.sent``, ``mailtransfer.messages.refused``,
``mailtransfer.recipients.refused``, ``mailtransfer.messages.retried``,
``mailtransfer.send.duration``, ``mailtransfer.connect.duration`` and
``mailtransfer.pool.connections``. See docs/observability.md for every attribute.
"""

from __future__ import annotations

from typing import Any

from . import _telemetry

__all__ = ["enabled", "instrument", "uninstrument"]


def instrument(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    record_addresses: bool = False,
) -> None:
    """Report to these providers, or say what may be recorded (replaces earlier settings).

    Args:
        tracer_provider: an OpenTelemetry ``TracerProvider``; default: the global one.
        meter_provider: an OpenTelemetry ``MeterProvider``; default: the global one.
        record_addresses: also put the envelope sender and recipients on ``smtp.send``
            spans. Off by default: they are personal data.

    Raises:
        ImportError: ``opentelemetry-api`` is not installed (``mailtransfer[otel]``).
    """
    if not _telemetry.AVAILABLE:
        raise ImportError("instrument() needs opentelemetry-api: pip install 'mailtransfer[otel]'")
    _telemetry.active = _telemetry.Telemetry(
        tracer_provider, meter_provider, record_addresses=record_addresses
    )


def uninstrument() -> None:
    """Stop reporting: no spans, no metrics, until `instrument` is called."""
    _telemetry.active = None


def enabled() -> bool:
    """Whether mailtransfer is reporting spans and metrics right now."""
    return _telemetry.active is not None
