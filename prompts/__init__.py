"""Prompt texts (FIM, review, PR description) loaded by name."""
