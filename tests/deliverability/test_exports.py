"""The public namespace of mailtransfer.deliverability."""

from __future__ import annotations

from mailtransfer import deliverability


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted, every name in it exists, and every public name is in it."""
    names = deliverability.__all__
    assert names == sorted(names)
    assert all(hasattr(deliverability, name) for name in names)
    public = {n for n in dir(deliverability) if n[0].isalpha() and n != "annotations"}
    assert public == set(names)


def test_every_public_name_has_a_docstring() -> None:
    """Each exported class and function documents itself."""
    for name in deliverability.__all__:
        value = getattr(deliverability, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), name
