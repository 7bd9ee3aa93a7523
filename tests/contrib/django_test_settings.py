"""A real Django settings module for the backend tests (DJANGO_SETTINGS_MODULE points here).

The tests override EMAIL_PORT (and friends) per test with ``override_settings``, pointing
Django at the loopback server each test starts.
"""

from mailtransfer import RetryPolicy

SECRET_KEY = "mailtransfer-tests-only"
USE_TZ = True
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
EMAIL_BACKEND = "mailtransfer.contrib.django.EmailBackend"
DEFAULT_FROM_EMAIL = "Site <site@example.test>"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = 25
EMAIL_USE_TLS = False
EMAIL_USE_SSL = False
MAILTRANSFER_OPTIONS = {
    "retry": RetryPolicy.none(),
    "local_hostname": "client.example.test",
}
