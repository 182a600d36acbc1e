"""Training settings: nested config, recipes, flat names, validation messages, and the plan."""

import math

import pytest

from softreg.errors import UserInputError
from softreg.training import RECIPES, Runtime, TrainConfig, make_config, make_plan, with_settings
from softreg.training.config import config_from_flat, flat_settings
from softreg.training.plan import describe


@pytest.mark.parametrize(
    "settings, match",
    [
        (dict(lr=0), r"lr must be a number in \(0, 1e6\]; got 0\. Example: lr=0\.1\."),
        (dict(lr=math.nan), r"lr must be a number in \(0, 1e6\]; got nan"),
        (dict(lr=1e300), r"lr must be a number in \(0, 1e6\]; got 1e\+300"),
        (dict(epochs=0), r"epochs must be an integer in \[1, 10000000\]"),
        (dict(batch_size=-1), r"batch_size must be an integer in \[0, 2\*\*40\]"),
        (dict(optimizer="rmsprop"), "optimizer must be one of sgd, adam, lbfgs; got 'rmsprop'"),
        (dict(model="svm"), "model must be one of"),
        (dict(activation="gelu"), "activation must be one of"),
        (dict(momentum=1.0), r"momentum must be a number in \[0, 1\); got 1\.0"),
        (dict(hidden=[10, 0]), "hidden must be a list of positive layer sizes"),
        (dict(early_stopping=True), "early_stopping needs a validation split"),
        (dict(optimizer="lbfgs", l1=0.1), "L1 is not smooth"),
        (dict(seed=2**64), r"seed must be an integer in \[0, 4294967295\]"),
        (dict(colour="red"), "unknown training setting 'colour'"),
    ],
)
def test_config_rejects_bad_settings(settings, match):
    with pytest.raises(UserInputError, match=match):
        make_config(**settings)


def test_nested_config_round_trips_and_rejects_unknown_keys():
    config = make_config(model="mlp", hidden=[32, 16], lr=0.01, l2=0.0, seed=3, validation_fraction=0.1)
    assert config.model.kind == "mlp" and config.model.hidden == [32, 16]
    assert config.optim.lr == 0.01 and config.stop.validation_fraction == 0.1 and config.seed == 3
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config_from_flat(flat_settings(config), config.recipe) == config
    doc = config.to_dict()
    doc["optim"]["colour"] = "red"
    with pytest.raises(UserInputError, match="unknown optim setting"):
        TrainConfig.from_dict(doc)


def test_a_linear_model_records_no_hidden_layers():
    doc = make_config().to_dict()
    assert "hidden" not in doc["model"] and "activation" not in doc["model"]
    assert TrainConfig.from_dict(doc) == make_config()


def test_recipes_pick_their_defaults_and_options_override_them():
    assert make_config(data_name="toy").recipe == "lesson-table"
    assert make_config(data_name="toy").optim.dtype == "float64"
    assert make_config(model="mlp").recipe == "default-mlp"
    lesson = make_config("lesson", lr=0.5)
    assert (lesson.seed, lesson.optim.batch_size, lesson.optim.lr) == (777, 100, 0.5)
    assert with_settings(lesson, epochs=2).optim.epochs == 2 and lesson.optim.epochs == 15
    assert set(RECIPES) == {"default", "default-mlp", "lesson", "lesson-table"}
    with pytest.raises(UserInputError, match="unknown recipe 'fast'"):
        make_config("fast")


def test_plan_scales_batch_size_and_epochs_with_the_data():
    auto = make_config()
    plan = make_plan(auto, 60000, 784)
    assert (plan.batch_size, plan.epochs, plan.steps_per_epoch) == (512, 6, 118)
    assert plan.average_from == plan.total_steps - int(0.75 * plan.total_steps) + 1
    assert plan.threads == 1  # minibatches run on one thread
    small = make_plan(auto, 1437, 64)
    assert (small.batch_size, small.epochs) == (32, 16)
    assert make_plan(auto, 100, 4).batch_size == 16
    fixed = make_plan(make_config(batch_size=0, epochs=3), 1000, 4)
    assert (fixed.batch_size, fixed.epochs, fixed.full_batch) == (1000, 3, True)
    assert make_plan(make_config(optimizer="lbfgs", lr=1.0), 500, 4).average_from is None
    assert make_plan(make_config(), 60000, 784, Runtime(threads=2)).threads == 2


def test_plan_learning_rate_follows_the_schedule():
    plan = make_plan(make_config(schedule="cosine", lr=0.4, batch_size=10, epochs=1), 100, 3)
    lrs = [plan.lr_at(k) for k in range(plan.total_steps)]
    assert lrs[4] == pytest.approx(0.2)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert lrs == sorted(lrs, reverse=True)
    constant = make_plan(make_config(lr=0.3), 100, 3)
    assert {constant.lr_at(k) for k in range(10)} == {0.3}


def test_drop_last_with_too_large_a_batch_is_refused():
    with pytest.raises(UserInputError, match="leaves no full batch"):
        make_plan(make_config(batch_size=200, drop_last=True), 100, 3)


def test_describe_says_what_training_will_do():
    config = make_config()
    lines = describe(config, make_plan(config, 60000, 784), "standardize", "cpu")
    text = "\n".join(lines)
    for words in ("SGD lr 0.1 momentum 0.9", "L2 0.001", "batch 512", "118 updates per epoch", "6 epochs",
                  "weights averaged from update", "standardize", "seed 0", "recipe default"):
        assert words in text, words


@pytest.mark.parametrize("settings, match", [
    (dict(threads=-1), "threads must be an integer"),
    (dict(checkpoint_every=-2), "checkpoint_every must be an integer"),
    (dict(checkpoint_seconds=math.inf), "checkpoint_seconds must be a finite number >= 0"),
    (dict(device=""), "device must be a name"),
])
def test_runtime_rejects_bad_settings(settings, match):
    with pytest.raises(UserInputError, match=match):
        Runtime(**settings).validate()
