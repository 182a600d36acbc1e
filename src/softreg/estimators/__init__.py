"""scikit-learn estimators over softreg's models and trainer."""

from softreg.estimators.classifiers import LogisticRegressionClassifier, MLPClassifier, SoftmaxRegressionClassifier

__all__ = ["SoftmaxRegressionClassifier", "LogisticRegressionClassifier", "MLPClassifier"]
