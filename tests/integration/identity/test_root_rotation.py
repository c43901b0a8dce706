"""Root rotation: during the overlap, leaves of the old and the new root talk in both directions."""

from __future__ import annotations

import pytest

from ambientmesh.identity import tls
from ambientmesh.testing.pki import TestPKI

from .handshake import ServerClosed, exchange


@pytest.mark.parametrize("new_has_intermediate", [False, True])
async def test_old_and_new_root_leaves_talk_both_ways_with_a_two_root_bundle(
    new_has_intermediate: bool,
) -> None:
    old, new = TestPKI(), TestPKI(intermediate=new_has_intermediate)
    bundle = old.roots_pem + new.roots_pem
    on_old, on_new = old.issue("ns/old-sa"), new.issue("ns/new-sa")

    old_to_new = await exchange(
        server_context=tls.server_context(on_new, bundle),
        client_context=tls.client_context(on_old, bundle),
        expected={on_new.identity},
    )
    assert (old_to_new.client, old_to_new.server) == (on_new.identity, on_old.identity)

    new_to_old = await exchange(
        server_context=tls.server_context(on_old, bundle),
        client_context=tls.client_context(on_new, bundle),
        expected={on_old.identity},
    )
    assert (new_to_old.client, new_to_old.server) == (on_old.identity, on_new.identity)


async def test_a_side_still_trusting_only_the_old_root_refuses_new_leaves() -> None:
    """Why the procedure distributes the bundle before any new-root leaf is issued."""
    old, new = TestPKI(), TestPKI()
    on_old, on_new = old.issue("ns/old-sa"), new.issue("ns/new-sa")
    outcome = await exchange(
        server_context=tls.server_context(on_old, old.roots_pem),
        client_context=tls.client_context(on_new, old.roots_pem + new.roots_pem),
        expected={on_old.identity},
    )
    assert isinstance(outcome.server, OSError)  # the server cannot verify the new leaf
    assert "certificate verify failed" in str(outcome.server)
    assert isinstance(outcome.client, ServerClosed)
