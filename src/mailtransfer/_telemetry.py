"""OpenTelemetry spans and metrics for sessions and messages; nothing at all without it.

Strategy: the hook sites (the drivers' ``open()``, the session's flows, the pools, the
retry policy) each test ``_telemetry.active is not None`` and otherwise do nothing, so
without ``opentelemetry-api`` the cost is one attribute read per stage. With it, the
flows are wrapped in a generator that starts a span when the flow starts and ends it
when the flow returns or raises. Because flows are driver-independent, one wrapper
serves the sync and the asyncio clients.

What goes into attributes is chosen here, once: server address and port, TLS version and
cipher, SASL mechanism, sizes, counts, reply codes and error types. Never a credential or
user name; never error text (which quotes addresses), and no email address unless
`mailtransfer.observability.instrument` is told ``record_addresses=True``.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._flows._io import Flow, StartTLS, TLSInfo
from ._version import __version__
from .errors import MailTransferError

if TYPE_CHECKING:
    from ._flows.session import SessionBase
    from .results import SendResult

try:  # checked once: without opentelemetry-api, `active` stays None and nothing runs
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - exercised by the no-extra CI job
    _trace = None  # type: ignore[assignment]
    _metrics = None  # type: ignore[assignment]

__all__ = ["AVAILABLE", "Telemetry", "active", "pools"]

AVAILABLE = _trace is not None
"""Whether ``opentelemetry-api`` could be imported."""

_T = TypeVar("_T")
_SCOPE = "mailtransfer"

pools: weakref.WeakSet[Any] = weakref.WeakSet()
"""Every live connection pool, for the pool gauges (the pools add themselves)."""


class Telemetry:
    """The tracer, the instruments, and the rules for what may go into attributes.

    Args:
        tracer_provider: where spans go (default: the global provider).
        meter_provider: where metrics go (default: the global provider).
        record_addresses: add the envelope sender and recipients to message spans.
    """

    def __init__(
        self,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        *,
        record_addresses: bool = False,
    ) -> None:
        assert _trace is not None
        assert _metrics is not None
        self.record_addresses = record_addresses
        self._explicit = tracer_provider is not None or meter_provider is not None
        self.tracer = _trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = _metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self.sent = meter.create_counter(
            "mailtransfer.messages.sent",
            unit="{message}",
            description="Messages the server accepted for at least one recipient",
        )
        self.refused = meter.create_counter(
            "mailtransfer.messages.refused",
            unit="{message}",
            description="Attempts to send a message that failed, by error.type",
        )
        self.recipients_refused = meter.create_counter(
            "mailtransfer.recipients.refused",
            unit="{recipient}",
            description="Recipients refused in messages that were otherwise accepted",
        )
        self.retried = meter.create_counter(
            "mailtransfer.messages.retried",
            unit="{attempt}",
            description="Attempts retried after a transient failure, by error.type",
        )
        self.send_duration = meter.create_histogram(
            "mailtransfer.send.duration",
            unit="s",
            description="From MAIL FROM to the reply to the end of the data",
        )
        self.connect_duration = meter.create_histogram(
            "mailtransfer.connect.duration",
            unit="s",
            description="Opening a session: TCP, greeting, EHLO, TLS and AUTH",
        )
        meter.create_observable_up_down_counter(
            "mailtransfer.pool.connections",
            callbacks=[_observe_pools],
            unit="{connection}",
            description="Pooled connections by state (in_use, idle, opening, closing)",
        )

    # -- hook sites -----------------------------------------------------------------------

    def unconfigured(self) -> bool:
        """True while nobody set up OpenTelemetry: the API alone would record nothing.

        Then the hooks skip their work, so having ``opentelemetry-api`` installed (as a
        dependency of something else) costs next to nothing until an SDK is configured.
        """
        if self._explicit:
            return False
        assert _trace is not None
        assert _metrics is not None
        tracing = _trace.get_tracer_provider()
        meters = type(_metrics.get_meter_provider()).__name__
        return isinstance(tracing, (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider)) and (
            meters in ("_ProxyMeterProvider", "NoOpMeterProvider")
        )

    def traced_open(self, conn: SessionBase, opener: Callable[[], _T]) -> _T:
        """Run ``opener`` (the sync ``open()``) inside an ``smtp.connect`` span."""
        if self.unconfigured():
            return opener()
        with self._connect_span(conn) as span:
            started = time.perf_counter()
            try:
                result = opener()
            except BaseException as exc:
                self._opened(span, conn, started, exc)
                raise
            self._opened(span, conn, started, None)
            return result

    async def traced_open_async(self, conn: SessionBase, opener: Callable[[], Awaitable[_T]]) -> _T:
        """Await ``opener`` (the asyncio ``open()``) inside an ``smtp.connect`` span."""
        if self.unconfigured():
            return await opener()
        with self._connect_span(conn) as span:
            started = time.perf_counter()
            try:
                result = await opener()
            except BaseException as exc:
                self._opened(span, conn, started, exc)
                raise
            self._opened(span, conn, started, None)
            return result

    def trace_handshake(self, conn: SessionBase, flow: Flow) -> Flow:
        """The greeting/EHLO/STARTTLS flow, with an ``smtp.tls`` span around the handshake."""
        if self.unconfigured():
            return flow
        return self._traced(flow, None, self._server_attributes(conn), None)

    def trace_auth(self, conn: SessionBase, flow: Flow) -> Flow:
        """The AUTH flow inside an ``smtp.auth`` span (the mechanism, never the user)."""
        if self.unconfigured():
            return flow

        def finish(span: Any, mechanism: Any) -> None:
            span.set_attribute("smtp.auth.mechanism", str(mechanism))

        return self._traced(flow, "smtp.auth", self._server_attributes(conn), finish)

    def trace_send(
        self,
        conn: SessionBase,
        flow: Flow,
        sender: str,
        recipients: Sequence[str],
        size: int | None,
    ) -> Flow:
        """One message's transaction inside an ``smtp.send`` span, counted and timed."""
        if self.unconfigured():
            return flow
        attributes = self._server_attributes(conn)
        attributes["smtp.recipients.count"] = len(recipients)
        if size is not None:
            attributes["smtp.message.size"] = size
        if self.record_addresses:
            attributes["smtp.mail_from"] = sender
            attributes["smtp.rcpt_to"] = list(recipients)
        metric_attributes = {k: attributes[k] for k in ("server.address", "server.port")}
        started = time.perf_counter()

        def finish(span: Any, result: SendResult) -> None:
            span.set_attribute("smtp.reply.code", result.reply.code)
            span.set_attribute("smtp.recipients.accepted", len(result.accepted))
            span.set_attribute("smtp.recipients.refused", len(result.refused))
            if result.queue_id:
                span.set_attribute("smtp.queue_id", result.queue_id)
            self.sent.add(1, metric_attributes)
            if result.refused:
                self.recipients_refused.add(len(result.refused), metric_attributes)
            self.send_duration.record(time.perf_counter() - started, metric_attributes)

        def fail(exc: BaseException) -> None:
            failed = {**metric_attributes, "error.type": type(exc).__name__}
            self.refused.add(1, failed)
            self.send_duration.record(time.perf_counter() - started, failed)

        return self._traced(flow, "smtp.send", attributes, finish, fail)

    def note_retry(self, exc: BaseException | None) -> None:
        """Count a retried attempt (called by the retry policy before it sleeps)."""
        if self.unconfigured():
            return
        self.retried.add(1, {"error.type": type(exc).__name__ if exc is not None else "unknown"})

    # -- helpers --------------------------------------------------------------------------

    def _connect_span(self, conn: SessionBase) -> Any:
        assert _trace is not None
        return self.tracer.start_as_current_span(
            "smtp.connect",
            kind=_trace.SpanKind.CLIENT,
            attributes=self._server_attributes(conn),
            record_exception=False,  # error text may quote addresses: see _fail
            set_status_on_exception=False,
        )

    def _opened(
        self, span: Any, conn: SessionBase, started: float, exc: BaseException | None
    ) -> None:
        attributes: dict[str, Any] = {
            "server.address": conn.host,
            "server.port": conn.port,
        }
        info = conn.tls_info
        if info is not None:
            span.set_attribute("tls.protocol.version", info.version or "")
            span.set_attribute("tls.cipher", info.cipher or "")
        if exc is not None:
            _fail(span, exc)
            attributes["error.type"] = type(exc).__name__
        self.connect_duration.record(time.perf_counter() - started, attributes)

    def _server_attributes(self, conn: SessionBase) -> dict[str, Any]:
        return {
            "server.address": conn.host,
            "server.port": conn.port,
            "network.protocol.name": "lmtp" if conn.lmtp else "smtp",
        }

    def _traced(
        self,
        flow: Flow,
        name: str | None,
        attributes: dict[str, Any],
        finish: Callable[[Any, Any], None] | None,
        fail: Callable[[BaseException], None] | None = None,
    ) -> Flow:
        """Drive ``flow`` inside a span (``name``; None for none), one TLS span per StartTLS."""
        assert _trace is not None
        span = self.tracer.start_span(name, attributes=attributes) if name else None
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    instruction = flow.send(value) if error is None else flow.throw(error)
                except StopIteration as stop:
                    if span is not None and finish is not None:
                        finish(span, stop.value)
                    return stop.value
                tls_span = None
                if isinstance(instruction, StartTLS):
                    tls_span = self.tracer.start_span(
                        "smtp.tls",
                        attributes={**attributes, "tls.server.name": instruction.server_hostname},
                    )
                try:
                    value, error = (yield instruction), None
                except GeneratorExit:
                    flow.close()
                    raise
                except BaseException as exc:  # an I/O error the driver throws into the flow
                    value, error = None, exc
                if tls_span is not None:
                    if isinstance(value, TLSInfo):
                        tls_span.set_attribute("tls.protocol.version", value.version or "")
                        tls_span.set_attribute("tls.cipher", value.cipher or "")
                    if error is not None:
                        _fail(tls_span, error)
                    tls_span.end()
        except GeneratorExit:
            raise
        except BaseException as exc:
            if span is not None:
                _fail(span, exc)
            if fail is not None:
                fail(exc)
            raise
        finally:
            if span is not None:
                span.end()


def _fail(span: Any, exc: BaseException) -> None:
    """Mark a span failed with the error's type, stage and reply code; never its text."""
    assert _trace is not None
    span.set_attribute("error.type", type(exc).__name__)
    if isinstance(exc, MailTransferError):
        if exc.stage is not None:
            span.set_attribute("smtp.stage", exc.stage.value)
        if exc.reply is not None:
            span.set_attribute("smtp.reply.code", exc.reply.code)
    span.set_status(_trace.Status(_trace.StatusCode.ERROR, type(exc).__name__))


def _observe_pools(options: Any) -> Iterable[Any]:
    assert _metrics is not None
    totals = {"in_use": 0, "idle": 0, "opening": 0, "closing": 0}
    for pool in list(pools):
        stats = pool.stats
        for state in totals:
            totals[state] += getattr(stats, state)
    return [
        _metrics.Observation(count, {"mailtransfer.pool.state": state})
        for state, count in totals.items()
    ]


active: Telemetry | None = Telemetry() if AVAILABLE else None
"""The telemetry in effect, or None: every hook site checks this first."""
