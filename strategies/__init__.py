"""Example strategies to copy: each is a BaseStrategy subclass."""
