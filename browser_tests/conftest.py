"""`make test-browser`: the same embedded PostgreSQL and broker fixtures as `make test`."""

from tests.conftest import auth, isolated, stack

__all__ = ["auth", "isolated", "stack"]
