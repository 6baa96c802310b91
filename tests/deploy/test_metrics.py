import numpy as np
import pytest

from toolkit_deploy.metrics import classification_metrics, confusion_matrix, format_metrics


def test_figures_match_a_hand_computed_example() -> None:
    # true:  a a a b b c ; pred: a a b b c c
    m = classification_metrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], ["a", "b", "c"])
    assert m["n_samples"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    a, b, c = (m["per_class"][k] for k in "abc")
    assert (a["precision"], a["recall"], a["support"]) == (1.0, pytest.approx(2 / 3), 3)
    assert (b["precision"], b["recall"]) == (0.5, 0.5)
    assert (c["precision"], c["recall"]) == (0.5, 1.0)
    f1 = [0.8, 0.5, 2 / 3]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    assert m["weighted_f1"] == pytest.approx(np.average(f1, weights=[3, 2, 1]))


def test_absent_class_does_not_drag_macro_f1_and_has_zero_precision() -> None:
    m = classification_metrics([0, 0, 1], [0, 0, 1], ["a", "b", "never"])
    assert m["macro_f1"] == 1.0
    assert m["per_class"]["never"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_confusion_matrix_counts_and_length_check() -> None:
    assert confusion_matrix([1, 1, 0], [1, 0, 0], 2).tolist() == [[1, 0], [1, 1]]
    with pytest.raises(ValueError, match="differ in length: 2 vs 1"):
        classification_metrics([0, 1], [0], ["a", "b"])


def test_table_shows_every_class_and_the_matrix() -> None:
    text = format_metrics(classification_metrics([0, 1], [0, 0], ["cat", "dog"]))
    assert "accuracy 0.5000" in text
    assert "cat" in text and "dog" in text and "confusion matrix" in text
