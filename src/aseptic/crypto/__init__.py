"""Keys and signatures. Every signed object names its algorithm (crypto agility)."""

from aseptic.crypto._keys import ED25519, KeyId, PublicKey, SigningKey, key_id_of
from aseptic.crypto._store import KeyStore, read_public_key

__all__ = ["ED25519", "KeyId", "KeyStore", "PublicKey", "SigningKey", "key_id_of", "read_public_key"]
