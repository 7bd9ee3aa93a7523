"""Fixtures for the framework integrations: Django is configured from a real settings module."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_test_settings")
