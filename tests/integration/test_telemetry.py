"""OpenTelemetry spans and metrics, read back with the SDK's in-memory exporters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from mailtransfer import AsyncMailer, Mailer, RetryPolicy, StartTLS, _telemetry, observability
from mailtransfer.errors import DeliveryUnknown, RecipientsRefused
from mailtransfer.testing import RecordingServer, TLSCertificates

Factory = Callable[..., RecordingServer]
SECRET = "s3cret-Pa55"
MESSAGE: dict[str, Any] = {
    "sender": "alice@example.test",
    "to": ["bob@example.test"],
    "subject": "Hello",
    "text": "Hi",
}


class Collected:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name == name]

    def metric(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        points: list[Any] = []
        if data is None:
            return points
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points

    def total(self, name: str, **attributes: Any) -> float:
        return sum(
            p.value
            for p in self.metric(name)
            if all(p.attributes.get(k) == v for k, v in attributes.items())
        )

    def all_attribute_values(self) -> str:
        values = [str(v) for s in self.finished() for v in (s.attributes or {}).values()]
        values += [str(s.status.description) for s in self.finished()]
        values += [str(e.attributes) for s in self.finished() for e in s.events]
        return " ".join(values)


@pytest.fixture
def otel() -> Iterator[Collected]:
    previous = _telemetry.active
    collected = Collected()
    observability.instrument(
        tracer_provider=collected.tracer_provider, meter_provider=collected.meter_provider
    )
    try:
        yield collected
    finally:
        _telemetry.active = previous
        collected.tracer_provider.shutdown()
        collected.meter_provider.shutdown()


def tls_mailer(server: RecordingServer, tls: TLSCertificates, **options: Any) -> Mailer:
    return Mailer(
        host="localhost",
        port=server.port,
        tls=StartTLS(context=tls.client_context),
        username="alice",
        password=SECRET,
        retry=RetryPolicy.none(),
        **options,
    )


def test_spans_for_each_stage_and_message(
    otel: Collected, recording_server: Factory, tls: TLSCertificates
) -> None:
    server = recording_server(tls_context=tls.server_context, auth={"alice": SECRET})
    with tls_mailer(server, tls) as mailer:
        mailer.send(**MESSAGE)
        mailer.send(**MESSAGE)
        assert (
            otel.total("mailtransfer.pool.connections", **{"mailtransfer.pool.state": "idle"}) == 1
        )
    (connect,) = otel.named("smtp.connect")
    (tls_span,) = otel.named("smtp.tls")
    (auth,) = otel.named("smtp.auth")
    sends = otel.named("smtp.send")
    assert len(sends) == 2
    assert connect.attributes["server.address"] == "localhost"
    assert connect.attributes["server.port"] == server.port
    assert str(connect.attributes["tls.protocol.version"]).startswith("TLSv1.")
    assert tls_span.parent is not None
    assert tls_span.parent.span_id == connect.context.span_id
    assert auth.parent is not None
    assert auth.parent.span_id == connect.context.span_id
    assert auth.attributes["smtp.auth.mechanism"] in ("PLAIN", "LOGIN")
    assert tls_span.attributes["tls.cipher"]
    for send in sends:
        assert send.attributes["smtp.recipients.count"] == 1
        assert send.attributes["smtp.recipients.accepted"] == 1
        assert send.attributes["smtp.reply.code"] == 250
        assert send.attributes["smtp.message.size"] > 0
        assert send.status.status_code is not StatusCode.ERROR
    # Nothing personal or secret: no user name, password or address anywhere.
    recorded = otel.all_attribute_values()
    assert SECRET not in recorded
    assert "alice" not in recorded
    assert "@example.test" not in recorded
    assert otel.total("mailtransfer.messages.sent") == 2
    (duration,) = otel.metric("mailtransfer.send.duration")
    assert duration.count == 2
    (connect_duration,) = otel.metric("mailtransfer.connect.duration")
    assert connect_duration.count == 1


def test_refusals_are_counted_and_marked_without_addresses(
    otel: Collected, smtp_server: RecordingServer
) -> None:
    smtp_server.faults.refuse_recipient("nobody@example.test", 550, "5.1.1 No such user")
    with Mailer(smtp_server.url, retry=RetryPolicy.none()) as mailer:
        result = mailer.send(**{**MESSAGE, "to": ["bob@example.test", "nobody@example.test"]})
        assert result.partial
        with pytest.raises(RecipientsRefused):
            mailer.send(**{**MESSAGE, "to": ["nobody@example.test"]})
    ok, failed = otel.named("smtp.send")
    assert ok.attributes["smtp.recipients.refused"] == 1
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "RecipientsRefused"
    assert otel.total("mailtransfer.messages.sent") == 1
    assert otel.total("mailtransfer.recipients.refused") == 1
    assert otel.total("mailtransfer.messages.refused", **{"error.type": "RecipientsRefused"}) == 1
    assert "@example.test" not in otel.all_attribute_values()


def test_retries_counted(otel: Collected, smtp_server: RecordingServer) -> None:
    smtp_server.faults.refuse_sender(None, 451, "4.3.0 Try again", times=1)
    retry = RetryPolicy(attempts=2, initial_backoff=0.0, jitter=0.0)
    with Mailer(smtp_server.url, retry=retry) as mailer:
        mailer.send(**MESSAGE)
    assert otel.total("mailtransfer.messages.retried") == 1
    assert otel.total("mailtransfer.messages.sent") == 1
    assert len(otel.named("smtp.send")) == 2


def test_delivery_unknown_is_an_error_span(otel: Collected, smtp_server: RecordingServer) -> None:
    smtp_server.faults.disconnect(".")
    with (
        Mailer(smtp_server.url, retry=RetryPolicy.none()) as mailer,
        pytest.raises(DeliveryUnknown),
    ):
        mailer.send(**MESSAGE)
    (send,) = otel.named("smtp.send")
    assert send.attributes["error.type"] == "DeliveryUnknown"
    assert send.attributes["smtp.stage"] == "end-of-data"


def test_connect_failure_span(otel: Collected) -> None:
    from mailtransfer.errors import ConnectError

    with (
        Mailer("smtp://127.0.0.1:1?tls=none", retry=RetryPolicy.none()) as mailer,
        pytest.raises(ConnectError),
    ):
        mailer.send(**MESSAGE)
    (connect,) = otel.named("smtp.connect")
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes["error.type"] == "ConnectError"
    (duration,) = otel.metric("mailtransfer.connect.duration")
    assert duration.attributes["error.type"] == "ConnectError"


def test_addresses_only_when_allowed(otel: Collected, smtp_server: RecordingServer) -> None:
    observability.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        record_addresses=True,
    )
    with Mailer(smtp_server.url, retry=RetryPolicy.none()) as mailer:
        mailer.send(**MESSAGE)
    (send,) = otel.named("smtp.send")
    assert send.attributes["smtp.mail_from"] == "alice@example.test"
    assert tuple(send.attributes["smtp.rcpt_to"]) == ("bob@example.test",)


def test_asyncio_client_spans(
    otel: Collected, recording_server: Factory, tls: TLSCertificates
) -> None:
    server = recording_server(tls_context=tls.server_context, auth={"alice": SECRET})

    async def main() -> None:
        async with AsyncMailer(
            host="localhost",
            port=server.port,
            tls=StartTLS(context=tls.client_context),
            username="alice",
            password=SECRET,
            retry=RetryPolicy.none(),
        ) as mailer:
            await asyncio.gather(*(mailer.send(**MESSAGE) for _ in range(3)))

    asyncio.run(main())
    connects = otel.named("smtp.connect")
    assert connects
    connect_ids = {c.context.span_id for c in connects}
    for child in otel.named("smtp.auth") + otel.named("smtp.tls"):
        assert child.parent is not None
        assert child.parent.span_id in connect_ids
    assert len(otel.named("smtp.send")) == 3
    assert otel.total("mailtransfer.messages.sent") == 3
    assert SECRET not in otel.all_attribute_values()


def test_uninstrument_stops_reporting(otel: Collected, smtp_server: RecordingServer) -> None:
    observability.uninstrument()
    assert not observability.enabled()
    with Mailer(smtp_server.url, retry=RetryPolicy.none()) as mailer:
        mailer.send(**MESSAGE)
    assert otel.finished() == []
    assert smtp_server.messages


def test_without_opentelemetry_nothing_is_imported(smtp_server: RecordingServer) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["opentelemetry"] = None  # as if not installed
        import mailtransfer
        from mailtransfer import _telemetry, observability
        assert _telemetry.active is None and not observability.enabled()
        with mailtransfer.Mailer({smtp_server.url!r}) as mailer:
            mailer.send(sender="a@example.test", to=["b@example.test"], text="x")
        try:
            observability.instrument()
        except ImportError as exc:
            assert "mailtransfer[otel]" in str(exc)
        else:
            raise AssertionError("instrument() without opentelemetry must fail")
        assert not [m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v]
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert len(smtp_server.messages) == 1


def test_global_sdk_provider_is_picked_up_without_instrument(smtp_server: RecordingServer) -> None:
    """The default: nothing recorded until an SDK is configured, then spans with no call."""
    code = textwrap.dedent(
        f"""
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import mailtransfer
        from mailtransfer import _telemetry

        assert _telemetry.active is not None and _telemetry.active.unconfigured()
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        assert not _telemetry.active.unconfigured()
        with mailtransfer.Mailer({smtp_server.url!r}) as mailer:
            mailer.send(sender="a@example.test", to=["b@example.test"], text="x")
        names = sorted(s.name for s in exporter.get_finished_spans())
        assert names == ["smtp.connect", "smtp.send"], names
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
