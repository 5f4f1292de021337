"""Finding the plant in an OPC UA server, and deciding whether to trust that server (asyncua glue).

The twin's address space is ISA-95: ``Objects/<site>/<area>/<unit>/<tag>`` in the namespace
``urn:aseptic:twin``; each tag has the properties ``EURange``, ``EngineeringUnits`` and
``Device``; ``<unit>/BatchState/SampleTimeH`` gives the sample period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asyncua import ua as _ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509

from aseptic.clock import Clock
from aseptic.crypto import ApplicationRole, TrustList, verify_application_certificate
from aseptic.errors import BackendError, SignatureError
from aseptic.twin import TAGS_BY_NAME, TagKind

# asyncua re-exports its protocol types implicitly; they stay Any inside this adapter.
ua: Any = _ua

TWIN_NAMESPACE_URI = "urn:aseptic:twin"


@dataclass(frozen=True)
class OpcUaTag:
    """One tag as the server describes it."""

    name: str
    node_id: Any  # asyncua NodeId
    unit: str
    low: float
    high: float
    device: str
    source: str  # "<site>/<unit>/<device>", the Reading.source
    # False for laboratory assays, which report every 12 h, not every sample.
    kind_updates_every_sample: bool


@dataclass(frozen=True)
class PlantNodes:
    site: str
    area: str
    unit: str
    tags: tuple[OpcUaTag, ...]
    sample_time_s: float


async def verify_server_certificate(client: Any, trust: TrustList, clock: Clock) -> bytes:
    """The DER certificate of the server's Basic256Sha256 SignAndEncrypt endpoint, if trusted.

    Discovery (GetEndpoints) is the one exchange on an unencrypted channel; what it returns is
    trusted only after this check, and the channel is then pinned to that certificate.

    Raises:
        SignatureError: the certificate is invalid or not in ``trust``.
        BackendError: the server has no such endpoint.
    """
    endpoints = await client.connect_and_get_server_endpoints()
    for endpoint in endpoints:
        if (
            endpoint.SecurityPolicyUri == SecurityPolicyBasic256Sha256.URI
            and endpoint.SecurityMode == ua.MessageSecurityMode.SignAndEncrypt
        ):
            break
    else:
        raise BackendError(f"{client.server_url.geturl()} offers no Basic256Sha256 SignAndEncrypt endpoint")
    try:
        cert = x509.load_der_x509_certificate(endpoint.ServerCertificate)
    except ValueError:
        raise SignatureError(
            f"{client.server_url.geturl()} sent a certificate that is not valid DER"
        ) from None
    verify_application_certificate(
        cert, now=clock.now(), application_uri=endpoint.Server.ApplicationUri, role=ApplicationRole.SERVER
    )
    trust.verify_trusted(cert)
    return bytes(endpoint.ServerCertificate)


async def _children(client: Any, node_id: Any, idx: int, node_class: Any) -> list[tuple[str, Any]]:
    node = client.get_node(node_id)
    refs = await node.get_references(
        refs=ua.ObjectIds.HierarchicalReferences,
        direction=ua.BrowseDirection.Forward,
        nodeclassmask=node_class,
    )
    return [(ref.BrowseName.Name, ref.NodeId) for ref in refs if ref.NodeId.NamespaceIndex == idx]


async def _only_child(client: Any, node_id: Any, idx: int, level: str) -> tuple[str, Any]:
    found = await _children(client, node_id, idx, ua.NodeClass.Object)
    if not found:
        raise BackendError(
            f"no {level} object in namespace {TWIN_NAMESPACE_URI} on {client.server_url.geturl()}"
        )
    return found[0]


async def browse_plant(client: Any) -> PlantNodes:
    """Browse the first site/area/unit of the twin's namespace and describe its tags.

    Raises:
        BackendError: the namespace or the hierarchy is missing.
        asyncua UaStatusCodeError: the server refused a service (the caller translates it).
    """
    try:
        idx = await client.get_namespace_index(TWIN_NAMESPACE_URI)
    except ValueError:
        raise BackendError(f"{client.server_url.geturl()} has no namespace {TWIN_NAMESPACE_URI}") from None
    site, site_id = await _only_child(client, client.nodes.objects.nodeid, idx, "site")
    area, area_id = await _only_child(client, site_id, idx, "area")
    unit, unit_id = await _only_child(client, area_id, idx, "unit")
    variables = await _children(client, unit_id, idx, ua.NodeClass.Variable)
    names = [("0", "EURange"), ("0", "EngineeringUnits"), (str(idx), "Device")]
    paths = [
        ua.BrowsePath(
            StartingNode=node_id,
            RelativePath=ua.RelativePath(
                Elements=[
                    ua.RelativePathElement(
                        ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasProperty),
                        IsInverse=False,
                        IncludeSubtypes=True,
                        TargetName=ua.QualifiedName(prop, int(ns)),
                    )
                ]
            ),
        )
        for _, node_id in variables
        for ns, prop in names
    ]
    state_id = ua.NodeId(f"{site}.{area}.{unit}.BatchState.SampleTimeH", idx)
    targets = await client.uaclient.translate_browsepaths_to_nodeids(paths)
    ids = [r.Targets[0].TargetId if r.StatusCode.is_good() and r.Targets else state_id for r in targets]
    values = await client.uaclient.read_attributes([*ids, state_id], ua.AttributeIds.Value)
    sample = values[-1]
    sample_time_s = float(sample.Value.Value) * 3600.0 if sample.StatusCode.is_good() else 0.0
    tags = []
    for i, (name, node_id) in enumerate(variables):
        eu_range, units, device = (values[3 * i + k].Value.Value for k in range(3))
        if not isinstance(eu_range, ua.Range) or not isinstance(units, ua.EUInformation):
            continue  # not an analog item (e.g. a variable some other server adds)
        spec = TAGS_BY_NAME.get(name)
        tags.append(
            OpcUaTag(
                name=name,
                node_id=node_id,
                unit=str(units.DisplayName.Text),
                low=float(eu_range.Low),
                high=float(eu_range.High),
                device=str(device),
                source=f"{site}/{unit}/{device}",
                kind_updates_every_sample=spec is not None and spec.kind is not TagKind.ASSAY,
            )
        )
    return PlantNodes(site, area, unit, tuple(tags), sample_time_s)
