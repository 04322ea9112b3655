"""Base classes for request and response schemas."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body: unknown fields are refused, so mass assignment fails loudly; numbers are finite."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


class ResponseModel(BaseModel):
    """A response body, readable from ORM objects."""

    model_config = ConfigDict(from_attributes=True)
