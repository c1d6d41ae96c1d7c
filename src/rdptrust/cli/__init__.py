"""Command-line interface (click); wiring only."""
