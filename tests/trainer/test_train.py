"""Training runs in-process: every backbone trains, exports and passes parity; phases; repeatability."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from schema.manifest import load_manifest
from tests.trainer.synthetic import make_folder
from trainer.recipe import TrainOptions


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer.tfsetup import import_tensorflow

    import_tensorflow()
    return make_folder(tmp_path_factory.mktemp("train") / "data", per_class=10, seed=4)


def _train(data: Path, models: Path, **kwargs) -> Path:
    from trainer.train import train

    return train(TrainOptions(data_dir=data, models_dir=models, progress=False, **kwargs))


def _history(version_dir: Path) -> list[dict[str, str]]:
    with (version_dir / "report" / "history.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    "backbone,size",
    [
        pytest.param("vgg16", 32, marks=pytest.mark.slow),
        pytest.param("xception", 71, marks=pytest.mark.slow),
    ],
)
def test_pretrained_architectures_train_from_scratch_export_and_pass_parity(
    data: Path, tmp_path: Path, backbone: str, size: int
) -> None:
    version_dir = _train(data, tmp_path, backbone=backbone, image_size=size, epochs=1, weights="none")
    manifest = load_manifest(version_dir)
    assert manifest.backbone == backbone and (manifest.input.height, manifest.input.width) == (size, size)
    assert manifest.metrics["parity"]["max_abs_probs_diff"] <= 1e-4 and manifest.metrics["parity"]["n"] == 4
    assert [row["phase"] for row in _history(version_dir)] == ["train"]
    assert manifest.cam_shape == [size // 32, size // 32] if backbone == "vgg16" else [3, 3]

    from trainer.backbones import build_classifier

    fresh = build_classifier(backbone, size, 2, "none")
    resumed = build_classifier(backbone, size, 2, str(version_dir / "backbone.weights.h5"))
    kernels = [(w.path, w.numpy()) for w in resumed.features.weights if w.path.endswith("kernel")]
    assert kernels and all(
        not np.array_equal(k, f.numpy())
        for (_, k), f in zip(
            kernels, [w for w in fresh.features.weights if w.path.endswith("kernel")], strict=True
        )
    )


def test_a_weights_file_for_another_backbone_is_refused_by_name(data: Path, tmp_path: Path) -> None:
    from trainer.backbones import build_classifier
    from trainer.errors import TrainerError

    other = build_classifier("vgg16", 32, 2, "none")
    path = tmp_path / "vgg.weights.h5"
    other.features.save_weights(str(path))
    with pytest.raises(TrainerError, match=r"--weights .*vgg\.weights\.h5: does not fit"):
        build_classifier("small-cnn", 32, 2, str(path))
    with pytest.raises(TrainerError, match="not 'imagenet', 'none' or an existing weights file"):
        build_classifier("small-cnn", 32, 2, str(tmp_path / "missing.h5"))


def test_weights_file_trains_head_on_cached_features_then_fine_tunes_top_block(
    data: Path, tmp_path: Path
) -> None:
    from trainer.backbones import build_classifier

    donor = build_classifier("small-cnn", 32, 2, "none")
    weights = tmp_path / "donor.weights.h5"
    donor.features.save_weights(str(weights))
    version_dir = _train(
        data,
        tmp_path / "models",
        image_size=32,
        epochs=2,
        fine_tune_epochs=1,
        weights=str(weights),
        augment=False,
    )
    phases = [row["phase"] for row in _history(version_dir)]
    assert phases == ["head (cached features)"] * 2 + ["fine-tune"]
    manifest = load_manifest(version_dir)
    recorded = manifest.training.extra["phases"]
    assert recorded[0]["feature_seconds"] >= 0 and manifest.training.weights == str(weights)

    trained = build_classifier("small-cnn", 32, 2, str(version_dir / "backbone.weights.h5"))
    by_name = {w.path: w.numpy() for w in trained.features.weights}
    for w in donor.features.weights:
        same = np.array_equal(by_name[w.path], w.numpy())
        if w.path.startswith("stage4_") and "_bn/" not in w.path:
            assert not same, f"{w.path}: the top block should have been fine-tuned"
        else:
            assert same, f"{w.path}: frozen layers must keep the loaded weights"


@pytest.mark.slow
def test_same_seed_trains_the_same_model(data: Path, tmp_path: Path) -> None:
    runs = [_train(data, tmp_path / f"run{i}", image_size=32, epochs=2, seed=11) for i in range(2)]
    scores = [json.loads((r / "report" / "val_scores.json").read_text()) for r in runs]
    assert scores[0]["sources"] == scores[1]["sources"]
    assert np.array_equal(np.asarray(scores[0]["probs"]), np.asarray(scores[1]["probs"]))
    history = [[row["loss"] for row in _history(r)] for r in runs]
    assert history[0] == history[1]
