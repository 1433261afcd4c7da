"""benchmarks.metrics on hand-made accuracy matrices; expected values computed by hand."""

import pytest

from benchmarks import metrics

# R[i][j]: accuracy on experience j after training experience i.
R = [
    [0.9, 0.1, 0.0],
    [0.6, 0.8, 0.2],
    [0.5, 0.7, 0.95],
]
# Experience 0 peaks after training experience 1 (not on the diagonal) and gains later.
R_LATE_PEAK = [
    [0.5, 0.0, 0.0],
    [0.9, 0.6, 0.1],
    [0.7, 0.3, 0.8],
]


def test_final_accuracy_is_mean_of_last_row():
    assert metrics.final_accuracy(R) == pytest.approx((0.5 + 0.7 + 0.95) / 3)


def test_average_forgetting_uses_best_earlier_accuracy():
    # j=0: max(0.9, 0.6) - 0.5 = 0.4; j=1: max(0.1, 0.8) - 0.7 = 0.1
    assert metrics.average_forgetting(R) == pytest.approx(0.25)
    # j=0: max(0.5, 0.9) - 0.7 = 0.2; j=1: max(0.0, 0.6) - 0.3 = 0.3
    assert metrics.average_forgetting(R_LATE_PEAK) == pytest.approx(0.25)


def test_forgetting_can_be_negative_when_accuracy_improves():
    assert metrics.average_forgetting([[0.2, 0.0], [0.5, 0.9]]) == pytest.approx(-0.3)


def test_backward_transfer_against_the_diagonal():
    # (0.5 - 0.9 + 0.7 - 0.8) / 2
    assert metrics.backward_transfer(R) == pytest.approx(-0.25)
    # (0.7 - 0.5 + 0.3 - 0.6) / 2: differs from -forgetting because the peak is off-diagonal
    assert metrics.backward_transfer(R_LATE_PEAK) == pytest.approx(-0.05)


def test_learning_accuracy_is_mean_of_diagonal():
    assert metrics.learning_accuracy(R) == pytest.approx((0.9 + 0.8 + 0.95) / 3)
    assert metrics.learning_accuracy(R_LATE_PEAK) == pytest.approx((0.5 + 0.6 + 0.8) / 3)


def test_seen_accuracy_averages_experiences_seen_so_far():
    assert metrics.seen_accuracy(R) == pytest.approx([0.9, 0.7, (0.5 + 0.7 + 0.95) / 3])


def test_summarise_collects_all_metrics():
    assert metrics.summarise(R) == pytest.approx(
        {
            "final_accuracy": 2.15 / 3,
            "average_forgetting": 0.25,
            "backward_transfer": -0.25,
            "learning_accuracy": 2.65 / 3,
        }
    )


def test_single_row_joint_matrix_defines_only_final_accuracy():
    joint = [[0.9, 0.8, 0.7]]
    assert metrics.final_accuracy(joint) == pytest.approx(0.8)
    assert metrics.average_forgetting(joint) is None
    assert metrics.backward_transfer(joint) is None
    assert metrics.learning_accuracy(joint) is None  # not square: no diagonal
    assert metrics.seen_accuracy(joint) == pytest.approx([0.9])
    assert metrics.summarise(joint, joint=True) == pytest.approx(
        {"final_accuracy": 0.8, "average_forgetting": None, "backward_transfer": None, "learning_accuracy": None}
    )


def test_partial_matrix_has_no_learning_accuracy():
    partial = R[:2]
    assert metrics.final_accuracy(partial) == pytest.approx((0.6 + 0.8 + 0.2) / 3)
    assert metrics.average_forgetting(partial) == pytest.approx(0.9 - 0.6)
    assert metrics.learning_accuracy(partial) is None


@pytest.mark.parametrize(
    "bad",
    [
        [[0.9, 0.1], [0.5]],  # ragged
        [[0.9], [0.8]],  # more training rows than experiences
        [],  # empty
        [0.9, 0.8],  # not a matrix
    ],
    ids=["ragged", "rows-gt-columns", "empty", "one-dimensional"],
)
def test_invalid_matrix_raises(bad):
    with pytest.raises(ValueError):
        metrics.final_accuracy(bad)
    with pytest.raises(ValueError):
        metrics.summarise(bad)


def test_invalid_shape_message_names_the_shape():
    with pytest.raises(ValueError, match=r"rows <= columns, got shape \(2, 1\)"):
        metrics.average_forgetting([[0.9], [0.8]])
