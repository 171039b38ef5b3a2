"""Integrations of FlexCache with other libraries (each imports its library on its own)."""
