"""The token and iop secrets: from the settings, from files, or generated once.

With nothing configured, strong random secrets are generated on first start and stored in the
state folder with mode 0600, so tokens stay valid across restarts. Where they are is logged;
what they are never is.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from wopibridge.config import ConfigError, Settings

log = logging.getLogger("wopibridge.secrets")

#: How the shipped examples (deploy/kubernetes/secret.example.yaml) spell a secret to replace.
PLACEHOLDER_PREFIX = "change-me"


@dataclass(frozen=True)
class Secrets:
    token_secret: str
    iop_secret: str

    def __repr__(self) -> str:
        return "Secrets(<hidden>)"


def _from_file(key: str, path: str) -> str:
    try:
        value = Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"security.{key}_file", f"cannot read {path} ({exc.strerror})") from None
    if len(value) < 16:
        raise ConfigError(f"security.{key}_file", "the secret must be at least 16 characters")
    return value


def _generated(key: str, state_dir: Path) -> str:
    path = state_dir / key
    if path.exists():
        return _from_file(key, str(path))
    value = secrets.token_urlsafe(32)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(
            "server.state_dir", f"cannot keep generated secrets in {state_dir} ({exc.strerror})"
        ) from None
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    log.warning("generated security.%s and stored it in %s (mode 0600)", key, path.resolve())
    return value


def load_secrets(settings: Settings) -> Secrets:
    values: dict[str, str] = {}
    for key in ("token_secret", "iop_secret"):
        direct = getattr(settings.security, key)
        file = getattr(settings.security, f"{key}_file")
        if direct:
            values[key] = direct
        elif file:
            values[key] = _from_file(key, file)
        else:
            values[key] = _generated(key, settings.server.state_dir)
        if values[key].lower().startswith(PLACEHOLDER_PREFIX):
            name = f"security.{key}_file" if file and not direct else f"security.{key}"
            raise ConfigError(
                name,
                "is the example's placeholder; set a long random secret (openssl rand -base64 32)",
            )
    return Secrets(**values)
