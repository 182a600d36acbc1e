"""The estimators' shared docstring parts: which solver a default uses and why, and the parameters."""

LINEAR_DOC = """
    ``optimizer='auto'`` (the default) uses full-batch L-BFGS below 10,000 samples (and up to a
    million parameters): there it reaches the optimum of the penalised cost in a fraction of a
    second, where minibatch SGD stops 10-30% above it. From 10,000 samples it uses the command
    line's recipe: momentum SGD with minibatches of n/50 rows (16 to 512), about 700 updates,
    the weights averaged over the last 75% of them, and a step set from the data's scale
    (softreg.training.auto); on standardised Fashion-MNIST that reaches the optimum's test accuracy in
    under a second, against minutes for L-BFGS or LogisticRegression (BENCHMARKS.md,
    "Estimators"). ``optimizer_``, ``learning_rate_`` and ``batch_size_`` say what a fit used.
    ``partial_fit`` runs momentum SGD (no averaging). Features should be on comparable scales
    (StandardScaler for dense data; TF-IDF or other l2-normalised rows for text).
"""

MLP_DOC = """Multi-layer perceptron: fully connected hidden layers, then a softmax head
    (a single logit for two classes).

    Defaults follow scikit-learn's MLPClassifier: Adam with learning rate 0.001, minibatches
    of 200, up to 200 epochs, stopped when the training cost stalls. A network's cost is not
    convex, so there is no single optimum to reach faster; Adam at these settings trained the
    digits and Fashion-MNIST networks to scikit-learn's accuracy (BENCHMARKS.md). Sparse input
    goes through a sparse first layer.

    hidden_layer_sizes : tuple of int >= 1, default=(100,)
        Units per hidden layer.
    activation : {'relu', 'tanh', 'sigmoid', 'logistic'}, default='relu'
        'logistic' is scikit-learn's name for 'sigmoid'.
"""

PARAMETERS_DOC = """
    Parameters
    ----------
    penalty : {'l2', 'l1', 'elasticnet'} or None, default='l2'
        Penalty on the weight matrices; 'l1' and 'elasticnet' need optimizer 'sgd' or 'adam'.
    alpha : float >= 0 or 'auto', default=1e-4
        Penalty strength: l2 = alpha * (1 - r), l1 = alpha * r with r = 1, 0 or l1_ratio.
        LogisticRegression(C=C) minimises the same cost with alpha = 1 / (C * n_samples).
        'auto' (penalty 'l2', fit only): the penalty with the best validation log loss (or a
        clearly better validation accuracy) on a regularisation path over a stratified 20% of
        the rows, warm-started from the strongest, then a fit on every row; the choice is
        ``alpha_``, the path ``l2_path_`` (softreg.training.l2path).
    l1_ratio : float in [0, 1], default=0.15
        Share of L1 in the elastic net.
    class_weight : dict, 'balanced' or None, default=None
        Weight per class, multiplied into the sample weights.
    optimizer : {'auto', 'lbfgs', 'sgd', 'adam'}
        'lbfgs' takes full-batch steps (up to 20 line-searched iterations per epoch); 'sgd' is
        momentum SGD, 'adam' Adam, both on minibatches; 'auto': see above.
    learning_rate : float > 0 or 'auto', default='auto'
        'auto': 1.0 for lbfgs (its first trial step), 0.001 for adam, and for sgd a step set
        from the data's scale (the linear models) or 0.01 (the MLP).
    schedule : {'constant', 'cosine'}, default='constant'
        Learning rate over a fit's updates: constant, or a cosine decay to 0 (sgd and adam).
    average : float in [0, 1] or 'auto', default='auto'
        Average the weights over this final share of a fit's updates (sgd and adam; 0 = off;
        not with an L1 part or early_stopping). An averaged fit follows its plan of about 700
        updates (at most max_iter epochs) instead of the stopping rule. 'auto' is 0.75 when
        optimizer='auto' chose SGD (the recipe) and 0 for an optimizer named explicitly.
    momentum : float in [0, 1), default=0.9
        SGD momentum.
    batch_size : int >= 1 or 'auto', default='auto'
        Minibatch size for sgd and adam; 'auto' is n/50 as a power of two in [16, 512] (the
        linear models) or min(200, n_samples) (the MLP).
    max_iter : int >= 1
        Most epochs per fit.
    tol, n_iter_no_change : float >= 0, int >= 1, default=1e-4, 10
        Stop once the training cost (validation cost with early_stopping) has not fallen
        by more than tol for n_iter_no_change epochs in a row (not for an averaged plan).
    early_stopping : bool, default=False
        Hold out validation_fraction of the rows (stratified), score them every epoch and
        keep the best epoch's weights.
    validation_fraction : float in (0, 1), default=0.1
    warm_start : bool, default=False
        fit continues from the previous fit's weights (the optimizer starts afresh).
    random_state : int, RandomState or None, default=None
        Seeds the initial weights, the sample order and the validation split.
    device : str, default='cpu'
        'cpu', 'cuda', 'cuda:N' or 'auto'.
    verbose : int >= 0, default=0
        Print the plan and about ten epoch lines per fit (every epoch from 2). With
        scikit-learn 1.9 or later, ``set_callbacks`` also takes its estimator callbacks
        (``sklearn.callback.ProgressBar``, ``ScoringMonitor``): each epoch is one task.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    n_iter_ : int, epochs run
    optimizer_, learning_rate_, batch_size_ : the optimizer, step and batch size the last fit used
    alpha_ : float, the penalty strength the last fit used (the choice of alpha='auto')
    model_ : softreg.models.Classifier, the trained network
    history_ : softreg.training.History, one row per epoch
    loss_curve_ : list of float, mean training cross-entropy of each epoch (without the penalty)
"""
