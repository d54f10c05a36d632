"""Fixtures: the lifecycle handlers against the session's moto server."""

from tests.services.archiver.lifecycle_support import fresh_log_context, life, lifecycle_factory

__all__ = ["fresh_log_context", "life", "lifecycle_factory"]
