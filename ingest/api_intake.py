"""Reading a ``POST /v1/jobs`` request within its limits, and turning it into staged files.

The body limit is checked against ``Content-Length`` before anything is read, and again while the body
streams in (a chunked request has no length); the file count limit while the form is parsed. A path is
accepted only when, with every symlink resolved, it lies under the shared root.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

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
        body = b"".join([c async for c in _limited(request, limit)])
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
        parser = FormParser(request.headers, _limited(request, limit))
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


def _under_root(raw: str, root: Path) -> Path:
    candidate = Path(raw)
    full = candidate if candidate.is_absolute() else root / candidate
    real = Path(os.path.realpath(full))
    if not real.is_relative_to(root):
        raise RequestRejected(400, f"{raw}: path is outside the shared root {root}")
    if not real.exists():
        raise RequestRejected(400, f"{raw}: no such file under the shared root")
    return real


def resolve_paths(raw_paths: list[str], settings: IngestSettings) -> list[tuple[Path, str]]:
    """(real file, path as given) for every file named, folders expanded; 400 for anything outside."""
    if settings.shared_root is None:
        raise RequestRejected(400, "this server takes no paths: DOCSORT_SHARED_ROOT is not set")
    root = Path(os.path.realpath(settings.shared_root))
    files: list[tuple[Path, str]] = []
    for raw in raw_paths:
        real = _under_root(raw, root)
        if real.is_file():
            files.append((real, raw))
            continue
        for folder, dirs, names in os.walk(real):
            dirs[:] = sorted(d for d in dirs if not ignored_name(d))
            for name in sorted(names):
                if ignored_name(name):
                    continue
                inner = _under_root(os.path.join(folder, name), root)
                files.append((inner, str(Path(raw) / Path(folder).relative_to(real) / name)))
    return files


def _stage_shared(real: Path, given: str, area: Path, root: Path | None) -> Staged:
    """Copy a shared file, checking again, on the opened file itself, that it lies under the root
    (a path swapped for a symlink after it was checked is refused)."""
    try:
        fh = real.open("rb")
    except OSError as exc:
        raise IntakeError(f"{given}: cannot be read ({exc.strerror or exc})") from exc
    with fh:
        fd_link = Path(f"/proc/self/fd/{fh.fileno()}")  # Linux; elsewhere the checked path stands
        opened = Path(os.path.realpath(fd_link)) if fd_link.exists() else real
        if root is None or not opened.is_relative_to(root):
            raise RequestRejected(400, f"{given}: path is outside the shared root")
        return stage_copy_stream(fh, area, real.name, given)


def stage_all(
    job: JobInput, files: list[tuple[Path, str]], area: Path, settings: IngestSettings
) -> list[Staged]:
    """Copy every upload and named file into the processing area; on any failure none is left there."""
    staged: list[Staged] = []
    try:
        for upload in job.uploads:
            name = upload.filename or "upload"
            upload.file.seek(0)
            staged.append(
                stage_copy_stream(upload.file, area, name, name, limit=settings.api_max_upload_bytes)
            )
        root = Path(os.path.realpath(settings.shared_root)) if settings.shared_root else None
        for real, given in files:
            staged.append(_stage_shared(real, given, area, root))
    except IntakeError as exc:
        for item in staged:
            item.path.unlink(missing_ok=True)
        raise RequestRejected(413 if isinstance(exc, UploadTooLarge) else 400, str(exc)) from exc
    except BaseException:
        for item in staged:
            item.path.unlink(missing_ok=True)
        raise
    return staged
