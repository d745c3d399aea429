from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from worker.delivery import DeliveryItem, send_item
from worker.routing import Destination, RoutingError, RoutingRules, render_folder

WHEN = datetime(2026, 3, 9, tzinfo=UTC)


def _item(
    tmp_path: Path, label: str | None = "invoice", filename: str = "scan 01.png", **kw: object
) -> DeliveryItem:
    src = tmp_path / "src.png"
    src.write_bytes(b"page-bytes")
    values: dict[str, object] = dict(
        document_id=1,
        index=1,
        n_documents=1,
        pages=(1,),
        label=label,
        sha256="ab" * 32,
        filename=filename,
        content=src,
    )
    values.update(kw)
    return DeliveryItem(**values)  # type: ignore[arg-type]


def test_folder_template_renders_label_and_date(tmp_path: Path) -> None:
    out = send_item(_item(tmp_path), Destination(folder="{label}/{date:%Y-%m}"), tmp_path / "out", when=WHEN)
    assert Path(out) == (tmp_path / "out" / "invoice" / "2026-03" / f"scan 01-{'ab' * 5}.png").resolve()
    assert Path(out).read_bytes() == b"page-bytes"


@pytest.mark.parametrize("label", ["../../etc", "/etc/passwd", "..", "a/../../b", "\x00evil", "..\\..\\x"])
def test_destination_never_leaves_its_root(tmp_path: Path, label: str) -> None:
    root = tmp_path / "out"
    out = Path(send_item(_item(tmp_path, label=label), Destination(folder="{label}"), root, when=WHEN))
    assert out.is_relative_to(root.resolve())


def test_template_that_climbs_out_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RoutingError, match="climbs out"):
        render_folder("../{label}", "x", WHEN, tmp_path)


def test_hostile_file_name_stays_inside(tmp_path: Path) -> None:
    root = tmp_path / "out"
    out = Path(
        send_item(_item(tmp_path, filename="../../../x.png"), Destination(folder="{label}"), root, when=WHEN)
    )
    assert out.parent == (root / "invoice").resolve()


def test_delivering_twice_leaves_one_file(tmp_path: Path) -> None:
    root = tmp_path / "out"
    first = send_item(_item(tmp_path), Destination(folder="{label}"), root, when=WHEN)
    second = send_item(_item(tmp_path), Destination(folder="{label}"), root, when=WHEN)
    assert first == second
    assert len(list((root / "invoice").iterdir())) == 1


def test_rules_file_maps_classes_and_rejects(tmp_path: Path) -> None:
    rules_file = tmp_path / "routes.yaml"
    rules_file.write_text(
        "classes:\n  letter: {queue: letters}\n  photo: {webhook: 'http://127.0.0.1:9/x'}\n"
    )
    rules = RoutingRules.load(rules_file)
    assert rules.for_label("letter") == ("classes.letter", Destination(queue="letters"))
    assert rules.for_label("invoice")[0] == "default"
    assert rules.for_label(None)[0] == "rejected"


def test_invalid_rules_name_the_file(tmp_path: Path) -> None:
    rules_file = tmp_path / "routes.yaml"
    rules_file.write_text("classes:\n  letter: {queue: a, folder: b}\n")
    with pytest.raises(RoutingError, match=r"routes\.yaml: invalid routing rules"):
        RoutingRules.load(rules_file)


def test_queue_destination_hands_the_payload_over(tmp_path: Path) -> None:
    sent: list[tuple[str, dict[str, object]]] = []
    where = send_item(
        _item(tmp_path),
        Destination(queue="letters"),
        tmp_path,
        sender=lambda q, p: sent.append((q, p)),
    )
    assert where == "queue:letters"
    assert sent[0][0] == "letters" and sent[0][1]["label"] == "invoice"


def test_unwritable_destination_raises_routing_error(tmp_path: Path) -> None:
    root = tmp_path / "out"
    root.mkdir()
    (root / "invoice").write_text("a file where a folder should be")
    with pytest.raises(RoutingError, match="cannot write"):
        send_item(_item(tmp_path), Destination(folder="{label}/x"), root, when=WHEN)


def test_a_document_of_a_file_that_holds_several_is_named_by_its_pages(tmp_path: Path) -> None:
    item = _item(tmp_path, index=2, n_documents=3, pages=(3, 4, 5))
    out = send_item(item, Destination(folder="{label}"), tmp_path / "out", when=WHEN)
    assert Path(out).name == f"scan 01-{'ab' * 5}-p3-5.png"


def test_name_template_fields(tmp_path: Path) -> None:
    item = _item(tmp_path, index=2, n_documents=3, pages=(2, 4))
    template = "{date:%Y}-{label}-{stem}-{index}-{pages}-{sha}"
    out = send_item(item, Destination(folder="{label}", name=template), tmp_path / "out", when=WHEN)
    assert Path(out).name == f"2026-invoice-scan 01-2-2_4-{'ab' * 5}.png"


def test_name_template_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="use the fields"):
        Destination(folder="x", name="{nope}")
