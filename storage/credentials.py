"""Credentials: PINs and passphrases, their scrypt hashes, and the wait after wrong tries.

A credential is a PIN (digits only, at least ``MIN_PIN_DIGITS``) or a passphrase (at least
``MIN_PASSPHRASE_CHARS`` characters, not only digits); admins always use a passphrase. Only a
salted scrypt hash is stored, ``scrypt$N$r$p$salt$digest``, so a hash made with an older, cheaper
cost still verifies and is re-hashed at the current cost on the next successful sign-in.

The cost is what makes a stolen database slow to attack: a 6-digit PIN has 10**6 values, so at
~0.25 s a guess one core needs ~3 days for the whole space (a 4-digit PIN at the old cost took 85 s
for one PIN). Wrong tries at the sign-in make the reader wait longer and longer (``wait_after``);
the count and the time the next try is allowed are kept in the database, so neither a restart nor
another workstation resets them, and every wrong try is audited.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from storage.errors import InvalidRequestError

MIN_PIN_DIGITS = 6
MIN_PASSPHRASE_CHARS = 12
SALT_BYTES, HASH_BYTES = 16, 32
# Hashes whose stored cost exceeds this are refused rather than computed: a tampered row must not
# make a sign-in take minutes or gigabytes.
MAX_MEMORY_BYTES = 1 << 30
FREE_WRONG_TRIES = 3          # typos: no wait for the first wrong tries
LONGEST_WAIT_S = 3600


@dataclass(frozen=True)
class ScryptCost:
    n: int
    r: int
    p: int

    @property
    def memory_bytes(self) -> int:
        return 128 * self.r * (self.n + self.p + 2)


# Measured on the project's 2-core AMD EPYC workstation (bench/bench_sign_in.py): N=2**16, r=10
# takes ~0.23-0.25 s and 80 MiB per check; RFC 7914's interactive N=2**14, r=8 took 0.05 s.
CURRENT_COST = ScryptCost(n=2**16, r=10, p=1)


def is_pin(secret: str) -> bool:
    return secret.isascii() and secret.isdigit()


def kind_of(secret: str) -> str:
    """What the reader's table notes of a credential (``reader.credential_kind``): "pin" or "passphrase"."""
    return "pin" if is_pin(secret) else "passphrase"


def check_new_secret(secret: str, needs_passphrase: bool = False) -> None:
    """Refuse a credential that is too short, in one sentence that says what is needed."""
    if needs_passphrase:
        if len(secret) < MIN_PASSPHRASE_CHARS or is_pin(secret):
            raise InvalidRequestError(
                f"An admin needs a passphrase of at least {MIN_PASSPHRASE_CHARS} characters, "
                "not only digits (a few words work well).")
        return
    if is_pin(secret):
        if len(secret) < MIN_PIN_DIGITS:
            raise InvalidRequestError(
                f"A PIN needs at least {MIN_PIN_DIGITS} digits; or use a passphrase of at least "
                f"{MIN_PASSPHRASE_CHARS} characters.")
    elif len(secret) < MIN_PASSPHRASE_CHARS:
        raise InvalidRequestError(
            f"A passphrase needs at least {MIN_PASSPHRASE_CHARS} characters; or use a PIN of at least "
            f"{MIN_PIN_DIGITS} digits only.")


def _scrypt(secret: str, salt: bytes, cost: ScryptCost, length: int) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=cost.n, r=cost.r, p=cost.p, dklen=length,
                          maxmem=cost.memory_bytes + (1 << 20))


def hash_secret(secret: str, cost: ScryptCost | None = None) -> str:
    cost = cost or CURRENT_COST
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(secret, salt, cost, HASH_BYTES)
    return f"scrypt${cost.n}${cost.r}${cost.p}${salt.hex()}${digest.hex()}"


def _parse(stored: str) -> tuple[ScryptCost, bytes, bytes] | None:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        cost = ScryptCost(int(n), int(r), int(p))
        parsed = cost, bytes.fromhex(salt), bytes.fromhex(digest)
    except ValueError:
        return None
    if scheme != "scrypt" or not parsed[2] or min(cost.n, cost.r, cost.p) < 1:
        return None
    return None if cost.memory_bytes > MAX_MEMORY_BYTES else parsed


def secret_matches(stored: str, secret: str) -> bool:
    """True when ``secret`` hashes to ``stored`` with the salt and cost stored with it."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    cost, salt, digest = parsed
    try:
        candidate = _scrypt(secret, salt, cost, len(digest))
    except ValueError:   # a cost OpenSSL refuses (N not a power of two): not a hash we made
        return False
    return hmac.compare_digest(candidate, digest)


def needs_rehash(stored: str) -> bool:
    """A hash made at another cost (an older Octant's): re-hashed after the next sign-in."""
    parsed = _parse(stored)
    return parsed is not None and parsed[0] != CURRENT_COST


def wait_after(wrong_tries: int) -> int:
    """Seconds before the next try after ``wrong_tries`` wrong ones in a row: none for the first
    few, then 15 s doubling each time up to an hour (about 24 guesses a day once there)."""
    if wrong_tries <= FREE_WRONG_TRIES:
        return 0
    return min(15 * 2 ** (wrong_tries - FREE_WRONG_TRIES - 1), LONGEST_WAIT_S)


def retry_time(now: datetime, wrong_tries: int) -> datetime | None:
    wait = wait_after(wrong_tries)
    return now + timedelta(seconds=wait) if wait else None


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for what was stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)
