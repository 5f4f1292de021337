"""Keys and signatures. Every signed object names its algorithm (crypto agility)."""

from aseptic.crypto._keys import ED25519, KeyId, PublicKey, SigningKey, key_id_of
from aseptic.crypto._store import KeyStore, read_public_key
from aseptic.crypto._x509 import (
    ApplicationIdentity,
    ApplicationRole,
    PkiDirectory,
    TrustList,
    add_to_trust_list,
    generate_application_certificate,
    load_certificate_file,
    subject_common_name,
    thumbprint,
    verify_application_certificate,
)

__all__ = [
    "ED25519",
    "ApplicationIdentity",
    "ApplicationRole",
    "KeyId",
    "KeyStore",
    "PkiDirectory",
    "PublicKey",
    "SigningKey",
    "TrustList",
    "add_to_trust_list",
    "generate_application_certificate",
    "key_id_of",
    "load_certificate_file",
    "read_public_key",
    "subject_common_name",
    "thumbprint",
    "verify_application_certificate",
]
