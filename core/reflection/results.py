"""What a reflection returns (ReflectionResult) and raises when it cannot start (ReflectionError)."""
from __future__ import annotations

from dataclasses import dataclass, field

from lessonlab.core.errors import BadInput


class ReflectionError(BadInput, ValueError):
    """A reflection that cannot start: nothing to reflect on, unknown ids, bad arguments."""


@dataclass
class ReflectionResult:
    """What one reflection (or distill) stored."""

    reflection_id: str
    kind: str
    status: str                       # ok | failed
    error: str | None
    analysis: str | None
    proposal_ids: list[str] = field(default_factory=list)
    n_pending: int = 0
    n_invalid: int = 0
    n_included: int = 0               # rollouts in the context
    n_omitted: int = 0                # rollouts left out (held-out, failed calls, budget)
    tokens_before: int | None = None  # distill: estimated lesson tokens now
    tokens_after: int | None = None   # distill: estimate if every pending proposal were accepted
    response_mode: str | None = None  # json_schema | json_object_schema | text: the mode of the answered request

    def to_dict(self) -> dict:
        """The fields as a plain dict (for --json output)."""
        return dict(self.__dict__)
