"""Runs Django's own ``BaseCacheTests`` (``tests/cache/tests.py`` of Django's sdist) against
``flexcache.contrib.django.FlexCacheBackend``.

    python tests/django_suite/run.py [-v 0|1|2]

The tests come from the sdist of the Django that is installed (``django.__version__``),
downloaded with ``pip download --no-binary :all: --no-deps`` into a cache folder outside
the repository (``$FLEXCACHE_DJANGO_SUITE_CACHE``, else ``~/.cache/flexcache/django-suite``)
and only ``tests/cache/`` extracted; none of Django's code is committed here. Exits 1 if a
case fails, and ends with ``django: N passed, N failed, N skipped``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cache_root() -> Path:
    given = os.environ.get("FLEXCACHE_DJANGO_SUITE_CACHE")
    if given:
        return Path(given)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "flexcache" / "django-suite"


def django_tests(version: str) -> Path:
    """The ``tests`` folder holding Django ``version``'s ``cache`` test app, fetched once."""
    root = cache_root() / f"django-{version}"
    tests = root / "tests"
    if (tests / "cache" / "tests.py").is_file():
        return tests
    root.mkdir(parents=True, exist_ok=True)
    sdist = root / f"django-{version}.tar.gz"
    if not sdist.is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-binary",
                ":all:",
                "--no-deps",
                "--dest",
                str(root),
                f"django=={version}",
            ],
            check=True,
        )
    prefix = f"django-{version}/tests/cache/"
    # Extracted beside the final folder and renamed into place, so a run stopped half-way
    # leaves no partial test app that a later run would take as complete.
    partial = Path(tempfile.mkdtemp(prefix="tests-", dir=root))
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix) and m.isfile()]
        if not members:
            raise SystemExit(f"{sdist} has no {prefix}")
        for member in members:
            target = partial / "cache" / member.name[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            target.write_bytes(source.read())
    shutil.rmtree(tests, ignore_errors=True)
    partial.rename(tests)
    return tests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbosity", type=int, default=1)
    args = parser.parse_args()

    import django

    started = time.monotonic()
    tests = django_tests(django.__version__)
    # Django's test app is importable as `cache` (its tests import cache.models and name
    # "cache.tests.custom_key_func"), our settings and cases beside it.
    sys.path[:0] = [str(tests), str(HERE)]
    os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
    django.setup()

    from django.test.runner import DiscoverRunner

    counts: dict[str, int] = {}

    class CountingRunner(DiscoverRunner):
        def suite_result(self, suite, result, **kwargs):  # type: ignore[no-untyped-def]
            failing = {str(test).split(" ")[0] for test, _ in result.failures + result.errors}
            failing |= {str(test).split(" ")[0] for test in result.unexpectedSuccesses}
            counts["run"] = result.testsRun
            counts["failed"] = len(failing)
            counts["skipped"] = len(result.skipped)
            return super().suite_result(suite, result, **kwargs)

    from flexcache_cases import SKIPPED

    runner = CountingRunner(verbosity=args.verbosity, interactive=False)
    failures = runner.run_tests(["flexcache_cases"])
    passed = counts["run"] - counts["failed"] - counts["skipped"]
    print(f"Django {django.__version__}'s BaseCacheTests in {time.monotonic() - started:.1f}s")
    for name, reason in SKIPPED.items():
        print(f"  skipped {name}: {reason}")
    print(f"django: {passed} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    return 1 if failures or counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
