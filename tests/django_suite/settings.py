"""The smallest Django settings Django's cache tests (``tests/cache/tests.py``) run under.

``cache`` is the test app extracted from Django's sdist (its ``models.py`` has the ``Poll``
model that the model-instance cases store); the database is SQLite in memory. ``CACHES``
here is only what the module reads at import: each case gets the suite's own through
``override_settings``.
"""

SECRET_KEY = "flexcache-django-suite"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "cache"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
CACHES = {"default": {"BACKEND": "flexcache.contrib.django.FlexCacheBackend"}}
