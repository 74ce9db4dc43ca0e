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
                name = f"{clip.stem}_w{k:02d}.avi"
                write_video(root/split/name, w, fps=25)
                rows[split].append(dict(video_name=name, tag=label))
    for split, r in rows.items(): pd.DataFrame(r).to_csv(root/f"{split}.csv", index=False)
    return root

def test_real_clips_extract_train_predict(windows_dataset, tmp_path):
    from video_classifier.data import class_names, load_split
    from video_classifier.features import build_feature_extractor, prepare_all_videos
    from video_classifier.predict import VideoClassifier, load_classifier, save_classifier, sequence_prediction
    from video_classifier.train import run_experiment
    train_df, test_df = load_split(windows_dataset, "train"), load_split(windows_dataset, "test")
    vocab = class_names(train_df)
    assert len(vocab) == len(CLIPS) >= 5
    settings = dict(backbone="mobilenet", alpha=0.25, weights=str(WEIGHTS), img_size=128)
    extractor = build_feature_extractor(**settings)
    train_data, train_labels = prepare_all_videos(train_df, None, extractor, vocab, max_seq_length=WINDOW, cache_dir=tmp_path/"cache", progress=False)
    test_data, test_labels = prepare_all_videos(test_df, None, extractor, vocab, max_seq_length=WINDOW, cache_dir=tmp_path/"cache", progress=False)
    assert train_data[0].shape[1:] == (WINDOW, 256) and train_data[1].all()
    exp = run_experiment(train_data, train_labels, test_data, test_labels, vocab, epochs=60, batch_size=16, progress=False)
    chance = 1/len(vocab)
    print(f"\nreal-clip windows: {len(train_df)} training, {len(test_df)} test, {len(vocab)} classes: test accuracy {exp.evaluation.accuracy:.1%} (chance {chance:.1%})")
    assert exp.evaluation.accuracy >= 0.6 > 3*chance, f"accuracy {exp.evaluation.accuracy:.2f} on real clips (chance {chance:.2f})"
    bundle = save_classifier(VideoClassifier(exp.model, vocab, settings, "uniform", extractor), tmp_path/"classifier")
    clf = load_classifier(bundle)
    for path, tag in zip(test_df.path[:5], test_df.tag[:5]):
        ranked = sequence_prediction(path, clf, verbose=False)
        assert sorted(label for label, _ in ranked) == sorted(vocab)  # every class ranked
        assert abs(sum(p for _, p in ranked) - 1) < 1e-4
        assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True)
