"""Benchmarks; each module runs as one command (see its docstring)."""
