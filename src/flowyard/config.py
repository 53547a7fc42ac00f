"""Where flowyard keeps its state and how clients find the server (DESIGN §5).

Environment variables:

* ``FLOWYARD_HOME`` (default ``~/.flowyard``): ``flowyard.db``, ``artifacts/``, ``logs/``,
  ``credentials``.
* ``FLOWYARD_URL`` (default ``http://127.0.0.1:8731``): where clients find the server.
* ``FLOWYARD_TOKEN``: the bearer token; otherwise read from ``FLOWYARD_HOME/credentials``.
* ``FLOWYARD_DATABASE_URL``: a SQLAlchemy URL (``postgresql+psycopg://...``); default SQLite in
  the home.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8731
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"


def home() -> Path:
    """The flowyard home directory (created on first use)."""
    path = Path(os.environ.get("FLOWYARD_HOME") or Path.home() / ".flowyard").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def server_url() -> str:
    return (os.environ.get("FLOWYARD_URL") or DEFAULT_URL).rstrip("/")


def database_url() -> str:
    return os.environ.get("FLOWYARD_DATABASE_URL") or f"sqlite:///{home() / 'flowyard.db'}"


def logs_dir() -> Path:
    path = home() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def artifacts_dir() -> Path:
    path = home() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def credentials_path() -> Path:
    return home() / "credentials"


def read_token() -> str | None:
    """The client's token: ``FLOWYARD_TOKEN``, else the one in ``FLOWYARD_HOME/credentials``."""
    token = os.environ.get("FLOWYARD_TOKEN")
    if token:
        return token
    return read_token_file(credentials_path())


def ensure_admin_token() -> str:
    """Return the admin token, creating ``credentials`` (mode 0600) on first start.

    The file is written atomically (temp file, then rename) so a crash never leaves a
    half-written credential behind.
    """
    path = credentials_path()
    existing = read_token_file(path)
    if existing:
        return existing
    token = secrets.token_urlsafe(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"token": token, "user": "admin"}, handle)
    os.replace(tmp, path)
    os.chmod(path, 0o600)
    return token


def read_token_file(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    value = data.get("token") if isinstance(data, dict) else None
    return str(value) if value else None
