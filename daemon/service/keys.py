"""CURVE keys for the daemon and its clients, made with zmq.auth and kept in the user's config dir.

Layout of the keys dir (`platformdirs.user_config_dir("neural-fill")/keys`, or `$NEURAL_FILL_CONFIG_DIR/keys`):

    server.key, server.key_secret     the daemon's pair (clients need server.key)
    client.key, client.key_secret     one client pair, made with the server's so a local client works at once
    clients/*.key                     the public keys the daemon accepts (client.key is copied here)

Secret files are 0600 and the dirs 0700: anyone who can read a secret key can act as its owner.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq.auth

from .link import CurveKeys

CONFIG_DIR_ENV = "NEURAL_FILL_CONFIG_DIR"
SERVER, CLIENT = "server", "client"
AUTHORISED_DIR = "clients"


class KeysError(OSError):
    """A key file is missing or unreadable."""


@dataclass(frozen=True)
class KeyPair:
    public: bytes
    secret: bytes


def default_keys_dir() -> Path:
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override) / "keys"
    import platformdirs

    return Path(platformdirs.user_config_dir("neural-fill")) / "keys"


def ensure_keys(keys_dir: Path | None = None) -> Path:
    """Make the server pair, one client pair and the authorised folder unless they exist; returns the keys dir."""
    keys_dir = Path(keys_dir) if keys_dir is not None else default_keys_dir()
    authorised = keys_dir / AUTHORISED_DIR
    for folder in (keys_dir, authorised):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is masked by the umask
    for name in (SERVER, CLIENT):
        if not (keys_dir / f"{name}.key_secret").exists():
            zmq.auth.create_certificates(keys_dir, name)
            (keys_dir / f"{name}.key_secret").chmod(0o600)
            (keys_dir / f"{name}.key").chmod(0o644)
            if name == CLIENT:
                shutil.copyfile(keys_dir / f"{CLIENT}.key", authorised / f"{CLIENT}.key")
    return keys_dir


def authorised_dir(keys_dir: Path) -> Path:
    return Path(keys_dir) / AUTHORISED_DIR


def load_pair(keys_dir: Path, name: str) -> KeyPair:
    public, secret = _load(Path(keys_dir) / f"{name}.key_secret")
    if secret is None:
        raise KeysError(f"{keys_dir / (name + '.key_secret')} holds no secret key")
    return KeyPair(public, secret)


def load_public(keys_dir: Path, name: str) -> bytes:
    return _load(Path(keys_dir) / f"{name}.key")[0]


def _load(path: Path) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise KeysError(f"no key file at {path}: start the daemon once (on tcp://, or with --curve) to make the "
                        "keys")
    try:
        return zmq.auth.load_certificate(path)
    except (OSError, ValueError) as error:
        raise KeysError(f"cannot read the key file {path}: {error}") from None


def curve_keys(keys_dir: Path) -> CurveKeys:
    """What a client needs to speak CURVE to the daemon whose keys are in keys_dir."""
    own = load_pair(keys_dir, CLIENT)
    return CurveKeys(load_public(keys_dir, SERVER), own.public, own.secret)
