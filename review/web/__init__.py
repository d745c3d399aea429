"""The operator web pages (login, review queue, item, dashboard), mounted by :func:`review.app.create_app`.

Every POST on this router must carry the session's CSRF token; every page but the login needs a
logged-in operator.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from review.web import auth, dashboard_page, grid_page, item_page, queue_page
from review.web.deps import check_form

router = APIRouter(tags=["review"], dependencies=[Depends(check_form)])
for _module in (auth, queue_page, grid_page, item_page, dashboard_page):
    router.include_router(_module.router)

__all__ = ["router"]
