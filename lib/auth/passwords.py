"""Password rules and bcrypt hashing (cost 12)."""

from __future__ import annotations

import bcrypt

BCRYPT_ROUNDS = 12
MIN_CHARS = 10
MAX_BYTES = 72  # bcrypt ignores everything past 72 bytes; refuse rather than silently truncate

# Verified against when the user does not exist, so both paths cost one bcrypt check.
_DUMMY_HASH = bcrypt.hashpw(b"no such user - constant work", bcrypt.gensalt(BCRYPT_ROUNDS))


class PasswordError(ValueError):
    """A password breaks a rule; the message says which."""


def check_rules(password: str) -> None:
    if len(password) < MIN_CHARS:
        raise PasswordError(f"A password needs at least {MIN_CHARS} characters.")
    if not password.strip():
        raise PasswordError("A password cannot be only spaces.")
    if len(password.encode()) > MAX_BYTES:
        raise PasswordError(f"A password can be at most {MAX_BYTES} bytes (UTF-8); this one is {len(password.encode())}.")


def hash_password(password: str) -> str:
    check_rules(password)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def hash_secret(secret: str) -> str:
    """A bcrypt hash of a secret with rules of its own (a meeting's password)."""
    return bcrypt.hashpw(secret.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def verify(password: str, hashed: str | None) -> bool:
    """True when `password` matches; with `hashed=None` it does the same work and says False."""
    candidate = password.encode()[:MAX_BYTES]
    if hashed is None:
        bcrypt.checkpw(candidate, _DUMMY_HASH)
        return False
    try:
        return bcrypt.checkpw(candidate, hashed.encode())
    except ValueError:
        return False
