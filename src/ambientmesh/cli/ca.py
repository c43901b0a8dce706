"""``ambientmesh ca status``: the cluster's certificate authority as the control plane sees it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, Protocol

from ambientmesh.cli.context import add_cluster_flag
from ambientmesh.cli.output import CommandFailed

# Served by ambientmesh.controlplane.ca_service (not imported: it pulls in gRPC).
CA_STATUS_PATH = "/apis/ambientmesh.io/v1/ca/status"


class Requester(Protocol):
    """The part of the API client this command uses: a request returning decoded JSON."""

    def request(self, method: str, path: str) -> Any: ...


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("ca", help="inspect the certificate authority")
    commands = parser.add_subparsers(dest="ca_command", metavar="COMMAND", required=True)
    status = commands.add_parser(
        "status",
        help="root fingerprint, expiry, trust domain and certificates issued",
        description="Show the cluster's certificate authority, as served by the control plane.",
    )
    add_cluster_flag(status)
    status.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text")
    status.set_defaults(run=run_status)


def run_status(args: argparse.Namespace, *, client: Requester | None = None) -> int:
    if client is None:
        from ambientmesh.apiserver.client import ApiClient

        with ApiClient.for_cluster(args.cluster) as api:
            return run_status(args, client=api)
    body = client.request("GET", CA_STATUS_PATH)
    if not isinstance(body, Mapping):
        raise CommandFailed([f"the API server answered {CA_STATUS_PATH} with no JSON object"])
    if args.output == "json":
        print(json.dumps(body, indent=2))
    elif args.output == "yaml":
        import yaml

        print(yaml.safe_dump(dict(body), sort_keys=False), end="")
    else:
        print(format_status(body))
    return 0


def format_status(body: Mapping[str, Any]) -> str:
    """The text form: one ``label: value`` line per fact, then every trusted root if the
    bundle holds more than one (a root rotation is under way)."""
    try:
        lines, bundle = _status_lines(body), body.get("trustBundle", [])
        width = max(len(label) for label, _ in lines) + 2
        text = [f"{label + ':':<{width}}{value}" for label, value in lines]
        if len(bundle) > 1:
            text.append(f"{'Trusted roots:':<{width}}{len(bundle)}")
            text += [
                f"  - SHA256 {root['fingerprintSHA256']} {root['subject']}, "
                f"expires {root['notAfter']}"
                for root in bundle
            ]
    except (KeyError, TypeError, AttributeError) as error:
        raise CommandFailed([f"unexpected CA status from the API server: {error!r}"]) from None
    return "\n".join(text)


def _status_lines(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    root, signer = body["root"], body["signingCertificate"]
    lines = [
        ("Trust domain", body["trustDomain"]),
        ("CA", body["source"]),
        ("Root fingerprint", f"SHA256 {root['fingerprintSHA256']}"),
        ("Root subject", root["subject"]),
        ("Root expires", root["notAfter"]),
    ]
    if signer["fingerprintSHA256"] != root["fingerprintSHA256"]:
        lines += [("Signing CA", signer["subject"]), ("Signing CA expires", signer["notAfter"])]
    lines.append(("Certificates issued", str(body["certificatesIssued"])))
    return lines
