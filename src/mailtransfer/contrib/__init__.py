"""Framework integrations over :class:`~mailtransfer.Mailer`.

Each module imports its framework, so ``import mailtransfer`` never does:

- :mod:`mailtransfer.contrib.django`: ``EmailBackend``, a drop-in for Django's SMTP
  backend (``pip install 'mailtransfer[django]'``).
- :mod:`mailtransfer.contrib.logging`: ``SMTPHandler``, a logging handler that mails
  records from a background thread, rate-limited (no extra dependency).
- :mod:`mailtransfer.contrib.celery`: a task that sends mail through a pool per worker
  process, with Celery retries for transient failures (``pip install 'mailtransfer[celery]'``).
"""

from __future__ import annotations

__all__: list[str] = []
