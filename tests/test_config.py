"""Config: TOML file, environment overrides, mappings, and errors that name the key."""

from pathlib import Path

import pytest

from safemedia.config import Config, ConfigError, apply_env
from safemedia.verdict import Reason


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "safemedia.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[safemedia]\n"
        'hash_lists = ["lists/a.txt", {path = "b.csv", name = "ncmec", distance = 20}]\n'
        'notify_to = "ops@example.org"\n[safemedia.smtp]\nhost = "mail"\nport = 2525\n',
    )
    config = Config.from_file(path, env=False)
    assert config.hash_lists[0].path == tmp_path / "lists/a.txt"
    assert config.hash_lists[1].display_name == "ncmec"
    assert config.hash_lists[1].distance == 20
    assert config.smtp.port == 2525
    assert config.notify_to == "ops@example.org"


def test_environment_overrides_single_keys() -> None:
    data = apply_env(
        {"max_frames": 10},
        {"SAFEMEDIA_MAX_FRAMES": "3", "SAFEMEDIA_SMTP_PORT": "587", "OTHER": "x"},
    )
    config = Config.from_mapping(data)
    assert config.max_frames == 3
    assert config.smtp.port == 587


def test_unknown_key_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_body_byte"):
        Config.from_file(write(tmp_path, "[safemedia]\nmax_body_byte = 1\n"), env=False)


def test_bad_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match="max_frames"):
        Config.from_mapping({"max_frames": "many"})
    with pytest.raises(ConfigError, match="block_status"):
        Config.from_mapping({"block_status": 200})
    with pytest.raises(ConfigError, match="store"):
        Config.from_mapping({"store": "redis://localhost/0"})


def test_uninspectable_reasons_are_blocked_unless_allowed() -> None:
    config = Config.from_mapping({"allow_uninspectable": ["too_large"]})
    assert not config.blocks_uninspectable(Reason.TOO_LARGE)
    assert config.blocks_uninspectable(Reason.UNDECODABLE)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Config.from_file(tmp_path / "nope.toml")
