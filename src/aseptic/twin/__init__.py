"""The plant digital twin: an industrial fed-batch penicillin fermenter (IndPenSim model)."""

from aseptic.twin.tags import DEVICES, TAGS, TAGS_BY_NAME, DeviceSpec, TagKind, TagSpec, tag_spec

__all__ = ["DEVICES", "TAGS", "TAGS_BY_NAME", "DeviceSpec", "TagKind", "TagSpec", "tag_spec"]
