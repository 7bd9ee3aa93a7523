"""The client's conversations as sans-I/O generators, run by the sync and async drivers.

Each flow is a generator that yields I/O instructions (``_io.py``) and receives
their results; a driver executes them with sockets or asyncio. A driver that
hits an I/O error throws it into the flow, so the flow, which knows where the
session stands, decides what the error means (before or after end-of-data).
"""
