"""nerftune: hyperparameter sweeps of nerfstudio NeRF training on Ray Tune, with Optuna, ASHA and MLflow."""

__version__ = "0.1.0"
