"""End to end on real footage: the UCF101 and Kinetics clips in ../shared, with the small pretrained MobileNet.

The task: each real clip is a class. Training windows come from the first 60% of each clip, test windows
from the rest, so the model has to recognise later footage of a scene from earlier footage of it.
"""
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED = Path(os.environ.get("VIDEO_CLASSIFIER_SHARED", Path(__file__).resolve().parents[2]/"shared"))
CLIPS = sorted((SHARED/"data"/"clips").glob("*/*/*.*"))
WEIGHTS = SHARED/"weights"/"mobilenet_2_5_224_tf_no_top.h5"
pytestmark = pytest.mark.skipif(not CLIPS or not WEIGHTS.exists(), reason=f"real clips or weights not found under {SHARED} (../shared is absent)")

WINDOW = 16  # frames per window clip

def _windows(frames: np.ndarray, start: int, stop: int, stride: int) -> list[np.ndarray]:
    return [frames[i:i + WINDOW] for i in range(start, stop - WINDOW + 1, stride)]

@pytest.fixture(scope="module")
def windows_dataset(tmp_path_factory) -> Path:
    "The real clips cut into training windows (first 60%) and test windows (last 40%), as a UCF101-style folder."
    from video_classifier.data import write_video
    from video_classifier.frames import load_video
    root, rows = tmp_path_factory.mktemp("windows"), {"train": [], "test": []}
    for clip in CLIPS:
        frames, label = load_video(clip, resize=(128, 128)), clip.stem.replace("_", "")
        cut = int(len(frames)*0.6)
        for split, wins in (("train", _windows(frames, 0, cut, 6)), ("test", _windows(frames, cut, len(frames), 12))):
            for k, w in enumerate(wins):
                name = f"{clip.stem}_{split}_w{k:02d}.avi"
                write_video(root/split/name, w, fps=25)
                rows[split].append(dict(video_name=name, tag=label))
    for split, r in rows.items(): pd.DataFrame(r).to_csv(root/f"{split}.csv", index=False)
    return root

def test_real_clips_train_predict(windows_dataset, tmp_path):
    "The library's one call on real footage: trained, evaluated, saved; the saved classifier ranks every class."
    from video_classifier.pipeline import train_classifier
    from video_classifier.predict import VideoClassifier, sequence_prediction
    result = train_classifier(windows_dataset, tmp_path/"classifier", backbone="mobilenet", alpha=0.25, weights=WEIGHTS, img_size=128,
                              max_seq_length=WINDOW, epochs=60, batch_size=16, cache_dir=tmp_path/"cache", progress=False)
    vocab, test = result.classifier.class_vocab, result.dataset[result.dataset.split == "test"]
    assert len(vocab) == len(CLIPS) >= 5 and result.dataset.attrs["layout"] == "tutorial"
    chance = 1/len(vocab)
    print(f"\nreal-clip windows: {(result.dataset.split == 'train').sum()} training, {len(test)} test, {len(vocab)} classes: "
          f"test accuracy {result.evaluation.accuracy:.1%} (chance {chance:.1%})")
    assert result.evaluation.accuracy >= 0.6 > 3*chance, f"accuracy {result.evaluation.accuracy:.2f} on real clips (chance {chance:.2f})"
    clf = VideoClassifier.load(tmp_path/"classifier")
    table = clf.predict(test.path[:5])
    assert len(table) == 5*len(vocab) and (table.groupby("video").label.apply(sorted) == [sorted(vocab)]*5).all()  # every class ranked
    assert np.allclose(table.groupby("video").probability.sum(), 1, atol=1e-4)
    for path in test.path[:2]:  # the tutorial's one-clip path agrees with the batched one
        ranked = sequence_prediction(path, clf, verbose=False)
        assert [label for label, _ in ranked] == table[table.video == path].label.tolist()

def test_real_clip_folders(tmp_path):
    "The real clips lie a folder per class: read as such, and refused for training (one clip a class leaves nothing to test on)."
    import warnings
    from video_classifier.data import DatasetError
    from video_classifier.datasets import detect_layout, read_dataset
    from video_classifier.pipeline import train_classifier
    ucf = SHARED/"data"/"clips"/"ucf101"
    assert detect_layout(ucf) == "folders"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = read_dataset(ucf)
        assert sorted(df.tag) == ["ApplyEyeMakeup", "BaseballPitch", "Basketball", "HeadMassage", "Shotput"]
        assert df.path.map(os.path.isfile).all() and df.attrs["layout"] == "folders"
        with pytest.raises(DatasetError, match="test"):
            train_classifier(ucf, backbone="mobilenet", weights=None, img_size=32, epochs=1, progress=False)
