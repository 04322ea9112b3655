"""Deriving the current consent state from the ledger: one pure function, used everywhere."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Action(StrEnum):
    """What a ledger event says."""

    grant = "grant"
    withdraw = "withdraw"
    object = "object"


class State(StrEnum):
    """Where a purpose and channel stand for one person."""

    granted = "granted"
    withdrawn = "withdrawn"
    objected = "objected"
    none = "none"


_STATE_OF = {Action.grant: State.granted, Action.withdraw: State.withdrawn, Action.object: State.objected}


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """The parts of a ledger event that decide state."""

    id: uuid.UUID
    seq: int
    purpose: str
    channel: str | None
    action: Action
    effective_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """The state of one purpose and channel, and the event that decided it."""

    state: State
    event_id: uuid.UUID | None


def derive(
    events: Iterable[LedgerEvent],
    *,
    channels: Mapping[str, Iterable[str]],
    direct_marketing: frozenset[str] = frozenset(),
) -> dict[tuple[str, str], Decision]:
    """Replay events in the order they took effect; the latest event for a purpose and channel wins.

    An event without a channel covers every channel of its purpose. An objection to a direct-marketing
    purpose, on any channel, covers every direct-marketing purpose on every channel (GDPR Art. 21(3)); a later explicit
    grant for one of them is a new decision of the person and counts from then on.
    """
    decided: dict[tuple[str, str], Decision] = {}
    for event in sorted(events, key=lambda e: (e.effective_at, e.seq)):
        absolute = event.action is Action.object and event.purpose in direct_marketing
        for purpose in sorted(direct_marketing) if absolute else [event.purpose]:
            covered = [event.channel] if event.channel and not absolute else list(channels.get(purpose, ()))
            for channel in covered:
                decided[(purpose, channel)] = Decision(_STATE_OF[event.action], event.id)
    return decided
