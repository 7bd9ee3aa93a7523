"""``--dkim-key``: a DKIM signer from command-line options, shared by ``send`` and ``bulk``."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import UsageError

__all__ = ["add_dkim_options", "signers_from"]


def add_dkim_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--dkim-key``, ``--dkim-selector`` and ``--dkim-domain``."""
    dkim = parser.add_argument_group("DKIM signing")
    dkim.add_argument("--dkim-key", metavar="PEM", help="sign with this private key (RSA/Ed25519)")
    dkim.add_argument("--dkim-selector", metavar="NAME", help="the key's selector (s=)")
    dkim.add_argument(
        "--dkim-domain", metavar="DOMAIN", help="the signing domain (d=); default: the sender's"
    )


def signers_from(args: argparse.Namespace, sender: str | None) -> list[Any]:
    """The signers the options ask for: none, or one `DKIMSigner`.

    Raises:
        UsageError: a key without a selector, or no domain to sign for.
        DKIMConfigError: the key or a name is invalid.
    """
    if args.dkim_key is None:
        if args.dkim_selector or args.dkim_domain:
            raise UsageError("--dkim-selector and --dkim-domain need --dkim-key")
        return []
    if not args.dkim_selector:
        raise UsageError("--dkim-key needs --dkim-selector")
    domain = args.dkim_domain
    if not domain and sender:
        domain = sender.rpartition("@")[2].rstrip(">").strip()
    if not domain:
        raise UsageError("--dkim-key needs --dkim-domain (or --from to take it from)")
    from ..dkim import DKIMSigner  # noqa: PLC0415  (dkimpy loads only when signing)

    try:
        with open(args.dkim_key, "rb") as key_file:
            private_key = key_file.read()
    except OSError as exc:
        raise UsageError(f"--dkim-key {args.dkim_key}: {exc.strerror or exc}") from None
    return [DKIMSigner(domain=domain, selector=args.dkim_selector, private_key=private_key)]
