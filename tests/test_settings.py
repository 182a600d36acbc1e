"""One declaration per setting: what the command line, the config check, the run schema and the
estimators accept all come from softreg.settings."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from softreg import settings as S
from softreg.errors import UserInputError
from softreg.training.config import Runtime, TrainConfig, make_config

PATCH = """
import dataclasses
from softreg import settings as S
old = S.SETTINGS["optimizer"]
S.SETTINGS["optimizer"] = dataclasses.replace(old, kind=S.Choice(old.kind.choices + ("fakeopt",)))
"""


def _with_fake_optimizer(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PATCH + code], capture_output=True, text=True, timeout=120)


def test_a_new_optimizer_in_the_declaration_reaches_the_cli_help():
    done = _with_fake_optimizer("from softreg.cli import main\nmain(['train', '--help'])")
    assert done.returncode == 0, done.stderr
    assert "--optimizer [sgd|adam|lbfgs|fakeopt]" in done.stdout


def test_a_new_optimizer_in_the_declaration_reaches_the_config_check():
    done = _with_fake_optimizer("from softreg.training.config import make_config\n"
                                "print(make_config(optimizer='fakeopt').optim.optimizer)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fakeopt"
    with pytest.raises(UserInputError, match="optimizer must be one of sgd, adam, lbfgs; got 'fakeopt'"):
        make_config(optimizer="fakeopt")  # this process's declaration has no such optimizer


@pytest.mark.slow
def test_a_new_optimizer_in_the_declaration_reaches_the_estimators_constraints():
    done = _with_fake_optimizer("from softreg.estimators.classifiers import SoftmaxRegressionClassifier as C\n"
                                "print(C._parameter_constraints['optimizer'][0].is_satisfied_by('fakeopt'))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_every_setting_of_the_config_and_runtime_is_declared_and_defaults_match():
    config, runtime = TrainConfig(), Runtime()
    seen = set()
    for section in S.SECTIONS:
        for f in dataclasses.fields(getattr(config, section)):
            declared = [s for s in S.in_section(section) if s.field == f.name]
            assert len(declared) == 1, (section, f.name)
            assert getattr(getattr(config, section), f.name) == declared[0].default
            seen.add(declared[0].name)
    for f in dataclasses.fields(runtime):
        assert getattr(runtime, f.name) == S.default(f.name)
        seen.add(f.name)
    from softreg.data import DataSource

    for f in dataclasses.fields(DataSource):
        name = "data" if f.name == "spec" else f.name
        assert getattr(DataSource(), f.name) == S.default(name) and S.setting(name).section == "source"
        seen.add(name)
    outside = {s.name for s in S.SETTINGS.values() if s.section in ("track", "export")}  # not TrainConfig's
    assert seen | {"seed", "recipe"} | outside == set(S.SETTINGS)


@pytest.mark.parametrize("name", [s.name for s in S.SETTINGS.values()])
def test_each_declared_default_follows_its_own_rule(name):
    S.check(name, S.default(name))


def test_every_declared_choice_has_an_implementation():
    from softreg.models.networks import ACTIVATIONS
    from softreg.models.preprocess import Preprocess
    from softreg.training.updates import make_updater
    from softreg.models.networks import SoftmaxRegression

    assert set(ACTIVATIONS) == set(S.setting("activation").choices)
    for kind in S.setting("preprocess").choices:
        if kind != "auto":
            assert Preprocess(3, kind).kind == kind
    net = SoftmaxRegression(3, 2)
    for name in S.setting("optimizer").choices:
        if name != "lbfgs":
            make_updater(net, name, 0.9, 0.0, 0.0)
    for recipe, values in S.RECIPES.items():
        assert make_config(recipe).recipe == recipe
        for name, value in values.items():
            S.check(name, value)


@pytest.mark.parametrize("name, value, message", [
    ("lr", 0, r"lr must be a number in \(0, 1e6\]; got 0\. Example: lr=0\.1\."),
    ("momentum", 1.0, r"momentum must be a number in \[0, 1\); got 1\.0"),
    ("l2", "often", r"l2 must be a number in \[0, 1e6\] or auto; got 'often'"),
    ("epochs", 2.5, r"epochs must be an integer in \[1, 10000000\], or unset"),
    ("hidden", [3, 0], "hidden must be a list of positive layer sizes"),
    ("shuffle", "yes", "shuffle must be true or false; got 'yes'"),
])
def test_a_value_breaking_its_rule_is_named_with_the_rule_and_an_example(name, value, message):
    with pytest.raises(UserInputError, match=message):
        S.check(name, value)


def test_the_command_line_names_a_setting_by_its_flag():
    with pytest.raises(UserInputError, match=r"^--batch-size must be an integer in \[0, 2\*\*40\].*Example: "
                                             r"--batch-size 100\.$"):
        S.check_flags({"batch_size": -1, "lr": None})
