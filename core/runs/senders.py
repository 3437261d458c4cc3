"""The "send one rollout" seam: how one job becomes messages, a final reply and per-step figures.

A run plans its jobs, claims itself, then for every job picks a `RolloutSender`, awaits `send(job, seed)`,
scores the reply and writes it (see `execution`). What happens between the prompt and the final reply is the
sender's business and nothing else's:

- `SingleCallSender` — one chat completion (a task without tools; the behaviour of every run before tools).
- `agent_loop.AgentLoopSender` — a task with tools: model → tool calls → results → model … until a reply
  without calls or the turn limit, native function calling or the Hermes text protocol.

A sender never raises for a failed model call: the failure comes back in `Sent.error`, with whatever steps
came before it. Senders are registered (`register_sender(name, applies, make)`): the first whose `applies(job)`
is true sends the job, one instance per run made from the run's `SendContext`; the single-call sender takes
whatever no other claims. A new way to send (a recorded replay, say) is one module with a class that has
`send`, plus its `register_sender` line and its import in `execution`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from lessonlab.core.models import llm_client
from lessonlab.core.runs.jobs import RolloutJob
from lessonlab.core.runs.trajectory import StepFigures


@dataclass
class Sent:
    """What sending one rollout produced: messages before the final reply, the reply (or error) and the steps."""

    messages: list[dict]
    result: llm_client.ChatResult | None            # the final reply; tokens, latency and attempts summed over steps
    error: llm_client.ModelCallError | None
    figures: list[StepFigures] = field(default_factory=list)   # one per model call (empty: a single call)
    tool_mode: str | None = None                     # native | hermes for an agent loop
    tool_state: Any = None                           # the tools' final state, given to the verifier
    stopped_at_limit: int | None = None              # the turn limit, when the rollout was stopped by it


class RolloutSender(Protocol):
    """Turns one job into a `Sent`; never raises for a failed model call."""

    async def send(self, job: RolloutJob, seed: int) -> Sent:
        """Send the job's rollout with this sample's seed."""
        ...


class SingleCallSender:
    """One chat completion per rollout: the job's messages in, the reply out."""

    def __init__(self, client, model: str, params: dict, retry: llm_client.RetryPolicy):
        self.client, self.model, self.params, self.retry = client, model, params, retry

    async def send(self, job: RolloutJob, seed: int) -> Sent:
        """One call with retries (llm_client); the error, if any, is returned, not raised."""
        try:
            result = await llm_client.chat(self.client, self.model, job.messages, {**self.params, "seed": seed},
                                           retry=self.retry)
        except llm_client.ModelCallError as exc:
            return Sent(job.messages, None, exc)
        return Sent(job.messages, result, None)


@dataclass
class SendContext:
    """What a run gives its senders: the client and request settings, the workspace, the worker pool, trust."""

    client: Any
    model: str
    params: dict
    retry: llm_client.RetryPolicy
    ws: Any
    endpoint: Any
    pool: Any
    trust: bool
    toolboxes: Callable | None = None


SenderFactory = Callable[[SendContext], RolloutSender]
_SENDERS: list[tuple[str, Callable[[RolloutJob], bool], SenderFactory]] = []


def register_sender(name: str, applies: Callable[[RolloutJob], bool], make: SenderFactory) -> None:
    """Add a way to send rollouts, used for every job where `applies(job)` is true (first registered first)."""
    _SENDERS.append((name, applies, make))


def sender_kind(job: RolloutJob) -> tuple[str, SenderFactory]:
    """The name and factory of the sender for this job (the single call when no other applies)."""
    for name, applies, make in _SENDERS:
        if applies(job):
            return name, make
    return "single_call", lambda ctx: SingleCallSender(ctx.client, ctx.model, ctx.params, ctx.retry)
