"""The original of a page: the received file's page at its scanned resolution, decoded by the worker's
decoder (PNG, a TIFF frame, a scanned PDF page), made once as a JPEG; a missing or unreadable file
answers an error naming the file and the reason."""

from __future__ import annotations

import io
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from review.settings import ReviewSettings
from schema.tables import Document
from tests.support.review import login
from tests.support.review_items import make_item, make_operator, page_png


def _stored(sessions: sessionmaker[Session], document_id: int, path: Path | None) -> None:
    with sessions() as s:
        s.get(Document, document_id).stored_path = str(path) if path else None  # type: ignore[union-attr]
        s.commit()


def _jpeg_size(client: TestClient, prediction_id: int) -> tuple[int, int]:
    response = client.get(f"/items/{prediction_id}/original.jpg")
    assert (response.status_code, response.headers["content-type"]) == (200, "image/jpeg"), response.text
    with Image.open(io.BytesIO(response.content)) as image:
        return image.size


def test_the_original_comes_at_the_scanned_resolution_of_each_format(
    client: TestClient, sessions: sessionmaker[Session], rsettings: ReviewSettings, tmp_path: Path
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        png = make_item(s, rsettings, size=(1131, 1600))
        tiff = make_item(s, rsettings, page_count=3, page_number=2)
        pdf = make_item(s, rsettings, page_count=2, page_number=2)
    login(client, "alice")

    page_png(png.original, "invoice", 240, (2480, 3508))  # the received scan, larger than the preview
    assert _jpeg_size(client, png.prediction_id) == (2480, 3508)
    cached = rsettings.dir("review") / "originals" / f"{png.sha256}-p1.jpg"
    assert cached.exists()
    png.original.unlink()  # made once: answered from the cache afterwards
    assert _jpeg_size(client, png.prediction_id) == (2480, 3508)

    frames = [Image.new("RGB", size, "white") for size in [(800, 1000), (1654, 2339), (600, 900)]]
    frames[0].save(tiff.original, save_all=True, append_images=frames[1:])
    assert _jpeg_size(client, tiff.prediction_id) == (1654, 2339)  # frame 2, as scanned

    scan = tmp_path / "scan.pdf"
    pages = [Image.new("RGB", (1240, 1754), (250, 250, 245)), Image.new("RGB", (1240, 1754), "white")]
    pages[0].save(scan, "PDF", resolution=300, save_all=True, append_images=pages[1:])  # JPEG pages
    _stored(sessions, pdf.document_id, scan)
    assert _jpeg_size(client, pdf.prediction_id) == (1240, 1754)  # page 2 at its 300 dpi

    drawn = tmp_path / "drawn.pdf"  # pages without a scan: rendered in the render process at 150 dpi
    document = pdfium.PdfDocument.new()
    for _ in range(2):
        document.new_page(595, 842)  # A4 in points
    document.save(str(drawn))
    document.close()
    _stored(sessions, pdf.document_id, drawn)
    (rsettings.dir("review") / "originals" / f"{pdf.sha256}-p2.jpg").unlink()
    assert _jpeg_size(client, pdf.prediction_id) == (1240, 1754)


def test_a_missing_or_unreadable_original_answers_the_file_and_the_reason(
    client: TestClient,
    sessions: sessionmaker[Session],
    rsettings: ReviewSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with sessions() as s:
        make_operator(s, "alice")
        item = make_item(s, rsettings, filename="march.png")
    login(client, "alice")
    url = f"/items/{item.prediction_id}/original.jpg"

    item.original.unlink()
    missing = client.get(url)
    assert missing.status_code == 404
    assert missing.json()["detail"] == (
        f"The original of page 1 of march.png cannot be shown: {item.original}: file not found"
    )

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    _stored(sessions, item.document_id, broken)
    unreadable = client.get(url)
    assert unreadable.status_code == 422
    assert f"{broken}: unsupported file type" in unreadable.json()["detail"]

    large = page_png(tmp_path / "large.png", "invoice", 240, (2000, 3000))
    _stored(sessions, item.document_id, large)
    monkeypatch.setenv("DOCSORT_MAX_PAGE_PIXELS", "5000000")  # the worker's decode limit holds here too
    refused = client.get(url)
    assert refused.status_code == 422
    assert f"{large}: decompression bomb refused: 2000x3000" in refused.json()["detail"]
    assert "(DOCSORT_MAX_PAGE_PIXELS)" in refused.json()["detail"]

    _stored(sessions, item.document_id, None)
    untracked = client.get(url)
    assert untracked.status_code == 404
    assert "the received file of march.png is not kept" in untracked.json()["detail"]
