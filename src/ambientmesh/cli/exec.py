"""``ambientmesh exec [-n NS] POD -- CMD...``: run a command inside a pod; its exit code is ours.

The command runs the way the pod's containers do (`ip netns exec <pod-netns>`): in the pod's
network namespace, with its /etc/netns resolv.conf, the container's environment and working
directory, and this terminal as stdin/stdout/stderr. `deploy/NAME` picks a ready pod of the
Deployment.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from ambientmesh.cli.context import add_cluster_flag, add_namespace_flag, namespace_of
from ambientmesh.cli.output import CommandFailed

NETNS_ANNOTATION = "ambientmesh.io/netns"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "exec", help="run a command inside a pod", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="ambientmesh exec [-n NS] [-c CONTAINER] POD|deploy/NAME -- COMMAND [ARG...]",
    )  # fmt: skip
    parser.add_argument("target", metavar="POD", help="pod name, pod/NAME or deploy/NAME")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    parser.add_argument("-c", "--container", help="whose environment to use (default: first)")
    parser.add_argument("-i", "--stdin", action="store_true", help="accepted; stdin is passed")
    parser.add_argument("-t", "--tty", action="store_true", help="accepted; the terminal is passed")
    add_namespace_flag(parser)
    add_cluster_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ambientmesh.linux import netns
    from ambientmesh.runtime import cluster

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise CommandFailed(["you must give a command to run after --"], exit_code=2)
    if os.geteuid() != 0:
        raise CommandFailed(["ambientmesh exec needs root: it enters the pod's network namespace"])
    with cluster.client_for(args.cluster) as client:
        pod = cluster.fetch_pod(client, namespace_of(args), args.target)
    name = pod["metadata"]["name"]
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise CommandFailed([f"cannot exec into pod {name}: its phase is {phase}, not Running"])
    pod_netns = (pod["metadata"].get("annotations") or {}).get(NETNS_ANNOTATION)
    if not pod_netns or not netns.exists(pod_netns):
        raise CommandFailed([f"pod {name} has no network namespace on this host (yet)"])
    env, working_dir = _container_environment(pod, args.container)
    ip_tool = shutil.which("ip") or "ip"
    try:
        completed = subprocess.run(
            [ip_tool, "netns", "exec", pod_netns, *command], env=env, cwd=working_dir, check=False
        )
    except OSError as error:
        raise CommandFailed([f"cannot run {command[0]}: {error}"]) from error
    code = completed.returncode
    return 128 - code if code < 0 else code


def _container_environment(
    pod: Mapping[str, Any], wanted: str | None
) -> tuple[dict[str, str], str]:
    """The environment and working directory the kubelet gives the chosen container."""
    from ipaddress import IPv4Address

    from ambientmesh.runtime.podplan import DownwardFacts, plan_pod
    from ambientmesh.runtime.podref import container_name
    from ambientmesh.runtime.processes import ContainerSpec, PodContext, environment

    name, note = container_name(pod, wanted)
    if note is not None:
        print(note, file=sys.stderr)
    status = pod.get("status") or {}
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    ip = str(status.get("podIP") or "0.0.0.0")
    plan = plan_pod(
        pod, DownwardFacts(pod_ip=ip, host_ip=str(status.get("hostIP") or ""), node_name=node)
    )
    chosen = next(c for c in plan.containers if c.name == name)
    spec = chosen.spec or ContainerSpec(name=name, argv=("true",))
    context = PodContext(
        name=pod["metadata"]["name"],
        namespace=pod["metadata"].get("namespace") or "default",
        ip=IPv4Address(ip),
        node_name=node,
        netns="",
        service_account=plan.service_account,
    )
    env = environment(spec, context)
    if "TERM" in os.environ:
        env.setdefault("TERM", os.environ["TERM"])
    return env, spec.working_dir or "/"
