"""Deliverability: what receivers will find about your domain, IPs and addresses.

- :func:`check_domain` / :func:`acheck_domain`: MX, SPF, DKIM, DMARC, MTA-STS,
  TLS-RPT, BIMI, reverse DNS and blocklists, as a typed :class:`DomainReport`
  of pass / warn / fail findings with fixes; :func:`render_report` prints it.
- Parsers for every record involved (:func:`parse_spf`, :func:`parse_dmarc`,
  :func:`parse_dkim_key`, :func:`parse_tlsrpt`, ...) and the RFC 7208 SPF
  evaluator (:func:`evaluate_spf`), run with :func:`resolve` / :func:`aresolve`.
- :func:`validate_address` / :func:`validate_addresses`: list hygiene.
- :class:`WarmupSchedule` and :class:`WarmupLimiter`: ramp up a new IP or domain.

See docs/deliverability.md.
"""

from ._addresses import AddressCheck as AddressCheck
from ._addresses import Verdict as Verdict
from ._addresses import addresses_flow as addresses_flow
from ._check import DEFAULT_BLOCKLISTS as DEFAULT_BLOCKLISTS
from ._check import check_domain_flow as check_domain_flow
from ._check import dnsbl_name as dnsbl_name
from ._dkim_record import DKIMKeyRecord as DKIMKeyRecord
from ._dkim_record import dkim_record_name as dkim_record_name
from ._dkim_record import parse_dkim_key as parse_dkim_key
from ._dmarc import DMARCRecord as DMARCRecord
from ._dmarc import dmarc_candidates as dmarc_candidates
from ._dmarc import parse_dmarc as parse_dmarc
from ._drivers import HTTPSOptions as HTTPSOptions
from ._drivers import aresolve as aresolve
from ._drivers import resolve as resolve
from ._errors import InvalidRecord as InvalidRecord
from ._errors import WarmupLimitReached as WarmupLimitReached
from ._lookups import DnsResult as DnsResult
from ._lookups import DnsStatus as DnsStatus
from ._lookups import FetchPolicy as FetchPolicy
from ._lookups import Query as Query
from ._lookups import run_offline as run_offline
from ._report import DomainReport as DomainReport
from ._report import Finding as Finding
from ._report import IPReport as IPReport
from ._report import MXHost as MXHost
from ._report import Status as Status
from ._report import render_report as render_report
from ._run import acheck_domain as acheck_domain
from ._run import avalidate_address as avalidate_address
from ._run import avalidate_addresses as avalidate_addresses
from ._run import check_domain as check_domain
from ._run import validate_address as validate_address
from ._run import validate_addresses as validate_addresses
from ._spf_eval import SPFOutcome as SPFOutcome
from ._spf_eval import SPFResult as SPFResult
from ._spf_eval import evaluate_spf as evaluate_spf
from ._spf_eval import expand_macros as expand_macros
from ._spf_record import Mechanism as Mechanism
from ._spf_record import Qualifier as Qualifier
from ._spf_record import SPFRecord as SPFRecord
from ._spf_record import parse_spf as parse_spf
from ._tags import parse_tag_list as parse_tag_list
from ._txt_records import BIMIRecord as BIMIRecord
from ._txt_records import TLSRPTRecord as TLSRPTRecord
from ._txt_records import parse_bimi as parse_bimi
from ._txt_records import parse_tlsrpt as parse_tlsrpt
from ._warmup import WarmupLimiter as WarmupLimiter
from ._warmup import WarmupSchedule as WarmupSchedule
from ._warmup import WarmupStatus as WarmupStatus

__all__ = [
    "AddressCheck",
    "BIMIRecord",
    "DEFAULT_BLOCKLISTS",
    "DKIMKeyRecord",
    "DMARCRecord",
    "DnsResult",
    "DnsStatus",
    "DomainReport",
    "FetchPolicy",
    "Finding",
    "HTTPSOptions",
    "IPReport",
    "InvalidRecord",
    "MXHost",
    "Mechanism",
    "Qualifier",
    "Query",
    "SPFOutcome",
    "SPFRecord",
    "SPFResult",
    "Status",
    "TLSRPTRecord",
    "Verdict",
    "WarmupLimitReached",
    "WarmupLimiter",
    "WarmupSchedule",
    "WarmupStatus",
    "acheck_domain",
    "addresses_flow",
    "aresolve",
    "avalidate_address",
    "avalidate_addresses",
    "check_domain",
    "check_domain_flow",
    "dkim_record_name",
    "dmarc_candidates",
    "dnsbl_name",
    "evaluate_spf",
    "expand_macros",
    "parse_bimi",
    "parse_dkim_key",
    "parse_dmarc",
    "parse_spf",
    "parse_tag_list",
    "parse_tlsrpt",
    "render_report",
    "resolve",
    "run_offline",
    "validate_address",
    "validate_addresses",
]
