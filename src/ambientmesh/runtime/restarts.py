"""When a container is started again after it exits, and how long to wait first; pure.

Kubernetes' rules: `Always` restarts after any exit, `OnFailure` after a non-zero exit,
`Never` not at all. The delay starts at 10 s and doubles per restart up to 5 minutes, and is
forgotten once a run lasted 10 minutes (kubelet's CrashLoopBackOff).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ambientmesh.errors import InvalidInput


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Delays between restarts; tests shorten them."""

    initial: float = 10.0
    maximum: float = 300.0
    reset_after: float = 600.0  # a run at least this long forgets earlier crashes

    def __post_init__(self) -> None:
        if not 0 <= self.initial <= self.maximum:
            raise InvalidInput(
                f"backoff needs 0 <= initial ({self.initial}) <= maximum ({self.maximum})"
            )

    def next_delay(self, previous: float | None, ran_for: float) -> float:
        """The wait before the next start, given the last wait (None: none yet) and the run time."""
        if previous is None or ran_for >= self.reset_after:
            return self.initial
        return min(max(previous * 2, self.initial), self.maximum)
