"""Password hashing shared by app passwords (devices) and admin accounts.

Hashes are made and checked with libpass (the ``passlib`` module). Nothing
here stores or logs a password in clear.

Layer: crm_model (plus libpass).
"""

from __future__ import annotations

import secrets

from passlib.hash import pbkdf2_sha256

# pbkdf2-sha256 is pure Python + hashlib (no compiled dependency) and slow on
# purpose; the server caches successful logins, so only the first request pays it.
HASHER = pbkdf2_sha256.using(rounds=200_000)
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def generate_app_password() -> str:
    """A random app password: 4 groups of 4 letters and digits, easy to type on a phone.

    31 symbols ** 16 is about 79 bits of randomness (``secrets``).
    """
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))


def hash_password(password: str) -> str:
    """The libpass hash of ``password`` (a new salt each time)."""
    return str(HASHER.hash(password))


def password_matches(password: str, password_hash: str) -> bool:
    """True when ``password`` is the one ``password_hash`` was made from (constant-time compare)."""
    return bool(HASHER.verify(password, password_hash))


DUMMY_HASH = hash_password("not a password")


def spend_one_check(password: str) -> None:
    """Cost one hash check for nothing, so an unknown login takes as long as a known one."""
    HASHER.verify(password, DUMMY_HASH)
