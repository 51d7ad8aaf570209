"""Running the product over time: the model registry and the nightly retraining decisions."""
