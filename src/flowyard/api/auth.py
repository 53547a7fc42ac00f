"""Authentication and authorization for every API route (DESIGN §7).

Two interfaces so that multi-user needs no redesign:

* :class:`Authenticator` turns a bearer token into a :class:`User` (or None);
* :class:`Authorizer` decides whether that user may do a verb on a resource.

Today there is one user, the admin, whose token is in ``FLOWYARD_HOME/credentials``;
:class:`AdminAuthorizer` lets the admin do everything and nobody else anything. Profiles and
roles plug in as another Authorizer.

The middleware is plain ASGI (no per-request overhead of Starlette's BaseHTTPMiddleware). Only
``/healthz``, ``/livez``, ``/readyz`` and KFP's ``/apis/v2beta1/healthz`` are open, as on a
Kubernetes API server and KFP: they carry no data. Nothing trusts a client-supplied identity header.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import orjson

from flowyard.errors import ForbiddenError, UnauthorizedError

# /apis/v2beta1/healthz: kfp.Client() probes it while it is constructed (KFP serves it openly).
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/apis/v2beta1/healthz"})


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    is_admin: bool = False


@dataclass(frozen=True)
class RequestAttributes:
    """What is being asked: a Kubernetes-style verb on a resource in a namespace."""

    verb: str
    group: str = ""
    resource: str = ""
    namespace: str = ""
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Authenticator(ABC):
    @abstractmethod
    def authenticate(self, token: str) -> User | None: ...


class Authorizer(ABC):
    @abstractmethod
    def authorize(self, user: User, attrs: RequestAttributes) -> None:
        """Return if allowed; raise ForbiddenError naming the user, verb and resource if not."""


class TokenAuthenticator(Authenticator):
    """Static tokens (compared by SHA-256 digest in constant time)."""

    def __init__(self, tokens: dict[str, User]) -> None:
        self._by_digest = {_digest(t): u for t, u in tokens.items()}

    def authenticate(self, token: str) -> User | None:
        digest = _digest(token)
        for known, user in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return user
        return None


class AdminAuthorizer(Authorizer):
    def authorize(self, user: User, attrs: RequestAttributes) -> None:
        if user.is_admin:
            return
        where = f' in the namespace "{attrs.namespace}"' if attrs.namespace else ""
        raise ForbiddenError(
            f'User "{user.name}" cannot {attrs.verb} resource "{attrs.resource}" in API group '
            f'"{attrs.group}"{where}'
        )


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for key, value in headers:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class AuthMiddleware:
    """Rejects unauthenticated requests with a 401 ``Status``; stores the user in the scope."""

    def __init__(self, app: Any, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope.get("headers") or [])
        user = self.authenticator.authenticate(token) if token else None
        if user is None:
            error = UnauthorizedError(
                "Unauthorized: send 'Authorization: Bearer <token>'; the admin token is in "
                "FLOWYARD_HOME/credentials (flowyard CLI and flowyard.Client read it)"
                if not token
                else "Unauthorized: the bearer token is not valid"
            )
            body = orjson.dumps(error.to_status())
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="flowyard"'),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)
