"""Request bodies in and JSON answers out: parsing, checking against the URL, the served version."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ambientmesh.apiserver.paths import ResourcePath
from ambientmesh.errors import InvalidInput


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(value: object, status: int = 200) -> web.Response:
    return web.Response(body=dumps(value), status=status, content_type="application/json")


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise InvalidInput("the request has no body; send the object as JSON")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise InvalidInput(f"the request body is not UTF-8 text (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise InvalidInput(
            f"the request body is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}"
        ) from None


def object_for(target: ResourcePath, body: object) -> dict[str, Any]:
    """Check a request body against the URL it was sent to; fill what the URL implies."""
    if not isinstance(body, dict):
        raise InvalidInput(f"the request body must be a JSON object, not {_json_type(body)}")
    body.setdefault("apiVersion", target.api_version)
    body.setdefault("kind", target.kind.kind)
    if body["kind"] != target.kind.kind:
        raise InvalidInput(
            f"the object is a {body['kind']!r} but {target.kind.qualified_plural} takes "
            f'"{target.kind.kind}"'
        )
    if body["apiVersion"] != target.api_version:
        raise InvalidInput(
            f"the API version in the data ({body['apiVersion']}) does not match the expected "
            f"API version ({target.api_version})"
        )
    metadata = body.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise InvalidInput(f"metadata must be a JSON object, not {_json_type(metadata)}")
    if target.kind.namespaced and target.namespace is not None:
        namespace = metadata.setdefault("namespace", target.namespace) or target.namespace
        if namespace != target.namespace:
            raise InvalidInput(
                f"the namespace of the object ({namespace}) does not match the namespace on "
                f"the URL ({target.namespace})"
            )
        metadata["namespace"] = namespace
    if target.name is not None:
        name = metadata.setdefault("name", target.name)
        if name != target.name:
            raise InvalidInput(
                f"the name of the object ({name}) does not match the name on the URL "
                f"({target.name})"
            )
    return body


def in_version(obj: dict[str, Any], target: ResourcePath) -> dict[str, Any]:
    """Objects are stored at the preferred version; a read through another path says its own."""
    if target.version != target.kind.preferred_version:
        obj = {**obj, "apiVersion": target.api_version}
    return obj


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
