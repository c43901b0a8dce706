"""The hand-assembled encoding matches what the generated protobuf classes produce."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ambientmesh.proto.discovery_pb2 import DeltaDiscoveryResponse, Resource
from ambientmesh.xds.encoding import encode_resource, encode_response

names = st.text(min_size=0, max_size=40)


@given(
    name=names,
    version=names,
    type_url=names,
    value=st.binary(max_size=300),
    aliases=st.lists(names, max_size=3),
)
def test_resource_encoding_is_byte_identical_to_protobuf(
    name: str, version: str, type_url: str, value: bytes, aliases: list[str]
) -> None:
    expected = Resource(name=name, version=version, aliases=aliases)
    expected.resource.type_url = type_url
    expected.resource.value = value
    encoded = encode_resource(
        name=name, version=version, type_url=type_url, value=value, aliases=aliases
    )
    assert encoded == expected.SerializeToString()


@given(
    system_version=names,
    type_url=names,
    nonce=names,
    values=st.lists(st.binary(max_size=200), max_size=4),
    removed=st.lists(names, max_size=4),
)
def test_response_encoding_parses_back(
    system_version: str, type_url: str, nonce: str, values: list[bytes], removed: list[str]
) -> None:
    resources = [
        encode_resource(name=f"r{i}", version="v", type_url=type_url, value=value)
        for i, value in enumerate(values)
    ]
    data = encode_response(
        system_version=system_version,
        type_url=type_url,
        nonce=nonce,
        resources=resources,
        removed=removed,
    )
    parsed = DeltaDiscoveryResponse.FromString(data)
    assert parsed.system_version_info == system_version
    assert parsed.type_url == type_url
    assert parsed.nonce == nonce
    assert list(parsed.removed_resources) == removed
    assert [r.resource.value for r in parsed.resources] == values
    assert data == parsed.SerializeToString()


def test_large_resource_uses_multibyte_lengths() -> None:
    value = b"x" * 70_000
    parsed = Resource.FromString(encode_resource(name="n", version="1", type_url="t", value=value))
    assert parsed.resource.value == value
