"""Tests for mailtransfer.tls.dane: TLSA association data and chain matching."""

from __future__ import annotations

import hashlib
import ssl

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from mailtransfer.dns import TLSARecord
from mailtransfer.errors import CertificateVerifyFailed, DANEMismatch
from mailtransfer.tls.dane import DANE, association_data, chain_matches, usable

CA = trustme.CA()
INTERMEDIATE = CA.create_child_ca()
LEAF = INTERMEDIATE.issue_cert("mx.example.test")
CHAIN = tuple(ssl.PEM_cert_to_DER_cert(p.bytes().decode()) for p in LEAF.cert_chain_pems)
LEAF_DER, INTERMEDIATE_DER = CHAIN[0], CHAIN[1]
OTHER_DER = ssl.PEM_cert_to_DER_cert(
    CA.issue_cert("mx.example.test").cert_chain_pems[0].bytes().decode()
)


def _spki(der: bytes) -> bytes:
    cert = x509.load_der_x509_certificate(der)
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def test_association_data_by_selector_and_type() -> None:
    """Selector 0/1 pick the certificate or its key; type 0/1/2 exact, SHA-256, SHA-512."""
    assert association_data(LEAF_DER, 0, 0) == LEAF_DER
    assert association_data(LEAF_DER, 1, 0) == _spki(LEAF_DER)
    assert association_data(LEAF_DER, 1, 1) == hashlib.sha256(_spki(LEAF_DER)).digest()
    assert association_data(LEAF_DER, 0, 2) == hashlib.sha512(LEAF_DER).digest()
    with pytest.raises(ValueError, match="selector"):
        association_data(LEAF_DER, 2, 1)
    with pytest.raises(ValueError, match="matching type"):
        association_data(LEAF_DER, 1, 3)


@pytest.mark.parametrize(("selector", "mtype"), [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)])
def test_dane_ee_matches_the_leaf(selector: int, mtype: int) -> None:
    """3 s m records match the leaf for every selector and matching type."""
    record = TLSARecord(3, selector, mtype, association_data(LEAF_DER, selector, mtype))
    assert chain_matches([record], CHAIN, "mx.example.test") == record
    assert chain_matches([record], (OTHER_DER,), "mx.example.test") is None


def test_dane_ee_ignores_the_name() -> None:
    """DANE-EE checks neither the host name nor the issuer (RFC 7672 §3.1.1)."""
    record = TLSARecord(3, 1, 1, association_data(LEAF_DER, 1, 1))
    assert chain_matches([record], CHAIN, "another.name.test") == record


def test_dane_ta_matches_an_issuer_that_signs_the_leaf() -> None:
    """2 1 1 of the intermediate matches when the leaf chains to it and names the host."""
    record = TLSARecord(2, 1, 1, association_data(INTERMEDIATE_DER, 1, 1))
    assert chain_matches([record], CHAIN, "mx.example.test") == record
    assert chain_matches([record], CHAIN, "wrong.example.test") is None
    # A leaf from elsewhere presented with the matching intermediate does not chain to it.
    assert chain_matches([record], (OTHER_DER, INTERMEDIATE_DER), "mx.example.test") is None


def test_unusable_records_are_ignored() -> None:
    """PKIX usages (0, 1) and unknown selectors or types are not used for SMTP."""
    assert not usable(TLSARecord(1, 1, 1, association_data(LEAF_DER, 1, 1)))
    assert not usable(TLSARecord(3, 2, 1, b"x"))
    assert not usable(TLSARecord(3, 1, 9, b"x"))
    assert not usable(TLSARecord(3, 1, 1, b""))
    record = TLSARecord(1, 1, 1, association_data(LEAF_DER, 1, 1))
    assert chain_matches([record], CHAIN, "mx.example.test") is None


def test_dane_policy_verifies_or_raises() -> None:
    """DANE.verify_chain returns the matching record, or raises DANEMismatch."""
    good = TLSARecord(3, 1, 1, association_data(LEAF_DER, 1, 1))
    policy = DANE(host="mx.example.test", records=(good,))
    assert policy.required
    assert policy.authenticates
    assert policy.verify_chain(CHAIN) == good
    with pytest.raises(DANEMismatch) as info:
        policy.verify_chain((OTHER_DER,))
    assert isinstance(info.value, CertificateVerifyFailed)
    assert "mx.example.test" in str(info.value)
    unusable = DANE(host="mx.example.test", records=(TLSARecord(0, 0, 1, b"x"),))
    assert not unusable.authenticates
    assert unusable.verify_chain((OTHER_DER,)) is None
    assert not unusable.ssl_context().check_hostname


@given(
    st.sampled_from([2, 3]),
    st.sampled_from([0, 1]),
    st.sampled_from([0, 1, 2]),
    st.binary(min_size=1, max_size=64),
)
def test_random_data_never_matches(usage: int, selector: int, mtype: int, data: bytes) -> None:
    """A record whose data is not the certificate's never authenticates the chain."""
    real = {association_data(c, selector, mtype) for c in CHAIN}
    record = TLSARecord(usage, selector, mtype, data)
    expected = data in real and usage == 3 and data == association_data(LEAF_DER, selector, mtype)
    assert (chain_matches([record], CHAIN, "mx.example.test") is not None) is (
        expected or (usage == 2 and data == association_data(INTERMEDIATE_DER, selector, mtype))
    )


@given(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.binary(max_size=64))
def test_matching_is_total(usage: int, selector: int, mtype: int, data: bytes) -> None:
    """Any record field values give a match or None, never an exception."""
    record = TLSARecord(usage, selector, mtype, data)
    result = chain_matches([record], CHAIN, "mx.example.test")
    assert result is None or usable(result)


@given(st.lists(st.binary(max_size=200), max_size=3))
def test_garbage_chains_never_match(chain: list[bytes]) -> None:
    """Chains of bytes that are not certificates never match a record."""
    records = [TLSARecord(3, 1, 1, hashlib.sha256(b"").digest()), TLSARecord(2, 0, 0, b"\x30")]
    assert chain_matches(records, tuple(chain), "mx.example.test") is None
