"""Benchmark baseline (a): FastAPI verifying the same bearer token as Rekisteri (python-jose, HS256), no database.

The ceiling for any authenticated endpoint on this machine. Started by `bench/registrants_lookup.py`:

    .venv/bin/uvicorn --app-dir bench jwt_only_app:app --port 8101   (REKISTERI_JWT_SECRET as the service's)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException

from app.core import security
from app.core.config import Settings

settings = Settings()
app = FastAPI()


async def caller(authorization: Annotated[str, Header()] = "") -> str:
    """The token's subject, or 401."""
    scheme, _, token = authorization.partition(" ")
    try:
        return security.verify_token(settings, token).sub
    except security.TokenError as exc:
        raise HTTPException(401) from exc


@app.get("/v1/registrants")
async def registrants(subject: Annotated[str, Depends(caller)], email: str = "") -> dict:
    """An empty page, after the token check."""
    return {"items": [], "next_cursor": None}
