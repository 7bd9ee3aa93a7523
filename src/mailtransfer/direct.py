"""Direct delivery to the recipients' MX hosts: ``Mailer(transport="direct")``.

See ``docs/direct-delivery.md``. The names here are the settings and the
results; the engines behind them are private.
"""

from ._direct._options import DirectOptions as DirectOptions
from ._direct._results import DirectResult as DirectResult
from ._direct._results import DomainResult as DomainResult
from ._direct._results import HostAttempt as HostAttempt

__all__ = ["DirectOptions", "DirectResult", "DomainResult", "HostAttempt"]
