"""Per-client visibility on a real server: a client that sends the bytes another client sent reads the
shared content's outcome, but only under its own name, source and time; never the other's."""

from __future__ import annotations

from tests.ingest.test_api import Api
from tests.ingest.test_api import api as api  # the fixture
from tests.support.ingest import png_bytes


def test_shared_content_shows_each_client_only_its_own_arrival(api: Api) -> None:
    content = png_bytes(77)
    with api.client() as alice:
        first = alice.post("/v1/jobs", files={"files": ("payroll-alice-2026.png", content, "image/png")})
        assert first.status_code == 202, first.text
        doc_id = first.json()["documents"][0]["document_id"]
        alice_view = alice.get(f"/v1/documents/{doc_id}").json()
    with api.client(api.other_key) as bob:
        assert bob.get(f"/v1/documents/{doc_id}").status_code == 404  # not before bob sent the bytes
        second = bob.post("/v1/jobs", files={"files": ("scan.png", content, "image/png")})
        assert second.status_code == 202, second.text
        assert second.json()["documents"][0] == {
            "document_id": doc_id,
            "filename": "scan.png",
            "source_ref": "scan.png",
            "duplicate": True,
        }
        bob_doc = bob.get(f"/v1/documents/{doc_id}")
        bob_job = bob.get(second.json()["status_url"])
    assert alice_view["filename"] == "payroll-alice-2026.png"
    assert bob_doc.status_code == 200 and bob_job.status_code == 200
    view = bob_doc.json()
    assert view["filename"] == "scan.png" and view["source_ref"] == "scan.png"
    assert view["received_at"] > alice_view["received_at"]
    assert view["sha256"] == alice_view["sha256"]  # the same content, the same outcome
    for text in (bob_doc.text, bob_job.text):
        assert "payroll-alice" not in text
