"""Direct delivery with asyncio: the I/O of ``AsyncMailer(transport="direct")``.

Every decision is in :mod:`mailtransfer._direct._flow`; this module performs
its steps with dnspython's asyncio resolver and :class:`AsyncConnection`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .._direct._flow import (
    Deliver,
    FetchPolicy,
    LookupAddresses,
    LookupMX,
    LookupTLSA,
    LookupTXT,
    Step,
    host_result,
    serve_domain,
)
from .._direct._options import DirectOptions
from .._direct._results import DirectResult, DomainResult
from .._direct._routing import assemble, group_by_domain
from .._sending import Submission, note_message_id
from .._settings import MailerConfig
from ..config import Timeouts
from ..dns import alookup_addresses, alookup_tlsa, alookup_txt, amail_exchangers
from ..errors import MailTransferError
from ..results import SendResult
from ..tls.dane import DANE, peer_chain
from ._https import fetch_policy
from .connection import AsyncConnection

__all__ = ["AsyncDirectTransport"]


class AsyncDirectTransport:
    """Deliver each message to its recipients' MX hosts, domains concurrently.

    Args:
        options: the direct-delivery settings.
        local_hostname: the HELO/EHLO name (it should resolve back to the source address).
        timeouts: deadlines of each SMTP session.
        source_address: bind outgoing connections to this ``(host, port)``.
        use_bdat: send with BDAT when a server offers CHUNKING.
    """

    def __init__(
        self,
        options: DirectOptions,
        *,
        local_hostname: str | None,
        timeouts: Timeouts,
        source_address: tuple[str, int] | None,
        use_bdat: bool,
    ) -> None:
        self.options = options
        self.local_hostname = local_hostname
        self.timeouts = timeouts
        self.source_address = source_address
        self.use_bdat = use_bdat
        self._gates: dict[str, asyncio.Semaphore] = {}

    @classmethod
    def from_config(cls, config: MailerConfig) -> AsyncDirectTransport:
        """The transport a direct mailer's configuration describes."""
        assert config.direct is not None
        return cls(
            config.direct,
            local_hostname=config.local_hostname,
            timeouts=config.timeouts,
            source_address=config.source_address,
            use_bdat=config.use_bdat,
        )

    async def deliver(self, submission: Submission, *, strict: bool) -> DirectResult:
        """Send the message to every recipient domain; see ``assemble`` for what raises."""
        groups = group_by_domain(submission.prepared.envelope.recipients)
        limit = asyncio.Semaphore(self.options.domain_concurrency)

        async def serve(domain: str, indexes: tuple[int, ...]) -> DomainResult:
            async with limit:
                return await self._serve(domain, indexes, submission)

        done = await asyncio.gather(*(serve(d, i) for d, i in groups.items()))
        served = dict(zip(groups, done, strict=True))
        try:
            return assemble(served, message_id=submission.message_id, strict=strict)
        except MailTransferError as exc:
            note_message_id(exc, submission)
            raise

    async def _serve(
        self, domain: str, indexes: tuple[int, ...], submission: Submission
    ) -> DomainResult:
        recipients = submission.prepared.envelope.recipients
        flow = serve_domain(
            domain,
            indexes,
            port=self.options.port,
            use_mta_sts=self.options.mta_sts,
            use_dane=self.options.dane,
            cache=self.options.mta_sts_cache,
            verify_context=self.options.verify_context,
            now=time.monotonic(),
            addresses_of=tuple(recipients[i] for i in indexes),
        )
        value: Any = None
        error: MailTransferError | None = None
        while True:
            try:
                step = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                result: DomainResult = stop.value
                return result
            value, error = None, None
            try:
                value = await self._perform(step, domain, submission)
            except MailTransferError as exc:
                error = exc

    async def _perform(self, step: Step, domain: str, submission: Submission) -> Any:
        resolver = self.options.resolver
        if isinstance(step, LookupMX):
            return await amail_exchangers(step.domain, resolver=resolver)
        if isinstance(step, LookupTXT):
            return await alookup_txt(step.name, resolver=resolver)
        if isinstance(step, FetchPolicy):
            return await fetch_policy(step.domain, self.options)
        if isinstance(step, LookupAddresses):
            return await alookup_addresses(step.host, resolver=resolver)
        if isinstance(step, LookupTLSA):
            return await alookup_tlsa(step.name, resolver=resolver)
        gate = self._gates.get(domain)
        if gate is None:
            gate = self._gates[domain] = asyncio.Semaphore(self.options.per_domain)
        async with gate:
            return await self._deliver(step, submission)

    async def _deliver(
        self, step: Deliver, submission: Submission
    ) -> tuple[SendResult, str | None]:
        conn = AsyncConnection(
            step.address,
            self.options.port,
            tls=step.tls,
            local_hostname=self.local_hostname,
            timeouts=self.timeouts,
            source_address=self.source_address,
        )
        await conn.open()
        try:
            if isinstance(step.tls, DANE):
                stream = conn._stream
                assert stream is not None
                step.tls.verify_chain(peer_chain(stream.writer.get_extra_info("ssl_object")))
            arguments = submission.send_arguments(conn.extensions)
            everyone = arguments["recipients"]
            arguments["recipients"] = [everyone[i] for i in step.recipients]
            result = await conn.send(use_bdat=self.use_bdat, **arguments)
        except BaseException:
            conn.abort()
            raise
        await conn.quit()
        version = conn.tls_info.version if conn.tls_info is not None else None
        return host_result(result, f"{step.host}:{self.options.port}"), version

    def __repr__(self) -> str:
        return f"<AsyncDirectTransport [port {self.options.port} | {len(self._gates)} domain(s)]>"
