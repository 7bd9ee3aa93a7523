"""``import mailtransfer`` must not load dnspython or cryptography (direct delivery only)."""

from __future__ import annotations

import subprocess
import sys

_PROBE = (
    "import sys, mailtransfer; "
    "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
    "('dns', 'cryptography')}))"
)


def test_import_loads_neither_dnspython_nor_cryptography() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"


def test_lazy_dns_names_resolve_on_first_use() -> None:
    probe = (
        "import sys, mailtransfer.dns as d; "
        "assert 'dns.resolver' not in sys.modules; "
        "f = d.lookup_mx; from mailtransfer.dns import MailExchangers; "
        "assert 'dns.resolver' in sys.modules and callable(f) and MailExchangers; "
        "assert set(d.__all__) <= set(dir(d)); "
        "print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "ok"


def test_unknown_dns_name_is_an_attribute_error() -> None:
    import mailtransfer.dns as dns_module

    try:
        dns_module.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError:
        pass
    else:
        raise AssertionError("expected AttributeError")
