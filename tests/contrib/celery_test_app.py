"""The Celery app a subprocess worker loads in the tests (``celery -A celery_test_app worker``).

Everything comes from the environment the test sets: the private Redis and the SMTP server.
"""

from __future__ import annotations

import os
import warnings

from celery import Celery

from mailtransfer import RetryPolicy

# redis-py 8 deprecates the setex call Celery's result backend makes.
warnings.filterwarnings("ignore", "Call to deprecated setex", DeprecationWarning)

REDIS = os.environ["MAILTRANSFER_TEST_REDIS"]

app = Celery("mailtransfer-subprocess", broker=f"{REDIS}/2", backend=f"{REDIS}/3")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    imports=["mailtransfer.contrib.celery"],
    mailtransfer_url=os.environ["MAILTRANSFER_TEST_SMTP"],
    mailtransfer_options={"retry": RetryPolicy.none(), "local_hostname": "prefork.test"},
    mailtransfer_retry_backoff=0.01,
)
