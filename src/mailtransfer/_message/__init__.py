"""Private implementation of :mod:`mailtransfer.message`; import from there."""
