"""The blocking I/O layer: sockets, ``ssl`` and threads."""
