"""When a container is started again after it exits, and how long to wait first; pure.

Kubernetes' rules: `Always` restarts after any exit, `OnFailure` after a non-zero exit,
`Never` not at all. The delay starts at 10 s and doubles per restart up to 5 minutes, and is
forgotten once a run lasted 10 minutes (kubelet's CrashLoopBackOff).
"""

from __future__ import annotations

from enum import StrEnum

from ambientmesh.backoff import Backoff
from ambientmesh.errors import InvalidInput

# Kubelet's delays between restarts, without jitter; `--restart-backoff` and tests pick others.
KUBELET_BACKOFF = Backoff(initial=10.0, maximum=300.0)
RESET_AFTER = 600.0  # a run at least this long forgets earlier crashes


class RestartPolicy(StrEnum):
    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"

    @classmethod
    def parse(cls, text: str) -> RestartPolicy:
        try:
            return cls(text)
        except ValueError:
            choices = ", ".join(policy.value for policy in cls)
            raise InvalidInput(f"restartPolicy {text!r} is not one of {choices}") from None


def should_restart(policy: RestartPolicy, exit_code: int) -> bool:
    if policy is RestartPolicy.ALWAYS:
        return True
    if policy is RestartPolicy.ON_FAILURE:
        return exit_code != 0
    return False


def restart_delay(backoff: Backoff, previous: float | None, ran_for: float) -> float:
    """The wait before the next start, given the last wait (None: none yet) and the run time."""
    return backoff.after(None if ran_for >= RESET_AFTER else previous)
