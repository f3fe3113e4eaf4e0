"""Adversarial and load evidence: hostile images, bombs, HTTP tricks, faults, load (issue 6)."""
