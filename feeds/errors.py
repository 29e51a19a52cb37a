"""One exception tree for the Flask-free core.

Every error carries the id of the resource it is about, and is raised
``from`` the lower-level exception that caused it.
"""

from __future__ import annotations


class FeedsError(Exception):
    """Base of every error raised by the feeds package."""

    def __init__(self, message: str, *, resource_id: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.resource_id = resource_id

    def __str__(self) -> str:
        return self.message


class NotFound(FeedsError):
    """Something asked for by id or slug does not exist (or is not visible)."""


class ReleaseNotFound(NotFound):
    pass


class OrganizationNotFound(NotFound):
    pass


class CountryNotFound(NotFound):
    pass


class SourceNotFound(NotFound):
    pass


class InvalidInput(FeedsError):
    """Input that cannot be accepted; ``field`` names the culprit."""

    def __init__(self, message: str, *, field: str | None = None, resource_id: object = None) -> None:
        super().__init__(message, resource_id=resource_id)
        self.field = field


class Forbidden(FeedsError):
    """The caller is known but may not touch this resource."""


class Unauthorized(FeedsError):
    """No credentials, or wrong ones."""


class SourceError(FeedsError):
    """A partner feed could not be fetched or understood."""


class FetchError(SourceError):
    """The HTTP side failed: network, TLS, status, limits, SSRF guard."""

    def __init__(
        self,
        message: str,
        *,
        resource_id: object = None,
        status: int | None = None,
        retry_after: float | None = None,
        permanent: bool = False,
    ) -> None:
        super().__init__(message, resource_id=resource_id)
        self.status = status
        self.retry_after = retry_after
        self.permanent = permanent


class BlockedAddress(FetchError):
    """The SSRF guard refused an address."""


class ParseError(SourceError):
    """The bytes are not a feed we can read."""
