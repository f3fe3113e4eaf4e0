"""Fixtures shared by the adversarial suites: the synthetic site (built once a session)."""

from __future__ import annotations

import pytest

from tests.adversarial.site import Site, build_site


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build_site(tmp_path_factory.mktemp("adversarial-site"))
