"""The bundled examples come up from nothing and serve what their comments promise."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.namespaced.runtime_e2e.localcluster import LocalCluster, local_cluster

pytestmark = [pytest.mark.root, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_quickstart_and_bookinfo_come_up_and_answer(root: Path) -> None:
    with local_cluster(root, "x") as cluster:
        # Mesh by default: with a ztunnel when this build has one, as a user would get it.
        result = cluster.cli("up", "--name", cluster.name, "-f", str(EXAMPLES), "--timeout", "90")
        assert result.code == 0, result.err + result.out
        seconds = float(re.search(r"is up \(([\d.]+) s\)", result.out).group(1))  # type: ignore[union-attr]
        assert seconds < 60
        _check_quickstart(cluster)
        _check_bookinfo(cluster)


def _check_quickstart(cluster: LocalCluster) -> None:
    answer = cluster.exec(
        "deploy/client", "curl", "-sS", "-m", "5", "http://echo/", namespace="demo"
    )
    assert answer.code == 0, answer.err
    assert re.search(r"^pod: echo-\w+-\w+$", answer.out, re.MULTILINE)
    client = next(
        p for p in cluster.list("pod", "demo") if p["metadata"]["name"].startswith("client-")
    )
    assert f"client: {client['status']['podIP']}:" in answer.out
    _check_readme_line(cluster)


def _check_readme_line(cluster: LocalCluster) -> None:
    """README's second main command, run as written: the echo answer and mTLS in the metrics."""
    readme = (EXAMPLES.parent / "README.md").read_text()
    line = next(
        text for text in readme.splitlines() if text.startswith("ambientmesh exec -n demo ")
    )
    argv = shlex.split(line)
    command = argv[argv.index("--") + 1 :]
    answer = cluster.exec("deploy/client", *command, namespace="demo")
    assert answer.code == 0, answer.err
    assert re.search(r"^pod: echo-", answer.out, re.MULTILINE)
    assert 'connection_security_policy="mutual_tls"' in answer.out
    assert 'source_principal="spiffe://cluster.local/ns/demo/sa/client"' in answer.out


def _check_bookinfo(cluster: LocalCluster) -> None:
    versions: set[str] = set()
    for _ in range(30):  # each request picks a version at random: both show up within a few
        page = cluster.exec("deploy/productpage", "curl", "-sS", "-m", "5", "http://productpage:9080/",
                            namespace="bookinfo")  # fmt: skip
        assert page.code == 0, page.err
        assert page.out.startswith("The Comedy of Errors by William Shakespeare (1594)")
        assert re.search(r"details: +details-", page.out)
        versions |= set(re.findall(r"\((v1|v2)\)", page.out))
        if "(v2)" in page.out:
            assert "Ada: Two pairs of twins and not one dull scene.  *****" in page.out
        if versions == {"v1", "v2"}:
            break
    assert versions == {"v1", "v2"}  # the reviews Service balances over both versions
