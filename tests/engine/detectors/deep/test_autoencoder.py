from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.detectors.deep.autoencoder import AutoencoderDetector
from engine.errors import SchemaMismatchError
from engine.features import Preprocessor
from engine.schema import ColumnInfo, Role, Schema

FAST = dict(hidden_layers=[16], latent_dim=4, epochs=4, batch_size=64, device="cpu")


def mixed_table(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, Schema, np.ndarray]:
    """Two templates: (kind, account) go together and set the amount; the last 6 rows break it."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, n)
    kind = np.where(t == 0, "A", "B")
    account = np.where(t == 0, "x", "y")
    amount = np.exp(np.where(t == 0, 3.0, 7.0) + rng.normal(0, 0.2, n))
    other = rng.normal(0, 1, n)
    anomalous = np.zeros(n, dtype=bool)
    anomalous[-6:] = True
    account[-3:] = np.where(t[-3:] == 0, "y", "x")  # combination never seen
    amount[-6:-3] = np.exp(np.where(t[-6:-3] == 0, 7.0, 3.0))  # amount of the other template
    df = pd.DataFrame({"kind": kind, "account": account, "amount": amount.round(2), "other": other})
    schema = Schema(columns=[ColumnInfo("kind", Role.CATEGORICAL, "t"), ColumnInfo("account", Role.CATEGORICAL, "t"),
                             ColumnInfo("amount", Role.NUMERIC, "t"), ColumnInfo("other", Role.NUMERIC, "t")])
    return df, schema, anomalous


def numeric_only(fm):
    """A copy of ``fm`` without its categorical columns."""
    num = fm.subset(np.arange(fm.n_rows))
    num.codes, num.categories, num.categorical_source = num.codes[:, :0], [], num.categorical_source[:0]
    return num


@pytest.fixture(scope="module")
def encoded():
    df, schema, anomalous = mixed_table()
    pre = Preprocessor().fit(df, schema)
    return pre, pre.transform(df), anomalous


@pytest.fixture(scope="module")
def fitted(encoded):
    _, fm, _ = encoded
    return AutoencoderDetector(**{**FAST, "epochs": 30}).fit(fm)


def test_scores_contributions_expected(encoded, fitted):
    pre, fm, anomalous = encoded
    scores = fitted.decision_function(fm)
    assert scores.shape == (fm.n_rows,) and scores.dtype == np.float64 and np.isfinite(scores).all()
    # the planted anomalies rank on top
    top = np.argsort(-scores)[:12]
    assert anomalous[top].sum() >= 5
    contrib = fitted.feature_contributions(fm)
    assert contrib.shape == (fm.n_rows, len(fm.source_columns))
    assert (contrib >= 0).all()
    np.testing.assert_allclose(contrib.sum(axis=1), 1.0, rtol=1e-6)
    # a broken combination is blamed on the categorical columns, a wrong amount on the amount
    assert contrib[-3:, :2].sum(axis=1).min() > 0.5
    assert contrib[-6:-3, 2].min() > 0.3
    expected = fitted.expected_values(fm)
    assert expected.shape == (fm.n_rows, fm.n_features)
    for sl in fm.categorical_slices:
        np.testing.assert_allclose(expected[:, sl].sum(axis=1), 1.0, rtol=1e-5)
    back = pre.inverse_transform_expected(expected)
    assert list(back.columns) == fm.source_columns
    normal = ~anomalous
    assert (back["kind"].to_numpy()[normal] == np.asarray(["A", "B"])[(fm.codes[normal, 0] != 0).astype(int)]).mean() > 0.9 \
        or (back["kind"].to_numpy()[normal] == pre.inverse_transform_expected(fm.values)["kind"].to_numpy()[normal]).mean() > 0.9


@pytest.mark.parametrize("options", [
    dict(activation="tanh", optimizer="adamw", batch_norm=True, dropout=0.2),
    dict(activation="leaky_relu", optimizer="sgd", learning_rate=0.01, lr_schedule="step", l1=1e-5, l2=1e-4),
    dict(activation="elu", optimizer="rmsprop", lr_schedule="plateau", score="mse"),
    dict(activation="gelu", optimizer="adagrad", hidden_layers=[16, 8], input_noise=0.2),
    dict(optimizer="adamax", lr_schedule="onecycle", validation_fraction=0.0, early_stopping=0),
])
def test_options(encoded, options):
    _, fm, _ = encoded
    det = AutoencoderDetector(**{**FAST, **options}).fit(fm)
    s = det.decision_function(fm)
    assert np.isfinite(s).all() and s.shape == (fm.n_rows,)


def test_progress_receives_metrics(encoded):
    _, fm, _ = encoded
    seen = []
    AutoencoderDetector(**FAST).fit(fm, progress=lambda f, msg, **m: seen.append((f, m)))
    assert seen and seen[-1][0] == 1.0
    assert any(m.get("train_loss") is not None and m.get("rows_per_s") for _, m in seen)
    assert any(m.get("val_loss") is not None for _, m in seen)
    assert all(m.get("device") == "cpu" for _, m in seen)


def test_zero_weight_rows_are_not_learnt(encoded):
    """Rows of a third template with weight 0 stay anomalous; with weight 1 they become normal."""
    _, fm, _ = encoded
    rng = np.random.default_rng(1)
    df, schema, _ = mixed_table()
    extra = df.iloc[:60].copy()
    extra["kind"], extra["account"] = "C", "z"
    extra["amount"] = np.exp(11 + rng.normal(0, 0.2, 60)).round(2)
    both = pd.concat([df, extra], ignore_index=True)
    pre = Preprocessor(min_level_count=1).fit(both, schema)
    fm2 = pre.transform(both)
    w = np.ones(fm2.n_rows)
    w[-60:] = 0.0
    params = {**FAST, "epochs": 25, "validation_fraction": 0.0, "early_stopping": 0}
    s0 = AutoencoderDetector(**params).fit(fm2, sample_weight=w).decision_function(fm2)
    s1 = AutoencoderDetector(**params).fit(fm2).decision_function(fm2)
    rank0 = (s0[-60:, None] > s0[None, :-60]).mean()
    rank1 = (s1[-60:, None] > s1[None, :-60]).mean()
    assert rank0 > 0.95 and rank0 > rank1


def test_bad_sample_weight_and_mismatched_input(encoded, fitted):
    _, fm, _ = encoded
    with pytest.raises(ValueError):
        AutoencoderDetector(**FAST).fit(fm, sample_weight=np.ones(3))
    with pytest.raises(ValueError):
        AutoencoderDetector(**FAST).fit(fm, sample_weight=np.zeros(fm.n_rows))
    other = fm.subset(np.arange(10))
    other.numeric = other.numeric[:, :1]
    with pytest.raises(SchemaMismatchError):
        fitted.decision_function(other)


def test_numeric_only_and_categorical_only(encoded):
    _, fm, _ = encoded
    num = numeric_only(fm)
    s = AutoencoderDetector(**FAST).fit(num).decision_function(num)
    assert np.isfinite(s).all()
    cat = fm.subset(np.arange(fm.n_rows))
    cat.numeric, cat.numeric_names, cat.numeric_source = cat.numeric[:, :0], [], cat.numeric_source[:0]
    det = AutoencoderDetector(**FAST).fit(cat)
    assert np.isfinite(det.decision_function(cat)).all()
    assert det.feature_contributions(cat).shape == (cat.n_rows, len(cat.source_columns))


def test_fused_training_nll_equals_log_softmax_of_each_column():
    """The training loss's per-column log-sum-exp gives the same NLL as the scoring path's log-softmax,
    also for logits far apart (each column keeps its own maximum)."""
    import torch

    from engine.detectors.deep.layers import TabularOutput

    torch.manual_seed(0)
    cards = [3, 1, 7, 2]
    for variance in (False, True):
        out = TabularOutput(8, 2, cards, variance=variance)
        h = torch.randn(50, 8) * 30.0
        codes = torch.stack([torch.randint(0, c, (50,)) for c in cards], dim=1)
        x_hat, logvar, log_probs = out(h)
        x2, lv2, nll = out.terms(h, codes)
        expected = -log_probs.gather(2, codes[:, :, None]).squeeze(2)
        assert torch.allclose(nll, expected, atol=1e-4, rtol=1e-5)
        assert torch.equal(x_hat, x2) and (logvar is None) == (lv2 is None)
        nll.sum().backward()  # differentiable


def test_group_outputs_equal_feeding_each_masked_row(encoded, fitted):
    """Masked scoring builds the first layer once and takes out the hidden group's part: the result is
    the same as running the network on the row with that group masked."""
    import torch

    _, fm, _ = encoded
    net = fitted.net_
    x, c = torch.as_tensor(fm.numeric[:40]), torch.as_tensor(fm.codes[:40])
    d, k = x.shape[1], c.shape[1]
    with torch.no_grad():
        x_hat, logvar, log_probs = fitted._group_outputs(net, x, c)
        keep = torch.ones((40, d + k))
        keep[:, :d] = 0.0
        x_ref, lv_ref, _ = net(x, c, keep)
        assert torch.allclose(x_hat, x_ref, atol=1e-5)
        assert (logvar is None and lv_ref is None) or torch.allclose(logvar, lv_ref, atol=1e-5)
        for j in range(k):
            keep = torch.ones((40, d + k))
            keep[:, d + j] = 0.0
            _, _, lp_ref = net(x, c, keep)
            card = fm.cardinalities[j]
            assert torch.allclose(log_probs[:, j, :card], lp_ref[:, j, :card], atol=1e-5)


def test_precision_bf16_trains_and_auto_keeps_small_tables_in_float32(encoded):
    assert AutoencoderDetector().get_params()["precision"] == "fp32"  # the default
    """bf16 autocast (the CPU speed-up for large tables) trains to finite scores that still find the
    planted anomalies; "auto" leaves small tables in float32 (identical to precision="fp32"); an
    unknown precision is refused."""
    _, fm, anomalous = encoded
    det = AutoencoderDetector(**{**FAST, "epochs": 30}, precision="bf16").fit(fm)
    s = det.decision_function(fm)
    assert np.all(np.isfinite(s)) and s.dtype == np.float64
    assert np.mean(np.argsort(-s)[:12] >= len(s) - 6) >= 0.5
    auto = AutoencoderDetector(**FAST, precision="auto").fit(fm).decision_function(fm)
    fp32 = AutoencoderDetector(**FAST, precision="fp32").fit(fm).decision_function(fm)
    np.testing.assert_array_equal(auto, fp32)
    with pytest.raises(ValueError, match="precision"):
        AutoencoderDetector(**FAST, precision="fp8").fit(fm)


def test_hidden_group_loss_equals_the_full_output_layer_masked(encoded, fitted):
    """Masked training on the CPU computes only the hidden groups' outputs; the per-row loss is the one
    the full output layer (the GPU path) gives once the visible groups are masked away, gradients too."""
    import torch

    from engine.detectors.deep.layers import numeric_terms

    _, fm, _ = encoded
    net = fitted.net_
    x, c = torch.as_tensor(fm.numeric[:64]), torch.as_tensor(fm.codes[:64])
    d, k = x.shape[1], c.shape[1]
    hide = (torch.rand((64, 1 + k), generator=torch.Generator().manual_seed(3)) < 0.4).float()
    hide[torch.arange(64), torch.arange(64) % (1 + k)] = 1.0
    hide_num, hide_cat = hide[:, :1].expand(64, d), hide[:, 1:]
    keep = 1.0 - torch.cat([hide_num, hide_cat], dim=1)
    net.train()
    try:
        h = net.decoder(net.encode(x, c, keep))
        sliced = fitted._hidden_group_loss(net, h, x, c, hide)
        full = fitted._full_output_loss(net, h, x, c, hide)  # the GPU path
        x_hat, logvar, nll = net.output.terms(h, c)
        se = numeric_terms(x_hat, logvar, x)
        by_hand = ((se if logvar is not None else 0.5 * se) * hide_num).sum(dim=1) + (nll * hide_cat).sum(dim=1)
        assert torch.allclose(full, by_hand)
        assert torch.allclose(sliced, full, atol=1e-4, rtol=1e-5)
        g_sliced = torch.autograd.grad(sliced.sum(), net.output.head.weight, retain_graph=True)[0]
        g_full = torch.autograd.grad(full.sum(), net.output.head.weight)[0]
        assert torch.allclose(g_sliced, g_full, atol=1e-4, rtol=1e-4)
    finally:
        net.eval()


def test_trim_drops_the_worst_rows_of_each_batch_from_the_gradient():
    import torch

    det = AutoencoderDetector(trim=0.25)
    loss = torch.tensor([1.0, 9.0, 2.0, 3.0, 8.0, 0.5, 4.0, 7.0])
    keep = det._trimmed(loss, None)
    assert keep.tolist() == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]  # the 2 (25%) highest losses
    w = torch.full((8,), 2.0)
    assert (det._trimmed(loss, w) == 2.0 * keep).all()  # sample weights kept for the other rows
    assert AutoencoderDetector(trim=0.0)._trimmed(loss, None) is None


def test_trimmed_training_on_a_contaminated_table_keeps_the_anomalies_unlearnt():
    """An all-numeric table (a 2-d plane in 4-d) where a tenth of the rows is one tight cluster off the
    plane: untrimmed, a model with a spare latent dimension learns the cluster as normal; trimming a
    fifth of each batch leaves it out (seeded; not every seed gets there, see engine.pipeline)."""
    from engine.evaluation import aucroc
    from engine.features import FeatureMatrix

    rng = np.random.default_rng(0)
    t = rng.normal(size=(900, 2))
    normal = np.hstack([t, t[:, :1] + t[:, 1:], t[:, :1] - t[:, 1:]]) + rng.normal(0, 0.05, (900, 4))
    cluster = rng.normal(0, 0.05, (100, 4)) + np.array([1.0, 1.0, -1.5, 1.5])
    fm = FeatureMatrix(np.vstack([normal, cluster]).astype(np.float32))
    y = np.r_[np.zeros(900), np.ones(100)].astype(bool)
    params = dict(hidden_layers=[32], latent_dim=3, epochs=20, batch_size=128, device="cpu", seed=0)
    plain = aucroc(y, AutoencoderDetector(**params).fit(fm).decision_function(fm))
    trimmed_det = AutoencoderDetector(**params, trim=0.2).fit(fm)
    trimmed = aucroc(y, trimmed_det.decision_function(fm))
    assert plain < 0.5 < 0.95 < trimmed
    # the validation loss is trimmed like the training loss, so the curves are comparable: untrimmed,
    # the validation split's share of the cluster would keep it far above the training curve
    history = trimmed_det.history_
    assert history.val_loss[-1] < 3 * history.train_loss[-1]
    import torch

    batch = {"x": torch.as_tensor(fm.numeric), "c": torch.as_tensor(fm.codes)}
    trimmed_det.net_.eval()
    with torch.no_grad():
        trimmed_loss = float(trimmed_det._batch_loss(trimmed_det.net_, batch, None))
        trimmed_det.trim = 0.0
        full_loss = float(trimmed_det._batch_loss(trimmed_det.net_, batch, None))
    assert trimmed_loss < 0.5 * full_loss  # in eval mode too, the worst fifth is left out
    with pytest.raises(ValueError, match="trim"):
        AutoencoderDetector(**params, trim=0.6).fit(fm)


def test_calibration_uses_a_sample_of_large_tables(encoded, monkeypatch):
    """The typical terms are measured on at most _CALIBRATION_ROWS training rows (the same values as on
    all rows, up to sampling error), without a pass over all of them."""
    import engine.detectors.deep.autoencoder as module

    _, fm, _ = encoded
    full = AutoencoderDetector(**FAST).fit(fm)
    monkeypatch.setattr(module, "_CALIBRATION_ROWS", 300)
    seen = []
    original = module.AutoencoderDetector._column_scores
    monkeypatch.setattr(module.AutoencoderDetector, "_column_scores",
                        lambda self, m: seen.append(m.n_rows) or original(self, m))
    sampled = AutoencoderDetector(**FAST).fit(fm)
    assert seen[0] == 300
    np.testing.assert_allclose(sampled.column_baseline_, full.column_baseline_, rtol=0.25, atol=0.05)


def resolved_setting_travels_with_the_state(det, fm, name: str, older_value: str) -> None:
    """An "auto" setting resolved at fit (``det.<name>_``) is saved in the bundle state and restores the
    same scores; a state written before "auto" existed names the setting in its params only."""
    meta, arrays = det.get_state()
    assert meta[name] == getattr(det, f"{name}_")
    restored = AutoencoderDetector.from_state(json.loads(json.dumps(meta)), arrays)
    np.testing.assert_allclose(restored.decision_function(fm), det.decision_function(fm), rtol=1e-6)
    old = json.loads(json.dumps(meta))
    del old[name]
    old["params"][name] = older_value
    assert getattr(AutoencoderDetector.from_state(old, arrays), f"{name}_") == older_value


def test_auto_score_is_the_likelihood_with_categorical_columns_and_the_plain_error_without(encoded):
    _, fm, _ = encoded
    num = numeric_only(fm)
    mixed = AutoencoderDetector(**FAST).fit(fm)
    numeric = AutoencoderDetector(**FAST).fit(num)
    assert mixed.score_ == "nll" and numeric.score_ == "mse"
    # all-numeric, "auto" scores exactly as an explicit "mse"
    explicit = AutoencoderDetector(**FAST, score="mse").fit(num)
    np.testing.assert_allclose(numeric.decision_function(num), explicit.decision_function(num), rtol=1e-6)
    resolved_setting_travels_with_the_state(numeric, num, "score", "nll")
    with pytest.raises(ValueError, match="score"):
        AutoencoderDetector(**FAST, score="likelihood").fit(num)


def test_input_offset_moves_features_whose_median_is_an_edge_of_their_range():
    from engine.detectors.deep.autoencoder import input_offset

    x = np.array([[0.0, 1.0, -1.0, 5.0], [0.0, 1.0, 0.0, 5.0], [0.0, 0.2, 1.0, 5.0], [3.0, 1.0, 2.0, 5.0]],
                 dtype=np.float32)
    # column 0: mostly 0, its minimum; 1: mostly 1, its maximum; 2: spread; 3: constant
    assert input_offset(x).tolist() == [1.0, -1.0, 0.0, 0.0]
    assert input_offset(x, np.array([0, 1, 2])).tolist() == [0.0, -1.0, 0.0, 0.0]  # only those rows: 0 is constant
    assert input_offset(x[:, :0]).shape == (0,)


def test_offset_inputs_change_training_only_not_what_the_model_reports():
    """A zero-inflated rate next to a normal feature: the network sees the rate offset by +1, but the
    expected values are in the encoded units and the bundle state carries the offset."""
    from engine.features import FeatureMatrix

    rng = np.random.default_rng(0)
    rate = np.where(rng.random(800) < 0.9, 0.0, rng.random(800) * 3)
    values = np.column_stack([rate, rng.normal(size=800)]).astype(np.float32)
    fm = FeatureMatrix(values)
    det = AutoencoderDetector(hidden_layers=[16], latent_dim=2, epochs=30, batch_size=64, device="cpu").fit(fm)
    assert det.input_offset_.tolist() == [1.0, 0.0]
    expected = det.expected_values(fm)
    typical = values[:, 0] == 0.0
    assert abs(float(np.median(expected[typical, 0]))) < 0.3  # near 0, not near the offset 1
    meta, arrays = det.get_state()
    restored = AutoencoderDetector.from_state(json.loads(json.dumps(meta)), arrays)
    np.testing.assert_allclose(restored.decision_function(fm), det.decision_function(fm), rtol=1e-6)
    del arrays["input_offset"]  # a bundle from before the offset: the network was trained without one
    assert AutoencoderDetector.from_state(json.loads(json.dumps(meta)), arrays).input_offset_.tolist() == [0.0, 0.0]


def test_auto_aggregate_is_the_fourth_power_norm_for_squared_errors_and_l2_for_likelihoods(encoded):
    _, fm, _ = encoded
    num = numeric_only(fm)
    mixed = AutoencoderDetector(**FAST).fit(fm)
    numeric = AutoencoderDetector(**FAST).fit(num)
    assert (mixed.score_, mixed.aggregate_) == ("nll", "l2") and (numeric.score_, numeric.aggregate_) == ("mse", "l4")
    # the score is the norm of the columns' excess terms (+ a small tie-break), the shares its powers'
    raw = numeric._column_scores(num)
    excess = numeric._excess(raw)
    np.testing.assert_allclose(numeric.decision_function(num), (excess ** 4).sum(axis=1) ** 0.25 + 1e-3 * raw.sum(axis=1),
                               rtol=1e-6)
    shares = numeric.feature_contributions(num)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-6)
    top = int(np.argmax(numeric.decision_function(num)))
    np.testing.assert_allclose(shares[top], excess[top] ** 4 / (excess[top] ** 4).sum(), rtol=1e-5)
    # l2 gives the earlier score on the same model
    numeric.aggregate_ = "l2"
    np.testing.assert_allclose(numeric.decision_function(num), np.sqrt((excess ** 2).sum(axis=1)) + 1e-3 * raw.sum(axis=1),
                               rtol=1e-6)
    numeric.aggregate_ = "l4"
    resolved_setting_travels_with_the_state(numeric, num, "aggregate", "l2")
    with pytest.raises(ValueError, match="aggregate"):
        AutoencoderDetector(**FAST, aggregate="max").fit(num)


@pytest.mark.parametrize("score", ["nll", "mse"])
def test_one_forward_pass_gives_scores_contributions_and_expected_values(encoded, score, monkeypatch):
    """``score_and_explain`` runs the network once per batch (the three methods one by one ran it four
    times) and gives exactly what they give."""
    _, fm, _ = encoded
    det = AutoencoderDetector(**FAST, score=score).fit(fm)
    reference = (det.score_samples(fm), det.feature_contributions(fm), det.expected_values(fm))
    calls = []
    original = AutoencoderDetector._forward
    monkeypatch.setattr(AutoencoderDetector, "_forward", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    out = det.score_and_explain(fm)
    assert len(calls) == 1
    for got, want in zip((out.scores, out.contributions, out.expected), reference, strict=True):
        np.testing.assert_array_equal(got, want)
    calls.clear()
    lean = det.score_and_explain(fm, expected=False)
    assert len(calls) == 1 and lean.expected is None
    np.testing.assert_array_equal(lean.scores, reference[0])
    np.testing.assert_array_equal(lean.contributions, reference[1])
