"""The math: the networks and their gradients, the stored preprocessing, the classifier that joins
them, the lessons' functional core and the sparse kernels. Nothing here reads or writes files."""

from softreg.models.classifier import Classifier, weight_templates
from softreg.models.networks import (MLP, LinearModel, LogisticRegression, ModelConfig, SoftmaxRegression,
                                     build_model, loss_from_scores, scores_to_labels, scores_to_log_proba)
from softreg.models.preprocess import Moments, Preprocess

__all__ = ["Classifier", "weight_templates", "MLP", "LinearModel", "LogisticRegression", "ModelConfig",
           "SoftmaxRegression", "build_model", "loss_from_scores", "scores_to_labels", "scores_to_log_proba",
           "Moments", "Preprocess"]
