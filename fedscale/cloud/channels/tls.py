"""Mutual TLS for a job's gRPC channel, under a certificate authority that exists for one job.

A job whose processes reach across machines encrypts its channel. The driver creates a fresh CA
and, signed by it, one server certificate (the aggregator's) and one client certificate (shared
by the executors), then hands them to the job's processes in their environment. Both sides
verify the other against the job's CA, so a peer without the job's certificate cannot even open
the channel; the job secret is still checked on top. The CA's private key is dropped once the
two certificates are signed: nothing can ever be signed into the job again.

Executors dial the aggregator by whatever address they were given (often an IP), and check the
server certificate for the fixed name ``SERVER_NAME`` instead (``TARGET_NAME_OPTION``).
"""
from __future__ import annotations

import datetime
import ipaddress
from dataclasses import astuple, dataclass
from typing import Mapping, Sequence

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAME = "fedscale-aggregator"
TARGET_NAME_OPTION = ("grpc.ssl_target_name_override", SERVER_NAME)

CA_ENV = "FEDSCALE_TLS_CA"
SERVER_CERT_ENV = "FEDSCALE_TLS_SERVER_CERT"
SERVER_KEY_ENV = "FEDSCALE_TLS_SERVER_KEY"
CLIENT_CERT_ENV = "FEDSCALE_TLS_CLIENT_CERT"
CLIENT_KEY_ENV = "FEDSCALE_TLS_CLIENT_KEY"
ENV_NAMES = (CA_ENV, SERVER_CERT_ENV, SERVER_KEY_ENV, CLIENT_CERT_ENV, CLIENT_KEY_ENV)  # in the order of the fields
SERVER_ONLY = frozenset({SERVER_CERT_ENV, SERVER_KEY_ENV})  # what executors on other hosts are not given

# Certificates start a little in the past: the hosts' clocks may disagree by that much.
_CLOCK_SKEW = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class JobCertificates:
    """One job's CA certificate, and the server's and the client's certificate and key (PEM)."""

    ca_cert: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes

    @classmethod
    def create(cls, server_names: Sequence[str], days: int = 30) -> JobCertificates:
        """A new CA and its two certificates, valid for ``days``. The server certificate names every
        one of ``server_names`` (IP addresses as such, others as DNS names) and ``SERVER_NAME``."""
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedscale job CA")])
        ca_cert = (_builder(ca_name, ca_name, ca_key.public_key(), now, days)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(_key_usage(cert_sign=True), critical=True)
                   .sign(ca_key, hashes.SHA256()))
        server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        alt_names = [x509.DNSName(SERVER_NAME)] + [_alt_name(name) for name in dict.fromkeys(server_names)
                                                  if name != SERVER_NAME]
        server_cert = (_leaf(SERVER_NAME, server_key, ca_name, now, days, ExtendedKeyUsageOID.SERVER_AUTH)
                       .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
                       .sign(ca_key, hashes.SHA256()))
        client_cert = (_leaf("fedscale-executor", client_key, ca_name, now, days, ExtendedKeyUsageOID.CLIENT_AUTH)
                       .sign(ca_key, hashes.SHA256()))
        return cls(ca_cert=_pem(ca_cert), server_cert=_pem(server_cert), server_key=_key_pem(server_key),
                   client_cert=_pem(client_cert), client_key=_key_pem(client_key))

    def to_env(self) -> dict[str, str]:
        """The environment variables that carry these certificates to a job's process."""
        return {name: pem.decode() for name, pem in zip(ENV_NAMES, astuple(self))}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> JobCertificates | None:
        """The certificates in ``env`` (see ``to_env``), or None when it holds none (a plaintext
        job). An executor's environment may lack the server's pair (``SERVER_ONLY``). A missing,
        malformed or mismatched variable is a ValueError naming it."""
        if not any(env.get(name) for name in ENV_NAMES):
            return None
        with_server = any(env.get(name) for name in SERVER_ONLY)
        missing = [name for name in ENV_NAMES if not env.get(name) and (with_server or name not in SERVER_ONLY)]
        if missing:
            raise ValueError(f"{missing[0]} is not set, while other variables of the job's certificates are")
        ca = _read_cert(env, CA_ENV)
        pairs = ((SERVER_CERT_ENV, SERVER_KEY_ENV),) * with_server + ((CLIENT_CERT_ENV, CLIENT_KEY_ENV),)
        for cert_name, key_name in pairs:
            cert, key = _read_cert(env, cert_name), _read_key(env, key_name)
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                raise ValueError(f"{cert_name} is not signed by the CA in {CA_ENV}") from None
            if key.public_key() != cert.public_key():
                raise ValueError(f"{key_name} is not the key of the certificate in {cert_name}")
        return cls(*(env.get(name, "").encode() for name in ENV_NAMES))

    def server_credentials(self) -> grpc.ServerCredentials:
        """The aggregator's side: its certificate, and only clients signed by the job's CA admitted."""
        if not self.server_key:
            raise ValueError(f"{SERVER_KEY_ENV} is not set: only the aggregator's environment holds the server's key")
        return grpc.ssl_server_credentials([(self.server_key, self.server_cert)], root_certificates=self.ca_cert,
                                           require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """An executor's side: the job's CA to check the aggregator, and the client certificate."""
        return grpc.ssl_channel_credentials(self.ca_cert, self.client_key, self.client_cert)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             now: datetime.datetime, days: int) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW).not_valid_after(now + datetime.timedelta(days=days)))


def _leaf(common_name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, now: datetime.datetime, days: int,
          usage: x509.ObjectIdentifier) -> x509.CertificateBuilder:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (_builder(subject, issuer, key.public_key(), now, days)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not cert_sign, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                         key_agreement=False, encipher_only=False, decipher_only=False)


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _read_cert(env: Mapping[str, str], name: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(env[name].encode())
    except ValueError:
        raise ValueError(f"{name} does not hold a PEM certificate") from None


def _read_key(env: Mapping[str, str], name: str) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(env[name].encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError(f"{name} does not hold an unencrypted PEM private key") from None
