"""Browser tests use the ``browser`` and ``page`` fixtures of tests/conftest.py."""
