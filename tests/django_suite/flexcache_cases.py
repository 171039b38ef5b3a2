"""Django's ``BaseCacheTests`` against ``FlexCacheBackend``, set up as Django sets up its
``LocMemCacheTests``: the same ``caches_setting_for_tests`` aliases (default, prefix, v2,
custom_key, custom_key2, cull, zero_cull), all without a LOCATION, so they share one
FlexCache as Django's locmem aliases share one store (locmem needs a hack in ``setUp`` for
that; our backends share by LOCATION on their own).

``SKIPPED`` names each case we do not run, with why; run.py prints them.
"""

import unittest

from cache.tests import BaseCacheTests, caches_setting_for_tests
from django.test import TestCase, override_settings

#: Case name -> one line of why it is skipped. Empty: every case of BaseCacheTests runs.
SKIPPED: dict[str, str] = {}


@override_settings(
    CACHES=caches_setting_for_tests(BACKEND="flexcache.contrib.django.FlexCacheBackend")
)
class FlexCacheBackendTests(BaseCacheTests, TestCase):
    pass


for _name, _reason in SKIPPED.items():
    setattr(
        FlexCacheBackendTests,
        _name,
        unittest.skip(_reason)(getattr(FlexCacheBackendTests, _name)),
    )
