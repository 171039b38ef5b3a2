"""Integrations of FlexCache with other libraries.

Each submodule imports its library when it is imported itself, never from here, so that
``import flexcache`` needs none of them: ``flexcache.contrib.django`` needs Django.
"""
