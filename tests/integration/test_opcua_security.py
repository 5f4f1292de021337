"""The twin's OPC UA server refuses whoever is not a trusted, encrypted, X.509-identified client."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto import security_policies
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.uaerrors import UaError, UaStatusCodeError
from opcua_support import gateway, make_server, new_client_identity, raw_client, tag_node

from aseptic.crypto import PkiDirectory, add_to_trust_list, thumbprint
from aseptic.errors import AccessDenied, ConfigError, SignatureError
from aseptic.telemetry import OpcUaSource

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-ZERO-TRUST", "P11-11.10h")]


async def test_server_offers_only_signandencrypt_endpoints_with_x509_identities(tmp_path: Path) -> None:
    async with make_server(tmp_path) as server:
        endpoints = await Client(server.endpoint_url, timeout=10).connect_and_get_server_endpoints()
    assert endpoints
    for endpoint in endpoints:
        assert endpoint.SecurityMode == ua.MessageSecurityMode.SignAndEncrypt
        assert endpoint.SecurityPolicyUri == SecurityPolicyBasic256Sha256.URI
        assert [t.TokenType for t in endpoint.UserIdentityTokens] == [ua.UserTokenType.Certificate]


async def test_client_with_security_policy_none_cannot_connect(tmp_path: Path) -> None:
    async with make_server(tmp_path) as server:
        await server.publish_sample()
        client = Client(server.endpoint_url, timeout=10)
        with pytest.raises(UaError):
            await client.connect()


async def test_none_channel_with_trusted_identity_cannot_browse_or_read(tmp_path: Path) -> None:
    """A hand-made client skips the endpoint check and logs in over an unencrypted channel."""
    async with make_server(tmp_path) as server:
        await server.publish_sample()
        me = gateway(tmp_path)  # trusted identity, private key in hand: only the channel is wrong
        client = Client(server.endpoint_url, timeout=10)
        await client.connect_socket()
        try:
            await client.send_hello()
            await client.open_secure_channel()  # SecurityPolicy#None
            created = await client.uaclient.create_session(
                ua.CreateSessionParameters(
                    ClientDescription=ua.ApplicationDescription(
                        ApplicationUri=me.application_uri, ApplicationType=ua.ApplicationType.Client
                    ),
                    EndpointUrl=server.endpoint_url,
                    SessionName="none-channel",
                    ClientNonce=b"\x01" * 32,
                    ClientCertificate=me.certificate_der,
                    RequestedSessionTimeout=60_000,
                )
            )
            server_der = (PkiDirectory.of(tmp_path).own / "server.der").read_bytes()
            signature, algorithm = security_policies.sign_asymmetric(
                me.private_key, server_der + created.ServerNonce, SecurityPolicyBasic256Sha256.URI
            )
            await client.uaclient.activate_session(
                ua.ActivateSessionParameters(
                    UserIdentityToken=ua.X509IdentityToken(
                        PolicyId="certificate", CertificateData=me.certificate_der
                    ),
                    UserTokenSignature=ua.SignatureData(Algorithm=algorithm, Signature=signature),
                )
            )
            temperature = tag_node(client, 2, "temperature_k").nodeid
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await client.uaclient.read_attributes([temperature], ua.AttributeIds.Value)
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await client.nodes.objects.get_children()
        finally:
            client.disconnect_socket()


async def test_untrusted_client_certificate_is_refused_logged_counted_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aseptic.twin.opcua")
    async with make_server(tmp_path / "server") as server:
        await server.publish_sample()
        stranger = new_client_identity(
            tmp_path / "stranger", "stranger", trusted=False, server_data_dir=tmp_path / "server"
        )
        with pytest.raises(UaStatusCodeError) as refused:
            async with raw_client(server.endpoint_url, stranger, tmp_path / "server") as client:
                await tag_node(client, 2, "temperature_k").read_value()
        assert refused.value.code == ua.StatusCodes.BadCertificateUntrusted
        assert server.stats.refused_certificates == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "aseptic.twin.opcua"]
    assert any("CN=stranger" in line and thumbprint(stranger.certificate) in line for line in lines)
    kept = list(PkiDirectory.of(tmp_path / "server").rejected.iterdir())
    assert [p.read_bytes() for p in kept] == [stranger.certificate_der]


async def test_untrusted_collector_gets_access_denied(tmp_path: Path) -> None:
    async with make_server(tmp_path / "server") as server:
        new_client_identity(tmp_path / "c", "stranger", trusted=False, server_data_dir=tmp_path / "server")
        source = OpcUaSource(server.endpoint_url, data_dir=tmp_path / "c", identity="client-stranger")
        with pytest.raises(AccessDenied, match="BadCertificateUntrusted"):
            await source.connect()
        assert source.tags == ()


async def test_impostor_with_trusted_common_name_but_own_key_is_refused(tmp_path: Path) -> None:
    async with make_server(tmp_path / "server") as server:
        impostor = new_client_identity(
            tmp_path / "x", "aseptic-gateway", trusted=False, server_data_dir=tmp_path / "server"
        )
        with pytest.raises(UaStatusCodeError):
            async with raw_client(server.endpoint_url, impostor, tmp_path / "server"):
                pass
        assert server.stats.refused_certificates == 1


async def test_anonymous_identity_on_an_encrypted_channel_is_rejected(tmp_path: Path) -> None:
    async with make_server(tmp_path) as server:
        me = gateway(tmp_path)
        client = Client(server.endpoint_url, timeout=10)
        client.application_uri = me.application_uri
        await client.set_security(
            SecurityPolicyBasic256Sha256,
            str(me.cert_path),
            str(me.key_path),
            server_certificate=str(PkiDirectory.of(tmp_path).own / "server.der"),
        )
        with pytest.raises(ua.uaerrors.BadIdentityTokenRejected):
            await client.connect()  # no user_certificate: the client sends an anonymous token


async def test_client_trusted_while_the_server_runs_is_admitted(tmp_path: Path) -> None:
    async with make_server(tmp_path / "server") as server:
        await server.publish_sample()
        newcomer = new_client_identity(
            tmp_path / "n", "newcomer", trusted=False, server_data_dir=tmp_path / "server"
        )
        with pytest.raises(UaStatusCodeError):
            async with raw_client(server.endpoint_url, newcomer, tmp_path / "server"):
                pass
        add_to_trust_list(PkiDirectory.of(tmp_path / "server").trusted, newcomer.certificate)
        async with raw_client(server.endpoint_url, newcomer, tmp_path / "server") as client:
            assert await tag_node(client, 2, "ph").read_value() == server.plant.history[-1]["ph"]


async def test_collector_refuses_a_server_not_in_its_trust_list(tmp_path: Path) -> None:
    async with make_server(tmp_path / "real") as real, make_server(tmp_path / "rogue") as rogue:
        new_client_identity(tmp_path / "c", "collector", trusted=True, server_data_dir=tmp_path / "real")
        source = OpcUaSource(rogue.endpoint_url, data_dir=tmp_path / "c", identity="client-collector")
        with pytest.raises(SignatureError, match="not in trust list"):
            await source.connect()
        assert real.stats.refused_certificates == 0


async def test_corrupt_trust_list_certificate_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    async with make_server(tmp_path):
        pass  # first run: creates the PKI
    corrupt = PkiDirectory.of(tmp_path).trusted / "operator.der"
    corrupt.write_bytes(b"0\x82\x03\x00 not a certificate")
    server = make_server(tmp_path)
    with pytest.raises(ConfigError, match=str(corrupt)):
        await server.start()
    await server.stop()


async def test_corrupt_server_certificate_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    async with make_server(tmp_path):
        pass
    cert = PkiDirectory.of(tmp_path).own / "server.der"
    cert.write_bytes(cert.read_bytes()[:100])
    with pytest.raises(ConfigError, match=str(cert)):
        await make_server(tmp_path).start()


async def test_empty_trust_list_fails_closed(tmp_path: Path) -> None:
    async with make_server(tmp_path):
        pass
    for path in PkiDirectory.of(tmp_path).trusted.iterdir():
        path.unlink()
    with pytest.raises(ConfigError, match="empty"):
        await make_server(tmp_path).start()
