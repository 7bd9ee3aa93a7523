"""OpenTelemetry spans and metrics for SMTP sessions and messages, read back in memory.

Run it: ``python examples/opentelemetry_spans.py`` (needs ``opentelemetry-sdk`` and the
``testing`` extra, all in ``pip install -e '.[test]'``; without the SDK it says so and
exits 0). A loopback server with STARTTLS and a login stands in for your relay.

What it shows:

1. ``mailtransfer.observability.instrument()`` with your own tracer and meter providers
   (with a globally configured SDK there is nothing to call at all).
2. The span tree: ``smtp.connect`` with its ``smtp.tls`` and ``smtp.auth`` children, then
   one ``smtp.send`` per message, as children of the application's own span.
3. What the attributes hold, and that the password, the user name and every email
   address are absent from them.
4. The metrics: messages sent and refused, recipients refused, send latency, pool use.

It exits 0 when the spans and metrics are as expected, and 1 otherwise.
"""

from __future__ import annotations

import sys

try:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
except ImportError:
    print("this example needs opentelemetry-sdk: pip install opentelemetry-sdk")
    sys.exit(0)

from mailtransfer import Mailer, RetryPolicy, StartTLS, observability
from mailtransfer.testing import RecordingServer, tls_certificates

PASSWORD = "s3cret-pa55"


def main() -> int:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    observability.instrument(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    tracer = tracer_provider.get_tracer("shop")
    certs = tls_certificates("localhost")
    with RecordingServer(tls_context=certs.server_context, auth={"alice": PASSWORD}) as server:
        server.faults.refuse_recipient("gone@example.test", 550, "5.1.1 No such user")
        with Mailer(
            host="localhost",
            port=server.port,
            tls=StartTLS(context=certs.client_context),
            username="alice",
            password=PASSWORD,
            retry=RetryPolicy.none(),
        ) as mailer:
            with tracer.start_as_current_span("checkout"):
                mailer.send(sender="shop@example.test", to=["bob@example.test"], text="Thanks!")
            with tracer.start_as_current_span("newsletter"):
                mailer.send(
                    sender="shop@example.test",
                    to=["carol@example.test", "gone@example.test"],
                    text="News",
                )
            pool_points = _points(reader, "mailtransfer.pool.connections")

    finished = spans.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished}
    print("Spans (child under parent):")
    for span in sorted(finished, key=lambda s: s.start_time or 0):
        depth, parent = 0, span.parent
        while parent is not None and parent.span_id in by_id:
            depth, parent = depth + 1, by_id[parent.span_id].parent
        attributes = ", ".join(f"{k}={v}" for k, v in (span.attributes or {}).items())
        print(f"  {'  ' * depth}{span.name}  [{span.status.status_code.name}]  {attributes}")

    print("\nMetrics:")
    for name in (
        "mailtransfer.messages.sent",
        "mailtransfer.recipients.refused",
        "mailtransfer.send.duration",
        "mailtransfer.connect.duration",
    ):
        for point in _points(reader, name):
            value = getattr(point, "value", None)
            shown = value if value is not None else f"count={point.count} sum={point.sum:.4f}s"
            print(f"  {name} {dict(point.attributes)}: {shown}")
    for point in pool_points:
        print(f"  mailtransfer.pool.connections {dict(point.attributes)}: {point.value}")

    names = [span.name for span in finished]
    recorded = " ".join(str(v) for s in finished for v in (s.attributes or {}).values())
    problems = []
    expected = ["checkout", "newsletter", "smtp.auth", "smtp.connect", "smtp.send", "smtp.send"]
    if sorted(names) != sorted([*expected, "smtp.tls"]):
        problems.append(f"unexpected spans {names}")
    if PASSWORD in recorded or "alice" in recorded or "@example.test" in recorded:
        problems.append("a secret or an address was recorded")
    sent = sum(p.value for p in _points(reader, "mailtransfer.messages.sent"))
    if sent != 2:
        problems.append(f"messages.sent is {sent}, expected 2")
    for problem in problems:
        print("FAILED:", problem)
    if not problems:
        print("\nNo password, user name or email address in any attribute.")
    return 1 if problems else 0


def _points(reader: InMemoryMetricReader, name: str) -> list:  # type: ignore[type-arg]
    data = reader.get_metrics_data()
    if data is None:
        return []
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


if __name__ == "__main__":
    sys.exit(main())
