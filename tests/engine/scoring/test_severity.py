import numpy as np

from engine.scoring.severity import severity, top_features


def test_severity_is_the_percentile_among_training_scores():
    train = np.sort(np.arange(1.0, 101.0))  # 1..100
    sev = severity(np.array([0.0, 50.0, 100.0, 1000.0, np.nan, np.inf]), train)
    assert sev[0] == 0.0
    assert sev[1] == 49.5  # 49 below, 1 tie counted half
    assert sev[2] == 99.5
    assert sev[3] == 100.0
    assert sev[4] == 100.0 and sev[5] == 100.0  # the model could not place them: certainly unusual
    assert np.all((sev >= 0) & (sev <= 100))


def test_severity_of_a_constant_model_is_neutral():
    assert severity(np.array([1.0]), np.ones(10))[0] == 50.0


def test_top_features_order():
    c = np.array([[0.1, 0.7, 0.2], [0.5, 0.0, 0.5]])
    names, shares = top_features(c, ["a", "b", "c"], k=2)
    assert [list(n) for n in names] == [["b", "a"], ["c", "c"]]  # rank 1 of each row, then rank 2 (ties: stable)
    np.testing.assert_allclose(shares[0], [0.7, 0.5])
    assert top_features(c, ["a", "b", "c"], k=0) == ([], [])
