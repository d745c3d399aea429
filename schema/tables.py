"""SQLAlchemy 2.0 tables. Every change here needs an Alembic migration (``schema/migrations``)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from schema.enums import (
    DecisionKind,
    DecisionOrigin,
    DocumentAction,
    DocumentState,
    JobState,
    PageRole,
    ReviewAction,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enum(cls: type, name: str) -> Enum:
    # Stored as VARCHAR with a CHECK constraint: portable between SQLite and PostgreSQL.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class ApiClient(Base):
    """A system allowed to call the jobs API. Only a hash of its key is kept."""

    __tablename__ = "api_clients"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    secret_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class CrashCount(Base):
    """Attempts that never ended, by key (``decode:<sha256>``, ``run:<task id>:<retry>``): a process
    that died while holding the key left its count behind. Kept in the database so that every broker
    has the guard."""

    __tablename__ = "crash_counts"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Operator(Base):
    """A person who reviews pages. Only a hash of the password is kept."""

    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OperatorSession(Base):
    """One login of an operator. The cookie carries a random token; only its sha256 is kept here.

    Logging out deletes the row; a new password or a disabled account deletes all of the operator's.
    """

    __tablename__ = "operator_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LoginOutcome(enum.StrEnum):
    pending = "pending"  # the password is being checked
    failed = "failed"
    ok = "ok"
    locked = "locked"  # refused unchecked: the account or the address was locked out


class LoginAttempt(Base):
    """One try at the login form, kept while it can still count towards a lockout (login throttling)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_name_at", "name", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[LoginOutcome] = mapped_column(_enum(LoginOutcome, "login_outcome"))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class SubmissionJob(Base):
    """One batch submitted through the API, `docsort submit`, or a watch folder."""

    __tablename__ = "submission_jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    submitted_by: Mapped[str] = mapped_column(String(100))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id"))
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    callback_state: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[JobState] = mapped_column(_enum(JobState, "job_state"), default=JobState.queued)
    n_documents: Mapped[int] = mapped_column(Integer, default=0)
    n_pages: Mapped[int] = mapped_column(Integer, default=0)
    n_auto: Mapped[int] = mapped_column(Integer, default=0)
    n_review: Mapped[int] = mapped_column(Integer, default=0)
    n_failed: Mapped[int] = mapped_column(Integer, default=0)
    n_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ModelVersion(Base):
    """A model folder known to the database; exactly one version per name is active at a time."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(2000))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None]


class Document(Base):
    """A file's content, known by its sha256: the same bytes are one document however often they arrive."""

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(32))
    source_ref: Mapped[str] = mapped_column(String(2000), default="")
    filename: Mapped[str] = mapped_column(String(1000), default="")
    media_type: Mapped[str | None] = mapped_column(String(100))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    page_count: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[DocumentState] = mapped_column(
        _enum(DocumentState, "document_state"), default=DocumentState.received, index=True
    )
    error: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("submission_jobs.id"), index=True)
    stored_path: Mapped[str | None] = mapped_column(String(2000))
    split: Mapped[str | None] = mapped_column(String(100))  # separation rules its door chose; None: default
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    pages: Mapped[list[Page]] = relationship(back_populates="document", order_by="Page.page_number")
    outputs: Mapped[list[OutputDocument]] = relationship(
        back_populates="document", order_by="OutputDocument.seq"
    )


class Receipt(Base):
    """Every arrival of a file, including repeats of content already seen (``duplicate``)."""

    __tablename__ = "receipts"
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("submission_jobs.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    source_ref: Mapped[str] = mapped_column(String(2000), default="")
    duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Page(Base):
    __tablename__ = "pages"
    __table_args__ = (
        UniqueConstraint("document_id", "page_number", name="uq_pages_document_page"),
        CheckConstraint("page_number >= 1", name="page_number_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    page_number: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    image_path: Mapped[str | None] = mapped_column(String(2000))
    role: Mapped[PageRole] = mapped_column(
        _enum(PageRole, "page_role"), default=PageRole.content, server_default=PageRole.content.value
    )

    document: Mapped[Document] = relationship(back_populates="pages")
    predictions: Mapped[list[Prediction]] = relationship(back_populates="page")


class Prediction(Base):
    """What one model version said of one page. One per page and model version."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("page_id", "model_name", "model_version", name="uq_predictions_page_model"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"), index=True)
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float)
    margin: Mapped[float] = mapped_column(Float, default=0.0)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    worker: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    page: Mapped[Page] = relationship(back_populates="predictions")
    decisions: Mapped[list[RoutingDecision]] = relationship(back_populates="prediction")


class RoutingDecision(Base):
    """Where a page went and why: automatically, to review, or failed (then with no prediction)."""

    __tablename__ = "routing_decisions"
    __table_args__ = (
        UniqueConstraint("prediction_id", "origin", name="uq_routing_decisions_prediction_origin"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    page_id: Mapped[int | None] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"))
    prediction_id: Mapped[int | None] = mapped_column(
        ForeignKey("predictions.id", ondelete="CASCADE"), index=True
    )
    origin: Mapped[DecisionOrigin] = mapped_column(
        _enum(DecisionOrigin, "decision_origin"), default=DecisionOrigin.model
    )
    kind: Mapped[DecisionKind] = mapped_column(_enum(DecisionKind, "decision_kind"), index=True)
    label: Mapped[str | None] = mapped_column(String(200))
    destination: Mapped[str | None] = mapped_column(String(2000))
    rule: Mapped[str | None] = mapped_column(String(500))
    reason: Mapped[str | None] = mapped_column(Text)
    cam_path: Mapped[str | None] = mapped_column(String(2000))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]

    prediction: Mapped[Prediction | None] = relationship(back_populates="decisions")


class OutputDocument(Base):
    """A document as it leaves docsort: a run of pages of one received file (``document_id``), with its
    class, its outcome (auto, review, failed) and where it was delivered. The model's documents of a
    file come first (``origin`` model); an operator's decision on a document under review adds the
    operator's documents and marks the model's one ``superseded_at``."""

    __tablename__ = "output_documents"
    __table_args__ = (
        UniqueConstraint("document_id", "origin", "generation", "seq", name="uq_output_documents_seq"),
        CheckConstraint("seq >= 1", name="seq_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    origin: Mapped[DecisionOrigin] = mapped_column(_enum(DecisionOrigin, "output_origin"))
    generation: Mapped[int] = mapped_column(
        Integer, default=0
    )  # 0: the model's; n: the nth operator decision
    seq: Mapped[int] = mapped_column(Integer)  # position among the file's documents of this generation
    pages: Mapped[list[int]] = mapped_column(JSON)  # 1-based page numbers of the file, in order
    kind: Mapped[DecisionKind] = mapped_column(_enum(DecisionKind, "output_kind"), index=True)
    label: Mapped[str | None] = mapped_column(String(200))
    confidence: Mapped[float | None] = mapped_column(Float)
    margin: Mapped[float | None] = mapped_column(Float)
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    starts_by: Mapped[str] = mapped_column(String(32), default="start")  # why a new document starts here
    model_name: Mapped[str | None] = mapped_column(String(100))
    model_version: Mapped[str | None] = mapped_column(String(64))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    destination: Mapped[str | None] = mapped_column(String(2000))
    rule: Mapped[str | None] = mapped_column(String(500))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    superseded_at: Mapped[datetime | None]

    document: Mapped[Document] = relationship(back_populates="outputs")


class ReviewClaim(Base):
    """An operator holds a review item for a few minutes; others see it as taken."""

    __tablename__ = "review_claims"
    prediction_id: Mapped[int] = mapped_column(
        ForeignKey("predictions.id", ondelete="CASCADE"), primary_key=True
    )
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class Review(Base):
    """An operator's decision on a page. One per prediction: a page cannot be decided twice."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    action: Mapped[ReviewAction] = mapped_column(_enum(ReviewAction, "review_action"))
    final_label: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime | None]
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class DocumentReview(Base):
    """An operator's answer on a whole document under review (its split and each part's class), recorded
    with the pages' reviews and delivered once the undo window has passed. One per document."""

    __tablename__ = "document_reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    output_document_id: Mapped[int] = mapped_column(
        ForeignKey("output_documents.id", ondelete="CASCADE"), unique=True
    )
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    action: Mapped[DocumentAction] = mapped_column(_enum(DocumentAction, "document_action"))
    parts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"pages": [1, 2], "label": "x" | None}]
    opened_at: Mapped[datetime | None]
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Audit(Base):
    """A document the model routed automatically that is also put to an operator, to measure the live
    accuracy of automatic routing. Chosen when the document is recorded (``worker.audit``), delivered as
    usual; the operator's answer (``answer_label``; None with ``answered_at`` set: rejected) fills the
    rest. One per output document."""

    __tablename__ = "audits"
    id: Mapped[int] = mapped_column(primary_key=True)
    output_document_id: Mapped[int] = mapped_column(
        ForeignKey("output_documents.id", ondelete="CASCADE"), unique=True
    )
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))  # the class the model routed it to
    confidence: Mapped[float | None] = mapped_column(Float)
    chosen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    answer_label: Mapped[str | None] = mapped_column(String(200))
    answered_at: Mapped[datetime | None] = mapped_column(index=True)
    correct: Mapped[bool | None] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
