"""PyTorch reference maps for the CAM parity tests, made in a subprocess (never imported with TensorFlow)."""
