"""Training with SentenceTransformerTrainer: shared run mechanics (devices, precision, LoRA, checkpoints)."""
