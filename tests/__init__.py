"""safemedia test suite; helpers importable as ``tests.<module>``."""
