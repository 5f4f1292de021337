"""Keys and signatures. Every signed object names its algorithm (crypto agility)."""

from aseptic.crypto._backend import is_pqc_backend_available, require_pqc_backend
from aseptic.crypto._hybrid import ALGORITHMS, ED25519, ED25519_ML_DSA_65
from aseptic.crypto._key_files import read_public_key
from aseptic.crypto._keys import KeyId, PublicKey, SigningKey, key_id_of
from aseptic.crypto._passphrase import (
    PASSPHRASE_ENV,
    PASSPHRASE_FILE_ENV,
    Passphrase,
    passphrase_from_environment,
)
from aseptic.crypto._store import ECDSA_P256, SITE_KEY, KeyStore
from aseptic.crypto._token_config import PIN_ENV as PKCS11_PIN_ENV
from aseptic.crypto._token_config import PIN_FILE_ENV as PKCS11_PIN_FILE_ENV
from aseptic.crypto._token_config import TokenConfig
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
    "ALGORITHMS",
    "ECDSA_P256",
    "ED25519",
    "ED25519_ML_DSA_65",
    "PASSPHRASE_ENV",
    "PASSPHRASE_FILE_ENV",
    "PKCS11_PIN_ENV",
    "PKCS11_PIN_FILE_ENV",
    "SITE_KEY",
    "ApplicationIdentity",
    "ApplicationRole",
    "KeyId",
    "KeyStore",
    "Passphrase",
    "PkiDirectory",
    "PublicKey",
    "SigningKey",
    "TokenConfig",
    "TrustList",
    "add_to_trust_list",
    "generate_application_certificate",
    "is_pqc_backend_available",
    "key_id_of",
    "load_certificate_file",
    "passphrase_from_environment",
    "read_public_key",
    "require_pqc_backend",
    "subject_common_name",
    "thumbprint",
    "verify_application_certificate",
]
