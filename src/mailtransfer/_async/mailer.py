"""``AsyncMailer``: the asyncio ``send()``, pooled and retrying, safe under many tasks."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from email.message import EmailMessage
from types import TracebackType
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from .._bulk import BulkSource, Feed, Outgoing, Progress, pipelines, submission_of
from .._pooling import RelaySet
from .._sending import (
    Submission,
    finish_result,
    is_deferral,
    is_relay_failure,
    note_message_id,
    with_retries_async,
)
from .._settings import Endpoint, MailerConfig, MailerOptions
from ..errors import MailTransferError, UsageError
from ..message import Envelope
from ..results import SendResult, ServerInfo
from .connection import AsyncConnection
from .pool import AsyncConnectionPool

if TYPE_CHECKING:
    from .direct import AsyncDirectTransport

__all__ = ["AsyncMailer"]


class AsyncMailer:
    """The asyncio twin of :class:`~mailtransfer.Mailer`: same options, ``await`` on each call.

    Example:
        >>> async with AsyncMailer("smtps://user:pw@mail.example.org") as mailer:  # doctest: +SKIP
        ...     result = await mailer.send(sender="me@example.org", to=["you@example.org"],
        ...                                subject="Hello", text="Hi there!")
    """

    def __init__(
        self, url: str | Sequence[str] | None = None, **options: Unpack[MailerOptions]
    ) -> None:
        self.config = MailerConfig.resolve(url, **options)
        self._direct: AsyncDirectTransport | None = None
        if self.config.direct:
            # Imported here: direct delivery pulls in dnspython and cryptography.
            from .direct import AsyncDirectTransport  # noqa: PLC0415

            self._direct = AsyncDirectTransport.from_config(self.config)
        self._relays = RelaySet(self.config.endpoints, self.config.cooldown)
        self._pools: dict[Endpoint, AsyncConnectionPool] = {}
        self._closed = False

    @classmethod
    def from_env(
        cls, variable: str = "MAILTRANSFER_URL", **options: Unpack[MailerOptions]
    ) -> AsyncMailer:
        """A mailer configured by the URL in the environment variable ``variable``."""
        url = os.environ.get(variable)
        if not url:
            raise UsageError(f"set {variable} to a mailer URL, e.g. smtp://user:pass@host:587")
        return cls(url, **options)

    @property
    def pools(self) -> Mapping[Endpoint, AsyncConnectionPool]:
        """Each relay's connection pool, once used (read their ``stats`` for monitoring)."""
        return dict(self._pools)

    def _factory(self, endpoint: Endpoint) -> Callable[[], AsyncConnection]:
        arguments = self.config.connection_arguments(endpoint)
        return lambda: AsyncConnection(**arguments)

    def _pool(self, endpoint: Endpoint) -> AsyncConnectionPool:
        # Created lazily, inside the running loop that will use it.
        pool = self._pools.get(endpoint)
        if pool is None:
            pool = AsyncConnectionPool(
                self._factory(endpoint),
                self.config.limits,
                rate_limit=self.config.rate_limit,
                limiter=self.config.limiter,
            )
            self._pools[endpoint] = pool
        return pool

    async def send(
        self,
        message: EmailMessage | bytes | None = None,
        /,
        *,
        envelope: Envelope | None = None,
        recipients: Sequence[str] | None = None,
        strict: bool | None = None,
        **build: Any,
    ) -> SendResult:
        """Send one message; see :meth:`Mailer.send <mailtransfer.Mailer.send>` for the details."""
        submission = Submission.create(
            message,
            envelope=envelope,
            recipients=recipients,
            signers=self.config.signers,
            build=build,
        )
        return await self._deliver(submission, self.config.strict if strict is None else strict)

    async def _deliver(
        self,
        submission: Submission,
        strict: bool,
        *,
        failed: MailTransferError | None = None,
        started: float | None = None,
    ) -> SendResult:
        """Send a prepared message with failover and retries (after ``failed``, if given)."""
        if self._direct is not None:  # transport="direct": the recipients' MX hosts
            return await self._direct.deliver(submission, strict=strict)
        try:
            return await with_retries_async(
                self.config.retry,
                lambda: self._attempt(submission, strict),
                failed=failed,
                started=started,
            )
        except MailTransferError as exc:
            note_message_id(exc, submission)
            raise

    async def _attempt(self, submission: Submission, strict: bool) -> SendResult:
        if self._closed:
            raise UsageError("the mailer is closed")
        loop = asyncio.get_running_loop()
        relays = self._relays.order(loop.time())
        for index, endpoint in enumerate(relays):
            pool = self._pool(endpoint)
            try:
                async with pool.connection() as conn:
                    arguments = submission.send_arguments(conn.extensions)
                    result = await conn.send(use_bdat=self.config.use_bdat, **arguments)
                return finish_result(result, submission, host=str(endpoint), strict=strict)
            except MailTransferError as exc:
                if is_deferral(exc) and self.config.deferral > 0:
                    pool.defer(self.config.deferral)
                if is_relay_failure(exc) and index + 1 < len(relays):
                    self._relays.cool(endpoint, loop.time())
                    continue
                raise
        raise AssertionError("unreachable: the last relay's error is raised")  # pragma: no cover

    async def send_many(
        self,
        messages: Iterable[Outgoing],
        *,
        concurrency: int | None = None,
        progress: Progress | None = None,
    ) -> list[SendResult | MailTransferError]:
        """Send many messages concurrently; results (or typed errors) in input order."""
        items = list(messages)
        results: list[SendResult | MailTransferError | None] = [None] * len(items)
        if progress is not None:  # called here, in the caller's task, after each message
            async for index, outcome in self.send_iter(
                items, concurrency=concurrency, progress=progress
            ):
                results[index] = outcome
            return results  # type: ignore[return-value]
        # Without a progress callback nobody needs to hear of each message: the workers
        # put each outcome in its place, and this task wakes once, when all are in.
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        remaining = len(items)

        def deliver(step: tuple[int, Any]) -> None:
            nonlocal remaining
            index, outcome = step
            if not isinstance(outcome, (SendResult, MailTransferError)):  # a bug: raise it
                if not done.done():
                    done.set_exception(outcome)
                return
            results[index] = outcome
            remaining -= 1
            if not remaining and not done.done():
                done.set_result(None)

        async with self._workers(items, concurrency, deliver):
            if remaining:
                await done
        return results  # type: ignore[return-value]

    async def send_iter(
        self,
        messages: Iterable[Outgoing],
        *,
        concurrency: int | None = None,
        progress: Progress | None = None,
    ) -> AsyncGenerator[tuple[int, SendResult | MailTransferError], None]:
        """Yield ``(index, result or error)`` as each message completes.

        Cancelling the consumer, or closing the iterator (``contextlib.aclosing``),
        cancels the messages in flight; their connections are aborted and
        their pool slots freed.
        """
        items = list(messages)
        queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        async with self._workers(items, concurrency, queue.put_nowait):
            for done in range(1, len(items) + 1):
                index, outcome = await queue.get()
                if not isinstance(outcome, (SendResult, MailTransferError)):
                    raise outcome
                if progress is not None:
                    progress(done, len(items))
                yield index, outcome

    @contextlib.asynccontextmanager
    async def _workers(
        self,
        items: list[Outgoing],
        concurrency: int | None,
        deliver: Callable[[tuple[int, Any]], None],
    ) -> AsyncIterator[None]:
        """Run ``send_many``'s workers over ``items`` while the block runs.

        Each outcome goes to ``deliver((index, outcome))``; a bug in a worker goes
        there too, as ``(-1, exception)``. Leaving the block before every outcome
        is in (an error, a cancellation) cancels the messages in flight.
        """
        if concurrency is not None and concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, got {concurrency!r}")
        default = self.config.limits.max_connections * max(len(self.config.endpoints), 1)
        workers = min(concurrency or default, max(len(items), 1))
        feed = Feed(items)

        async def worker() -> None:
            # The flag, not only cancellation, stops a worker: on Python < 3.12 a
            # cancellation that races a completing read can be swallowed by
            # asyncio.wait_for, and the worker would go on sending the rest.
            try:
                while await self._send_batch(feed, deliver):
                    pass
            except Exception as exc:  # a bug: hand it to the consumer
                deliver((-1, exc))

        tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
        finished = False
        try:
            yield
            finished = True
        finally:
            feed.stopping = True
            if not finished:
                for task in tasks:
                    task.cancel()
            # Every outcome is in: the workers are only giving their connections back.
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _send_batch(
        self,
        feed: Feed,
        deliver: Callable[[tuple[int, Any]], None],
    ) -> bool:
        """Send items of the feed over one leased connection; False once the feed is done.

        The messages are pipelined (``_bulk.py``) when the pool allows; else, and when
        no connection can be had, one item goes by the ordinary ``send()`` path.
        """
        if self._closed:
            raise UsageError("the mailer is closed")
        step = feed.take()  # before leasing: no connection is opened for nothing
        if step is None:
            return False
        pool = None
        if self._direct is None:
            endpoint = self._relays.order(asyncio.get_running_loop().time())[0]
            pool = self._pool(endpoint)
        if pool is not None and pipelines(pool):
            lease = pool.connection()
            try:
                with feed.waiting_for_lease():
                    conn = await lease.__aenter__()
            except MailTransferError:
                pass  # no connection: this item goes the ordinary way (failover, retries)
            else:
                source = BulkSource(
                    self.config,
                    conn,
                    pool,
                    host=str(endpoint),
                    first=step,
                    feed=feed,
                    deliver=deliver,
                )
                try:
                    with contextlib.suppress(MailTransferError):  # reported to its message
                        await conn._send_jobs(source, cross=self.config.pipeline_messages)
                except BaseException as exc:
                    await lease.__aexit__(type(exc), exc, exc.__traceback__)
                    raise
                await lease.__aexit__(None, None, None)
                for failure in source.failed:
                    try:
                        outcome: Any = await self._deliver(
                            failure.submission,
                            failure.strict,
                            failed=failure.error,
                            started=failure.started,
                        )
                    except MailTransferError as exc:
                        outcome = exc
                    deliver((failure.index, outcome))
                return not source.exhausted
        # The item the ordinary way: with failover and retries when no connection opened.
        index, item = step
        try:
            outcome = await self._send_item(item)
        except Exception as exc:  # a typed error is its outcome; bad input, the consumer raises
            outcome = exc
        deliver((index, outcome))
        return True

    async def _send_item(self, item: Outgoing) -> SendResult:
        submission, strict = submission_of(item, self.config.signers)
        return await self._deliver(submission, self.config.strict if strict is None else strict)

    async def verify(self) -> ServerInfo:
        """Connect, negotiate TLS and log in, and report what the server offers; sends no mail."""
        if self._direct is not None:
            raise UsageError("verify() checks a relay; a direct mailer has none")
        endpoint = self._relays.order(asyncio.get_running_loop().time())[0]
        conn = self._factory(endpoint)()
        try:
            extensions = await conn.open()
            return ServerInfo(
                host=str(endpoint),
                extensions=extensions,
                tls_version=conn.tls_info.version if conn.tls_info else None,
                authenticated=endpoint.credentials is not None,
            )
        finally:
            await conn.quit()

    async def aclose(self) -> None:
        """QUIT and close every pooled connection. The mailer cannot send afterwards."""
        self._closed = True
        await asyncio.gather(*(pool.aclose() for pool in self._pools.values()))

    async def __aenter__(self) -> AsyncMailer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        pools = ", ".join(f"{endpoint}: {pool!r}" for endpoint, pool in self._pools.items())
        return f"<AsyncMailer [{'closed' if self._closed else 'open'} | {pools}]>"
