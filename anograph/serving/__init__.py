"""Using a trained model on new footage: video and live scoring, alert thresholds,
explanations and overlays."""
