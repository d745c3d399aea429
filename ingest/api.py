"""The jobs API for enterprise systems (``/v1/...``), mounted by :func:`docsort.serve.create_app`.

Every route needs an API key (``X-API-Key: <key>`` or ``Authorization: Bearer <key>``; made by
``docsort apikey create NAME``). A client sees its own jobs, and the documents those jobs brought, as
they brought them: the same bytes sent by another client show this client's name, source and time.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ingest.api_intake import JobInput, JobRequest, RequestRejected, read_job_input, resolve_paths, stage_all
from ingest.api_keys import authenticate
from ingest.intake import Intake, IntakeResult, NotRecorded
from ingest.results import DocumentOutcome, JobResult, document_result, job_result
from ingest.sender import CelerySender
from ingest.settings import IngestSettings, ingest_settings_from
from ingest.staging import IntakeError
from schema.db import session_scope
from schema.enums import Source
from schema.logs import get_logger
from schema.tables import ApiClient, Receipt, SubmissionJob

log = get_logger(__name__)
router = APIRouter(prefix="/v1", tags=["jobs"])

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")
_bearer = HTTPBearer(auto_error=False, description="The API key as a bearer token.")


class ClientIdentity(BaseModel):
    id: int
    name: str


class AcceptedDocument(BaseModel):
    document_id: int
    filename: str
    source_ref: str
    duplicate: bool


class JobAccepted(BaseModel):
    job_id: str
    state: str
    n_documents: int
    n_duplicate: int
    documents: list[AcceptedDocument]
    status_url: str


def _settings(request: Request) -> IngestSettings:
    state = request.app.state
    if getattr(state, "ingest_settings", None) is None:
        state.ingest_settings = ingest_settings_from(state.settings)
    settings: IngestSettings = state.ingest_settings
    return settings


def _sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


def _intake(request: Request) -> Intake:
    state = request.app.state
    if getattr(state, "ingest_intake", None) is None:
        settings = _settings(request)
        state.ingest_intake = Intake(
            settings, _sessions(request), CelerySender(settings.broker_url, settings.job_queue)
        )
    intake: Intake = state.ingest_intake
    return intake


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="docsort"'})


def api_client(
    request: Request,
    api_key: Annotated[str | None, Depends(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> ClientIdentity:
    """The calling client, from its key; 401 without a valid key."""
    key = api_key or (bearer.credentials if bearer else None)
    if not key:
        raise _unauthorized("an API key is required (X-API-Key or Authorization: Bearer)")
    with session_scope(_sessions(request)) as session:
        client: ApiClient | None = authenticate(session, key)
        if client is None:
            raise _unauthorized("the API key is not valid")
        return ClientIdentity(id=client.id, name=client.name)


Client = Annotated[ClientIdentity, Depends(api_client)]

_JOB_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "paths": {"type": "array", "items": {"type": "string"}},
                        "callback_url": {"type": "string"},
                        "split": {"type": "string"},
                    },
                }
            },
            "application/json": {"schema": JobRequest.model_json_schema()},
        },
    }
}


def _accepted(result: IntakeResult) -> JobAccepted:
    return JobAccepted(
        job_id=result.job_id,
        state="done" if result.n_new == 0 else "queued",
        n_documents=len(result.arrivals),
        n_duplicate=result.n_duplicate,
        documents=[
            AcceptedDocument(
                document_id=a.document_id, filename=a.filename, source_ref=a.source_ref, duplicate=a.duplicate
            )
            for a in result.arrivals
        ],
        status_url=f"/v1/jobs/{result.job_id}",
    )


def _submit(job: JobInput, intake: Intake, client: ClientIdentity) -> IntakeResult:
    settings = intake.settings
    files = resolve_paths(job.paths, settings) if job.paths else []
    total = len(job.uploads) + len(files)
    if total == 0:
        raise RequestRejected(400, "no files: send `files` (multipart) or `paths`")
    if total > settings.api_max_files:
        raise RequestRejected(
            413, f"{total} files is more than the limit of {settings.api_max_files} per job"
        )
    staged = stage_all(job, files, intake.area("api"), settings)
    try:
        return intake.take(
            staged,
            source=Source.api,
            submitted_by=client.name,
            client_id=client.id,
            callback_url=job.callback_url,
            split=job.split,
        )
    except NotRecorded:
        for item in staged:
            item.path.unlink(missing_ok=True)
        raise


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobAccepted,
    summary="Submit files (multipart upload) or paths under the shared root as one job",
    responses={400: {}, 401: {}, 413: {}, 415: {}, 503: {}},
    openapi_extra=_JOB_BODY,
)
async def create_job(request: Request, client: Client) -> JobAccepted:
    settings = _settings(request)
    intake = _intake(request)
    try:
        job = await read_job_input(request, settings)
        result = await run_in_threadpool(_submit, job, intake, client)
    except RequestRejected as exc:
        raise HTTPException(exc.status, exc.detail) from exc
    except IntakeError as exc:
        log.error("job not sent", client=client.name, error=str(exc))
        raise HTTPException(503, str(exc)) from exc
    log.info("api job", client=client.name, job_id=result.job_id, files=len(result.arrivals))
    return _accepted(result)


@router.get("/jobs/{job_id}", response_model=JobResult, summary="A job's state and every page's outcome")
def get_job(job_id: str, request: Request, client: Client) -> JobResult:
    with session_scope(_sessions(request)) as session:
        job = session.get(SubmissionJob, job_id)
        if job is None or job.client_id != client.id:
            raise HTTPException(404, f"no job {job_id} for this client")
        result = job_result(session, job_id)
        assert result is not None
        return result


@router.get(
    "/documents/{document_id}", response_model=DocumentOutcome, summary="A document and its pages' outcomes"
)
def get_document(document_id: int, request: Request, client: Client) -> DocumentOutcome:
    with session_scope(_sessions(request)) as session:
        receipt = session.scalar(
            select(Receipt)
            .join(SubmissionJob, Receipt.job_id == SubmissionJob.id)
            .where(Receipt.document_id == document_id, SubmissionJob.client_id == client.id)
            .order_by(Receipt.id)
            .limit(1)
        )
        outcome = document_result(session, document_id, receipt) if receipt is not None else None
        if outcome is None:
            raise HTTPException(404, f"no document {document_id} for this client")
        return outcome
