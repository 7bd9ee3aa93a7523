"""The asyncio I/O layer."""
