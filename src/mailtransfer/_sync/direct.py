"""Direct delivery, blocking: the I/O of ``Mailer(transport="direct")``.

Every decision is in :mod:`mailtransfer._direct._flow`; this module performs
its steps with dnspython, ``http.client`` and :class:`SyncConnection`.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
from ..dns import lookup_addresses, lookup_tlsa, lookup_txt, mail_exchangers
from ..errors import MailTransferError
from ..results import SendResult
from ..tls.dane import DANE, peer_chain
from ._https import fetch_policy
from .connection import SyncConnection

__all__ = ["DirectTransport"]


class DirectTransport:
    """Deliver each message to its recipients' MX hosts, one domain at a time per thread.

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
        self._gates: dict[str, threading.BoundedSemaphore] = {}
        self._gates_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: MailerConfig) -> DirectTransport:
        """The transport a direct mailer's configuration describes."""
        assert config.direct is not None
        return cls(
            config.direct,
            local_hostname=config.local_hostname,
            timeouts=config.timeouts,
            source_address=config.source_address,
            use_bdat=config.use_bdat,
        )

    def deliver(self, submission: Submission, *, strict: bool) -> DirectResult:
        """Send the message to every recipient domain; see :func:`assemble` for what raises."""
        recipients = submission.prepared.envelope.recipients
        groups = group_by_domain(recipients)
        if len(groups) == 1 or self.options.domain_concurrency == 1:
            served = {d: self._serve(d, i, submission) for d, i in groups.items()}
        else:
            workers = min(len(groups), self.options.domain_concurrency)
            with ThreadPoolExecutor(workers, thread_name_prefix="mailtransfer-direct") as pool:
                futures = {d: pool.submit(self._serve, d, i, submission) for d, i in groups.items()}
                served = {d: f.result() for d, f in futures.items()}
        try:
            return assemble(served, message_id=submission.message_id, strict=strict)
        except MailTransferError as exc:
            note_message_id(exc, submission)
            raise

    def _serve(self, domain: str, indexes: tuple[int, ...], submission: Submission) -> DomainResult:
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
                value = self._perform(step, domain, submission)
            except MailTransferError as exc:
                error = exc

    def _perform(self, step: Step, domain: str, submission: Submission) -> Any:
        resolver = self.options.resolver
        if isinstance(step, LookupMX):
            return mail_exchangers(step.domain, resolver=resolver)
        if isinstance(step, LookupTXT):
            return lookup_txt(step.name, resolver=resolver)
        if isinstance(step, FetchPolicy):
            return fetch_policy(step.domain, self.options)
        if isinstance(step, LookupAddresses):
            return lookup_addresses(step.host, resolver=resolver)
        if isinstance(step, LookupTLSA):
            return lookup_tlsa(step.name, resolver=resolver)
        with self._gate(domain):
            return self._deliver(step, submission)

    def _gate(self, domain: str) -> threading.BoundedSemaphore:
        with self._gates_lock:
            gate = self._gates.get(domain)
            if gate is None:
                gate = self._gates[domain] = threading.BoundedSemaphore(self.options.per_domain)
            return gate

    def _deliver(self, step: Deliver, submission: Submission) -> tuple[SendResult, str | None]:
        conn = SyncConnection(
            step.address,
            self.options.port,
            tls=step.tls,
            local_hostname=self.local_hostname,
            timeouts=self.timeouts,
            source_address=self.source_address,
        )
        conn.open()
        try:
            if isinstance(step.tls, DANE):
                stream = conn._stream
                assert stream is not None
                step.tls.verify_chain(peer_chain(stream.sock))
            arguments = submission.send_arguments(conn.extensions)
            everyone = arguments["recipients"]
            arguments["recipients"] = [everyone[i] for i in step.recipients]
            result = conn.send(use_bdat=self.use_bdat, **arguments)
        except BaseException:
            conn.close()
            raise
        conn.quit()
        version = conn.tls_info.version if conn.tls_info is not None else None
        return host_result(result, f"{step.host}:{self.options.port}"), version

    def __repr__(self) -> str:
        return f"<DirectTransport [port {self.options.port} | {len(self._gates)} domain(s) seen]>"
