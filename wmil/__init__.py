"""WMIL: a from-scratch transformer that learns goal-directed behaviour from a parent environment."""

__version__ = "0.1.0"
