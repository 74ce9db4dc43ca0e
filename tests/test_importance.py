"""Longer checks of temporal occlusion (nbs/11_importance.ipynb): masking a step is removing it, at every step of
every recurrent kind; the importance of a trained classifier falls on the action whether the still frames come
before it or after it; and each row names the right frame of the file."""
import keras
import numpy as np
import pandas as pd
import pytest

from video_classifier.data import write_video
from video_classifier.frames import load_video, sample_indices
from video_classifier.importance import (frame_importance, importance_share, make_partial_action_dataset, occlusion_probabilities,
                                         partial_action_clip)
from video_classifier.model import SEQUENCE_MODELS, get_sequence_model
from video_classifier.pipeline import train_classifier
from video_classifier.predict import VideoClassifier

T, L = 12, 5  # frames per clip, frames of action

@pytest.mark.parametrize("kind", SEQUENCE_MODELS)
def test_masking_a_step_is_removing_it(kind):
    "Each row of the occlusion batch is the prediction for the clip with that frame cut out, for every step and clip length."
    keras.utils.set_random_seed(0)
    model, rng = get_sequence_model(4, 10, 6, kind=kind, dropout=0.0), np.random.default_rng(1)
    for t in (1, 2, 7, 10):
        x = np.zeros((10, 6), np.float32)
        x[:t] = rng.normal(size=(t, 6))
        probs = occlusion_probabilities(model, x, np.arange(10) < t)
        assert probs.shape == (t + 1, 4)
        for i in range(t):
            cut = np.zeros_like(x)
            cut[:t - 1] = np.delete(x[:t], i, axis=0)
            np.testing.assert_allclose(probs[1 + i], model.predict_on_batch([cut[None], (np.arange(10) < t - 1)[None]])[0], atol=1e-6)
        if t > 1: assert np.abs(probs[1:] - probs[0]).max() > 1e-4  # the steps matter: the equality is not a model ignoring its input

@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> VideoClassifier:
    "A classifier trained on clips whose action fills 5 of 12 frames, at random places (another seed than the chapter's)."
    root = tmp_path_factory.mktemp("partial")
    make_partial_action_dataset(root, seed=1)
    return train_classifier(root, backbone="mobilenet", alpha=0.25, img_size=64, weights=None, max_seq_length=T, epochs=25,
                            batch_size=16, learning_rate=0.01, seed=1, progress=False).classifier

@pytest.mark.parametrize("start", [T - L, 0], ids=["still-then-action", "action-then-still"])
def test_importance_falls_on_the_action(classifier, start, tmp_path):
    "New clips with the action at one end: most of the importance of the predicted class lies on the action's frames."
    rng, shares = np.random.default_rng(7), []
    for label in classifier.class_vocab:
        for k in range(8):
            path = write_video(tmp_path/f"{label}_{k}.avi", partial_action_clip(label, rng, start), fps=25)
            shares.append(importance_share(frame_importance(classifier, path), range(start, start + L)))
    shares = pd.Series(shares)
    assert shares.mean() > 0.7 and shares.median() > 0.7, shares.round(2).tolist()

@pytest.mark.parametrize("sampling", ["uniform", "first"])
def test_frame_column_names_the_frame_in_the_file(classifier, sampling, tmp_path):
    "A clip whose frames all differ (brightness 20 + 4i): each row's `frame` is the frame of the file the classifier read at that step."
    n = 50
    path = write_video(tmp_path/"ramp.avi", np.stack([np.full((48, 48, 3), 20 + 4*i, np.uint8) for i in range(n)]), fps=10)
    clf = VideoClassifier(classifier.model, classifier.class_vocab, classifier.extractor, sampling, feature_extractor=classifier.feature_extractor)
    importance = frame_importance(clf, path)
    assert importance.frame.tolist() == sample_indices(n, T, sampling).tolist()
    every = load_video(path, resize=(clf.img_size, clf.img_size))  # all 50 frames, read the same way
    assert (np.diff(every.mean(axis=(1, 2, 3))) > 1).all()  # no two alike, so a wrong index cannot pass
    np.testing.assert_array_equal(clf.read_frames(path), every[importance.frame])
    np.testing.assert_allclose(importance.time, importance.frame / 10)
