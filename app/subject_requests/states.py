"""The kinds and states of a data-subject request, and its one transition table."""

from __future__ import annotations

from enum import StrEnum


class RequestType(StrEnum):
    """Which right the person uses."""

    access = "access"
    rectification = "rectification"
    erasure = "erasure"
    restriction = "restriction"
    portability = "portability"
    objection = "objection"


class RequestStatus(StrEnum):
    """Where a request is in its lifecycle."""

    received = "received"
    verified = "verified"
    in_progress = "in_progress"
    completed = "completed"
    rejected = "rejected"
    withdrawn = "withdrawn"


class RequestAction(StrEnum):
    """What `POST /v1/requests/{id}/transitions` may be told to do (`file` is the first event, not a transition)."""

    file = "file"
    verify = "verify"
    link = "link"
    start = "start"
    extend = "extend"
    complete = "complete"
    reject = "reject"
    withdraw = "withdraw"
    lift_restriction = "lift_restriction"
    send_confirmation = "send_confirmation"  # a one-time link to a contact already in the register
    confirm = "confirm"  # the person followed that link (logged, not a transition staff may ask for)


S, A = RequestStatus, RequestAction


def _open(status: RequestStatus, forward: RequestAction, to: RequestStatus) -> dict[RequestAction, RequestStatus]:
    """An open status: its one step forward; `link` and `extend` keep it; `reject` and `withdraw` close it."""
    return {forward: to, A.link: status, A.extend: status, A.reject: S.rejected, A.withdraw: S.withdrawn}


# Each status, the actions it allows, and the status each action leads to.
TRANSITIONS: dict[RequestStatus, dict[RequestAction, RequestStatus]] = {
    S.received: {A.verify: S.verified, A.send_confirmation: S.received,
                 **{a: s for a, s in _open(S.received, A.verify, S.verified).items() if a != A.verify}},
    S.verified: _open(S.verified, A.start, S.in_progress),
    S.in_progress: _open(S.in_progress, A.complete, S.completed),
    S.completed: {A.lift_restriction: S.completed},
    S.rejected: {},
    S.withdrawn: {},
}
# Open: the request can still be withdrawn (and is counted against its deadline).
OPEN_STATUSES = tuple(status for status, actions in TRANSITIONS.items() if A.withdraw in actions)
# Requests whose completion freezes a package to download.
PACKAGE_TYPES = (RequestType.access, RequestType.portability)
