"""State names stored in the database. Stored as strings so SQLite and PostgreSQL agree."""

from enum import StrEnum


class DocumentState(StrEnum):
    received = "received"
    processing = "processing"
    done = "done"
    failed = "failed"


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class DecisionKind(StrEnum):
    auto = "auto"
    review = "review"
    failed = "failed"


class DecisionOrigin(StrEnum):
    model = "model"
    operator = "operator"


class ReviewAction(StrEnum):
    confirm = "confirm"
    relabel = "relabel"
    reject = "reject"


class DocumentAction(StrEnum):
    """An operator's answer on a whole document under review."""

    confirm = "confirm"  # one document, the model's class
    relabel = "relabel"  # one document, another class
    split_up = "split"  # several documents, each with a class or rejected
    reject = "reject"  # one document, rejected as unreadable


class Source(StrEnum):
    watch = "watch"
    api = "api"
    submit = "submit"
    celery = "celery"
    classify = "classify"


class PageRole(StrEnum):
    """What a page of a source file is: part of a document, or a page dropped when documents were
    separated (a separator sheet, a blank page)."""

    content = "content"
    separator = "separator"
    blank = "blank"
