"""Apps the integration tests serve with real servers."""
