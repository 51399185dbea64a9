"""API credentials for a venue account, from the environment or systemd credentials.

Never from YAML in the repo. Lookup for venue ``alpha`` (names upper-cased, non
alphanumerics turned into ``_``):

1. environment: ``STACKMM_ALPHA_API_KEY``, ``STACKMM_ALPHA_API_SECRET`` (and optional
   ``STACKMM_ALPHA_API_PASSWORD`` for venues that need a passphrase);
2. systemd ``LoadCredential=``: files ``alpha_api_key``, ``alpha_api_secret``
   (``alpha_api_password``) in ``$CREDENTIALS_DIRECTORY``.

The secret never appears in ``repr`` (so not in logs either).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    secret: str = field(repr=False)
    password: str | None = field(default=None, repr=False)

    def ccxt_fields(self) -> dict[str, str]:
        """The keys ccxt's constructor expects."""
        out = {"apiKey": self.api_key, "secret": self.secret}
        if self.password:
            out["password"] = self.password
        return out


class MissingCredentials(LookupError):
    """No credentials were found; the message says where we looked."""


def _env_name(venue: str, part: str) -> str:
    return f"STACKMM_{re.sub(r'[^A-Za-z0-9]', '_', venue).upper()}_API_{part}"


def _file_name(venue: str, part: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_]', '_', venue)}_api_{part.lower()}"


def load_credentials(venue: str, env: Mapping[str, str] | None = None) -> Credentials:
    """Credentials for ``venue`` or :class:`MissingCredentials` naming the places tried."""
    env = os.environ if env is None else env

    def lookup(part: str) -> str | None:
        value = env.get(_env_name(venue, part))
        if value:
            return value.strip()
        directory = env.get("CREDENTIALS_DIRECTORY")
        if directory:
            path = Path(directory) / _file_name(venue, part)
            if path.is_file():
                return path.read_text(encoding="utf-8").strip() or None
        return None

    key, secret = lookup("KEY"), lookup("SECRET")
    if not key or not secret:
        raise MissingCredentials(
            f"no API credentials for venue {venue!r}: set {_env_name(venue, 'KEY')} and "
            f"{_env_name(venue, 'SECRET')}, or provide {_file_name(venue, 'KEY')} and "
            f"{_file_name(venue, 'SECRET')} via systemd LoadCredential= ($CREDENTIALS_DIRECTORY)"
        )
    return Credentials(api_key=key, secret=secret, password=lookup("PASSWORD"))
