"""The /v1 router: each domain's router, included once."""

from __future__ import annotations

from fastapi import APIRouter

from app.audit.router import router as audit_router
from app.auth.router import auth_router, clients_router, users_router
from app.consents.router import router as consents_router
from app.register.router import router as register_router
from app.registrants.router import router as registrants_router
from app.registrants.router import stats_router
from app.subject_requests.router import router as requests_router
from app.subject_requests.router import stats_router as request_stats_router
from app.waitlist.router import router as waitlist_router
from app.waitlist.router import stats_router as waitlist_stats_router

router = APIRouter(prefix="/v1")
router.include_router(auth_router)
router.include_router(users_router)
router.include_router(clients_router)
router.include_router(audit_router)
router.include_router(register_router)
router.include_router(registrants_router)
router.include_router(consents_router)
router.include_router(requests_router)
router.include_router(stats_router)
router.include_router(request_stats_router)
router.include_router(waitlist_router)
router.include_router(waitlist_stats_router)
