"""Private implementation of :mod:`mailtransfer.dkim`; import from there."""
