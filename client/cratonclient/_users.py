"""Users and their roles, API tokens, secrets, and the audit trail."""

from __future__ import annotations

from typing import Any

from ._managers import Id, Manager
from ._resource import Resource
from .exceptions import NotFound


class UserManager(Manager):
    """The users holding a role in the project (``role``: viewer, auditor, operator, admin)."""

    path = "/v1/users"
    key = "users"
    noun = "user"

    def is_id(self, value: Id) -> bool:
        return True  # the server takes an id or a name

    def find(self, id_or_name: Id, **params: Any) -> Resource:
        return self.get(id_or_name, **params)

    def resolve_id(self, id_or_name: Id) -> Id:
        return id_or_name

    def grant(self, user: Id, role: str) -> Resource:
        """Give ``user`` ``role`` in the project: adds the user if they hold none yet."""
        try:
            return self.update(user, role=role)
        except NotFound:
            return self.create(name=str(user), role=role)

    def remove(self, user: Id) -> None:
        """Take the user's role in the project away (their tokens for it are revoked)."""
        self.delete(user)


class SecretManager(Manager):
    """The project's secrets. Values are sent, never received: no call answers one."""

    path = "/v1/secrets"
    key = "secrets"
    noun = "secret"


class TokenManager(Manager):
    """API tokens. ``create`` answers the token once, in ``token``; only its prefix is kept."""

    path = "/v1/tokens"
    key = "tokens"
    noun = "token"

    def revoke(self, id: Id) -> None:
        self.delete(id)


class AuditEventManager(Manager):
    """The audit trail, newest first (read-only)."""

    path = "/v1/audit-events"
    key = "audit_events"
    noun = "audit event"
