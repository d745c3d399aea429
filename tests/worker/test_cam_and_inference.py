from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from schema.errors import ModelIncompatible
from schema.manifest import InputSpec
from tests.support.tiny_model import make_tiny_model
from worker.cam import content_box, preview, save_image
from worker.decode import decode_file
from worker.infer import infer
from worker.inference import CPU, CUDA, apply_temperature, choose_providers, load_model


def test_letterbox_content_box_matches_the_resize() -> None:
    spec = InputSpec(height=100, width=100, resize="letterbox")
    assert content_box((200, 100), spec) == (0.25, 0.0, 0.75, 1.0)  # wide page: bands above and below
    assert content_box((200, 100), InputSpec(height=100, width=100, resize="stretch")) == (0, 0, 1, 1)


def test_review_images_are_written_as_their_suffix_says(tmp_path: Path) -> None:
    page = Image.new("RGB", (300, 200), (200, 100, 50))
    jpeg = save_image(page, tmp_path / "p.jpg")
    png = save_image(page, tmp_path / "h.png")
    with Image.open(jpeg) as a, Image.open(png) as b:
        assert (a.format, b.format) == ("JPEG", "PNG")
        assert np.abs(np.asarray(a).astype(int) - np.asarray(page)).mean() < 2
    assert not list(tmp_path.glob(".*part"))


def test_preview_never_enlarges_and_bounds_the_longest_side() -> None:
    assert preview(Image.new("RGB", (3000, 1500)), 1600).size == (1600, 800)
    assert preview(Image.new("RGB", (300, 150)), 1600).size == (300, 150)


def test_temperature_softens_probabilities_and_keeps_the_order() -> None:
    p = np.array([[0.9, 0.1]])
    soft = apply_temperature(p, 2.0)
    assert soft[0, 0] == pytest.approx(0.75) and soft.sum() == pytest.approx(1.0)
    assert apply_temperature(p, 1.0)[0, 0] == pytest.approx(0.9)


def test_cuda_is_used_only_when_asked_for_and_present() -> None:
    assert choose_providers("cuda", [CUDA, CPU]) == [CUDA, CPU]
    assert choose_providers("auto", [CUDA, CPU]) == [CUDA, CPU]
    assert choose_providers("cuda", [CPU]) == [CPU]
    assert choose_providers("cpu", [CUDA, CPU]) == [CPU]


def test_pages_of_several_documents_run_as_one_batch(tmp_path: Path) -> None:
    model = load_model(make_tiny_model(tmp_path / "m"), batch_size=2)
    for name, colour in (("a.png", "black"), ("b.png", "white")):
        Image.new("RGB", (40, 60), colour).save(tmp_path / name)
    pages = [Image.new("RGB", (40, 60), c) for c in ("white", "black", "white")]
    pages[0].save(tmp_path / "c.tif", save_all=True, append_images=pages[1:])
    docs = [decode_file(tmp_path / n, model.manifest.input) for n in ("a.png", "b.png", "c.tif")]
    scores = infer(model, docs)
    labels = [[model.manifest.class_names[int(s.probs.argmax())] for s in doc] for doc in scores]
    assert labels == [["dark"], ["light"], ["light", "dark", "light"]]
    assert all(s.cam is not None and s.cam.shape == (8, 8, 2) for doc in scores for s in doc)


def test_model_whose_file_does_not_match_its_manifest_is_refused(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    (folder / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelIncompatible, match="does not match the manifest"):
        load_model(folder)
