"""Hardware-aware architecture search (``edgesep search``): spaces, measured costs, proxy
training, a latency predictor, and the Optuna driver. Needs the ``nas`` extra (optuna)."""
