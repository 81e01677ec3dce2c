"""Certificates made by the tests (trustme): a test CA's certificate for some names, as files."""

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


@dataclass(frozen=True)
class Certificate:
    ca_file: Path
    cert_file: Path
    key_file: Path
    spki_sha256: str  # what Chromium's --ignore-certificate-errors-spki-list pins


def make_certificate(folder: Path, *names: str) -> Certificate:
    """A test CA's certificate for these names: files, and the leaf's public-key pin."""
    ca = trustme.CA()
    issued = ca.issue_cert(*names)
    paths = Certificate(folder / "ca.pem", folder / "cert.pem", folder / "key.pem", "")
    ca.cert_pem.write_to_path(str(paths.ca_file))
    issued.private_key_pem.write_to_path(str(paths.key_file))
    with paths.cert_file.open("wb") as chain:
        for blob in issued.cert_chain_pems:
            chain.write(blob.bytes())
    leaf = x509.load_pem_x509_certificate(issued.cert_chain_pems[0].bytes())
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return Certificate(paths.ca_file, paths.cert_file, paths.key_file, pin)
