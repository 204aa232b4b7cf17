"""Encryption at rest for secrets the dashboard stores (LiveKit API secrets of added servers).

The key comes from DASHBOARD_SECRET_KEY, or is generated once into data/secret.key (mode 0600).
A DASHBOARD_SECRET_KEY that is not a Fernet key is stretched into one with SHA-256, so any long
random string works.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBoxError(RuntimeError):
    """A stored secret cannot be decrypted (the key changed or the data is damaged)."""


def _fernet_key(material: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(material.encode())
        if len(raw) == 32:
            return material.encode()
    except (ValueError, base64.binascii.Error):
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest())


def load_or_create_key(path: Path) -> str:
    """Read the key file, or create it with 0600 permissions when it does not exist.

    The key is written to a private temporary file first and then linked into place, so a
    second process starting at the same moment reads either no file or the whole key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text().strip()
    key = Fernet.generate_key().decode()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        os.link(temporary, path)  # fails if another process got there first
    except FileExistsError:
        return path.read_text().strip()
    finally:
        temporary.unlink(missing_ok=True)
    return key


class SecretBox:
    def __init__(self, key_material: str) -> None:
        self._fernet = Fernet(_fernet_key(key_material))

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise SecretBoxError(
                "a stored secret cannot be decrypted: DASHBOARD_SECRET_KEY or data/secret.key changed"
            ) from None
