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


def test_top_k_accuracy_and_confused_pairs_by_hand() -> None:
    import numpy as np

    from toolkit_deploy.metrics import classification_metrics

    labels = ["a", "b", "c", "d"]
    # Six samples; the true class's rank: 1, 2, 3, 1, 4, 2.
    probs = np.array([
        [0.7, 0.1, 0.1, 0.1],   # true a: rank 1
        [0.5, 0.3, 0.1, 0.1],   # true b: rank 2 (predicted a)
        [0.4, 0.3, 0.2, 0.1],   # true c: rank 3 (predicted a)
        [0.1, 0.1, 0.1, 0.7],   # true d: rank 1
        [0.1, 0.2, 0.3, 0.4],   # true a: rank 4 (predicted d)
        [0.2, 0.5, 0.3, 0.0],   # true c: rank 2 (predicted b)
    ])
    targets = [0, 1, 2, 3, 0, 2]
    result = classification_metrics(targets, probs.argmax(1).tolist(), labels, probs)
    assert result["accuracy"] == 2 / 6
    assert result["top_k_accuracy"] == {"2": 4 / 6, "3": 5 / 6}  # k = 5 >= 4 classes: left out
    assert result["confused_pairs"] == [
        {"true": "a", "predicted": "d", "count": 1, "share_of_true": 0.5},
        {"true": "b", "predicted": "a", "count": 1, "share_of_true": 1.0},
        {"true": "c", "predicted": "a", "count": 1, "share_of_true": 0.5},
        {"true": "c", "predicted": "b", "count": 1, "share_of_true": 0.5},
    ]
    assert classification_metrics(targets, [0, 1, 1, 3, 0, 1], labels)["confused_pairs"][0] == {
        "true": "c", "predicted": "b", "count": 2, "share_of_true": 1.0}
    assert classification_metrics(targets, targets, labels)["top_k_accuracy"] == {}
