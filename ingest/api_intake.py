"""Reading a ``POST /v1/jobs`` request within its limits, and turning it into staged files.

The body limit is checked against ``Content-Length`` before anything is read, and again while the body
streams in (a chunked request has no length); a JSON or form body has its own, smaller limit. The file
count limit applies while the form is parsed and while folders are walked. A path is accepted only when,
with every symlink resolved, it lies under the shared root, and it is read only as a regular file
(:mod:`ingest.paths`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

from ingest.paths import PathRefused, open_regular, real_roots, resolve_under, walk_regular
from ingest.settings import IngestSettings
from ingest.staging import IntakeError, Staged, UploadTooLarge, stage_copy_stream
from ingest.watch import ignored_name
from schema.split import canonical_split


class RequestRejected(Exception):
    """A request the API refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class JobRequest(BaseModel):
    """JSON body of ``POST /v1/jobs``: files already on the shared storage."""

    paths: list[str] = Field(
        min_length=1, description="Files or folders, absolute or relative to the shared root."
    )
    callback_url: str | None = Field(None, description="POSTed the job's result, signed, when it ends.")
    split: str | None = Field(
        None,
        description="Separation rules: none, blank, barcode, class, pages:N, drop-blank (comma-separated).",
    )

    _split = field_validator("split")(lambda v: canonical_split(v))

    @field_validator("callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return checked_callback(value)


def checked_callback(value: str | None) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("callback_url must be an http:// or https:// URL")
    if value and len(value) > 2000:
        raise ValueError("callback_url is longer than 2000 characters")
    return value or None


@dataclass
class JobInput:
    uploads: list[UploadFile] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    callback_url: str | None = None
    split: str | None = None


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise RequestRejected(413, f"request body is larger than the limit of {limit} bytes")
        yield chunk


def _check_length(request: Request, limit: int) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise RequestRejected(
            413, f"request body of {length} bytes is larger than the limit of {limit} bytes"
        )


async def read_job_input(request: Request, settings: IngestSettings) -> JobInput:
    """The uploads, paths and callback URL of a request, or :class:`RequestRejected`."""
    limit = settings.api_max_upload_bytes
    _check_length(request, limit)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        _check_length(request, settings.api_max_json_bytes)
        body = b"".join([c async for c in _limited(request, settings.api_max_json_bytes)])
        try:
            parsed = JobRequest.model_validate_json(body)
        except ValidationError as exc:
            raise RequestRejected(422, f"invalid JSON body: {exc.errors(include_url=False)}") from exc
        return JobInput(paths=parsed.paths, callback_url=parsed.callback_url, split=parsed.split)
    if ctype.startswith("multipart/form-data"):
        parser: MultiPartParser | FormParser = MultiPartParser(
            request.headers,
            _limited(request, limit),
            max_files=settings.api_max_files,
            max_fields=settings.api_max_files + 10,
            max_part_size=64 * 1024,
        )
    elif ctype.startswith("application/x-www-form-urlencoded"):
        _check_length(request, settings.api_max_json_bytes)
        parser = FormParser(request.headers, _limited(request, settings.api_max_json_bytes))
    else:
        raise RequestRejected(415, "send multipart/form-data (files), or JSON or a form with `paths`")
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        status = 413 if exc.message.startswith("Too many files") else 400
        raise RequestRejected(status, exc.message) from exc
    uploads = [v for _k, v in form.multi_items() if isinstance(v, UploadFile)]
    paths = [v for v in form.getlist("paths") if isinstance(v, str) and v]
    callback = form.get("callback_url")
    split = form.get("split")
    try:
        callback_url = checked_callback(callback if isinstance(callback, str) else None)
        rules = canonical_split(split if isinstance(split, str) else None)
    except ValueError as exc:
        raise RequestRejected(422, str(exc)) from exc
    return JobInput(uploads=uploads, paths=paths, callback_url=callback_url, split=rules)


def resolve_paths(raw_paths: list[str], settings: IngestSettings) -> list[tuple[Path, str]]:
    """(real file, path as given) for every file named, folders expanded (never following a link, and
    stopping once there are more than ``api_max_files``); 400 for anything outside the shared root, a
    link, a FIFO or a device, 413 for too many files."""
    if settings.shared_root is None:
        raise RequestRejected(400, "this server takes no paths: DOCSORT_SHARED_ROOT is not set")
    roots = real_roots([settings.shared_root])
    limit = settings.api_max_files
    files: list[tuple[Path, str]] = []
    try:
        for raw in raw_paths:
            real = resolve_under(raw, roots, base=roots[0], what="the shared root")
            if real.is_dir():
                for inner in walk_regular(real, ignored_name, limit - len(files)):
                    files.append((inner, str(Path(raw) / inner.relative_to(real))))
            elif real.exists() or real.is_symlink():
                files.append((real, raw))
            else:
                raise PathRefused(raw, "no such file under the shared root")
            if len(files) > limit:
                raise RequestRejected(413, f"more than the limit of {limit} files per job")
    except PathRefused as exc:
        status = 413 if exc.reason.startswith("holds more than the limit") else 400
        raise RequestRejected(status, str(exc)) from exc
    return files


def _stage_shared(real: Path, given: str, area: Path, settings: IngestSettings) -> Staged:
    """Copy a shared file: opened without following a link, checked on the descriptor (a regular file,
    under the shared root, within the size limit)."""
    roots = [settings.shared_root] if settings.shared_root else []
    with open_regular(real, roots, settings.max_file_bytes, shown=given) as (fh, _st):
        return stage_copy_stream(fh, area, real.name, given, limit=settings.max_file_bytes)


def stage_all(
    job: JobInput, files: list[tuple[Path, str]], area: Path, settings: IngestSettings
) -> list[Staged]:
    """Copy every upload and named file into the processing area; on any failure none is left there."""
    staged: list[Staged] = []
    try:
        for upload in job.uploads:
            name = upload.filename or "upload"
            upload.file.seek(0)
            limit = min(settings.api_max_upload_bytes, settings.max_file_bytes)
            staged.append(stage_copy_stream(upload.file, area, name, name, limit=limit))
        for real, given in files:
            staged.append(_stage_shared(real, given, area, settings))
    except IntakeError as exc:
        for item in staged:
            item.path.unlink(missing_ok=True)
        too_large = isinstance(exc, UploadTooLarge) or "larger than the limit" in str(exc)
        raise RequestRejected(413 if too_large else 400, str(exc)) from exc
    except BaseException:
        for item in staged:
            item.path.unlink(missing_ok=True)
        raise
    return staged
