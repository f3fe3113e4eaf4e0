"""safemedia's configuration: one frozen, keyword-only :class:`Config`.

Usage::

    config = Config.from_file("safemedia.toml")        # the [safemedia] table
    config = Config.from_mapping({"hash_lists": ["lists/known.txt"]})
    config = Config.load()      # SAFEMEDIA_CONFIG, else ./safemedia.toml, plus SAFEMEDIA_* env

Every key can be overridden by an environment variable ``SAFEMEDIA_<KEY>`` (nested SMTP keys as
``SAFEMEDIA_SMTP_<KEY>``). A bad key or value raises :class:`ConfigError` naming it.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safemedia.verdict import Reason

DEFAULT_CONFIG_FILE = "safemedia.toml"
ENV_PREFIX = "SAFEMEDIA_"
DEFAULT_STORE = "sqlite:///safemedia-state.db"

DEFAULT_BLOCK_BODY = (
    "<!doctype html><html><head><meta charset=utf-8><title>451 Unavailable For Legal Reasons"
    "</title></head><body><h1>Unavailable For Legal Reasons</h1><p>This image has been blocked "
    "by the site's content safety filter.</p></body></html>"
)


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ListConfig:
    """One hash list: a file, with an optional name, algorithm, distance override and switch."""

    path: Path
    name: str = ""
    algorithm: str | None = None
    distance: int | None = None
    enabled: bool = True

    @property
    def display_name(self) -> str:
        return self.name or self.path.stem


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpConfig:
    """How to reach the SMTP server that notifications go through."""

    host: str = "localhost"
    port: int = 25
    sender: str = "safemedia@localhost"
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    starttls: bool = False
    use_tls: bool = False
    timeout: float = 30.0
    cafile: str | None = None

    def resolved_password(self) -> str | None:
        """The password, or the value of the environment variable ``password_env`` names."""
        if self.password_env:
            return os.environ.get(self.password_env)
        return self.password


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything an operator sets. Immutable; build a new one to change it."""

    hash_lists: tuple[ListConfig, ...] = ()
    allow_lists: tuple[Path, ...] = ()
    store: str = DEFAULT_STORE
    max_body_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 100_000_000
    max_frames: int = 64
    max_total_frame_pixels: int = 100_000_000
    full_resolution: bool = False
    algorithms: tuple[str, ...] = ("pdq",)
    distances: Mapping[str, int] = field(default_factory=dict)
    pdq_quality_min: int = 50
    dihedral: bool = True
    allow_uninspectable: frozenset[Reason] = frozenset()
    cache_size: int = 10_000
    scan_concurrency: int = 2
    list_reload_interval: float = 5.0
    block_status: int = 451
    block_body: str = DEFAULT_BLOCK_BODY
    record_client_address: bool = False
    notify_to: str | None = None
    notify_digest_window: float = 600.0
    notify_retry_initial: float = 5.0
    notify_retry_max: float = 300.0
    on_detection: str | None = None
    smtp: SmtpConfig = field(default_factory=SmtpConfig)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base_dir: Path | None = None) -> Config:
        """Build from a mapping of keys (a TOML table, Django/Flask settings dict)."""
        config: Config = _build(cls, data, base_dir or Path.cwd(), where="")
        return config

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, env: bool = True) -> Config:
        """Read the ``[safemedia]`` table of a TOML file; relative paths are relative to it."""
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{p}: cannot read config: {exc}") from None
        table = raw.get("safemedia")
        if not isinstance(table, dict):
            raise ConfigError(f"{p}: no [safemedia] table")
        data = dict(table)
        data.setdefault("store", DEFAULT_STORE)
        if env:
            data = apply_env(data, os.environ)
        config: Config = _build(cls, data, p.resolve().parent, where=f"{p}: ")
        return config

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Config:
        """The explicit ``path``, else ``$SAFEMEDIA_CONFIG``, else ``./safemedia.toml``."""
        chosen = path or os.environ.get("SAFEMEDIA_CONFIG") or DEFAULT_CONFIG_FILE
        return cls.from_file(chosen)

    def distance_for(self, algorithm: str, default: int) -> int:
        """The configured match distance for ``algorithm``, else ``default``."""
        return self.distances.get(algorithm, default)

    def blocks_uninspectable(self, reason: Reason) -> bool:
        """Whether an uninspectable body with ``reason`` is blocked (fail closed)."""
        return reason not in self.allow_uninspectable


def apply_env(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``SAFEMEDIA_<KEY>`` / ``SAFEMEDIA_SMTP_<KEY>`` variables onto ``data``."""
    out = dict(data)
    smtp = dict(out.get("smtp") or {})
    smtp_keys = {f.name for f in dataclasses.fields(SmtpConfig)}
    top_keys = {f.name for f in dataclasses.fields(Config)} - {"smtp"}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "SAFEMEDIA_CONFIG":
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key.startswith("smtp_") and key[5:] in smtp_keys:
            smtp[key[5:]] = value
        elif key in top_keys:
            out[key] = value
        else:
            raise ConfigError(f"unknown environment variable {name}")
    if smtp:
        out["smtp"] = smtp
    return out


def _build(cls: type[Any], data: Mapping[str, Any], base_dir: Path, *, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}expected a table of keys, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"{where}unknown key {key!r} (known: {', '.join(sorted(fields))})")
        try:
            kwargs[key] = _convert(key, hints[key], value, base_dir, where)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}bad value for {key!r}: {exc}") from None
    obj = cls(**kwargs)
    if isinstance(obj, Config):
        _validate(obj, where)
    return obj


def _convert(key: str, hint: Any, value: Any, base_dir: Path, where: str) -> Any:
    if key == "hash_lists":
        items = _as_list(value)
        return tuple(_list_config(item, base_dir, where) for item in items)
    if key == "allow_lists":
        return tuple(_path(v, base_dir) for v in _as_list(value))
    if key == "smtp":
        if isinstance(value, SmtpConfig):
            return value
        return _build(SmtpConfig, value, base_dir, where=f"{where}smtp.")
    if key == "allow_uninspectable":
        return frozenset(Reason(str(v)) for v in _as_list(value))
    if key == "distances":
        if isinstance(value, str):
            value = dict(part.split("=", 1) for part in value.split(",") if part.strip())
        if not isinstance(value, Mapping):
            raise TypeError("expected a table of algorithm = distance")
        return {str(k).strip(): _int(v) for k, v in value.items()}
    if key == "algorithms":
        return tuple(str(v).strip().lower() for v in _as_list(value))
    if key == "store":
        return _store_url(_scalar(str, value), base_dir)
    return _scalar(hint, value)


def _scalar(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or value == "":
            return None
        return _scalar(args[0], value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if hint is int:
        return _int(value)
    if hint is float:
        if isinstance(value, bool):
            raise TypeError("expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value.strip().replace("_", ""))
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        separator = ";" if ";" in value else os.pathsep
        return [v for v in (p.strip() for p in value.split(separator)) if v]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise TypeError(f"expected a list, got {type(value).__name__}")


def _path(value: Any, base_dir: Path) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"expected a path, got {type(value).__name__}")
    p = Path(value).expanduser()
    return p if p.is_absolute() else base_dir / p


def _store_url(value: str, base_dir: Path) -> str:
    """Make a relative ``sqlite:///`` path absolute against ``base_dir`` (the config folder)."""
    prefix = "sqlite:///"
    if not value.startswith(prefix):
        return value
    return prefix + str(_path(value[len(prefix) :], base_dir))


def _list_config(item: Any, base_dir: Path, where: str) -> ListConfig:
    if isinstance(item, ListConfig):
        return item
    if isinstance(item, (str, os.PathLike)):
        return ListConfig(path=_path(item, base_dir))
    if isinstance(item, Mapping):
        data = dict(item)
        if "path" not in data:
            raise ConfigError(f"{where}hash_lists entry without 'path': {item!r}")
        data["path"] = _path(data["path"], base_dir)
        built: ListConfig = _build(ListConfig, data, base_dir, where=f"{where}hash_lists.")
        return built
    raise ConfigError(f"{where}bad hash_lists entry: {item!r}")


def _validate(config: Config, where: str) -> None:
    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{where}bad value for {key!r}: {message}")

    need(config.max_body_bytes > 0, "max_body_bytes", "must be positive")
    need(config.max_pixels > 0, "max_pixels", "must be positive")
    need(config.max_frames > 0, "max_frames", "must be positive")
    need(config.max_total_frame_pixels > 0, "max_total_frame_pixels", "must be positive")
    need(config.cache_size >= 0, "cache_size", "must not be negative")
    need(config.scan_concurrency > 0, "scan_concurrency", "must be positive")
    need(400 <= config.block_status <= 599, "block_status", "must be a 4xx or 5xx status")
    need(0 <= config.pdq_quality_min <= 100, "pdq_quality_min", "must be 0-100")
    need(
        config.store.startswith(("sqlite:///", "memory:")),
        "store",
        "must be sqlite:///PATH or memory: (there is no backend for several hosts yet)",
    )
    need(config.notify_digest_window >= 0, "notify_digest_window", "must not be negative")
    need(config.notify_retry_initial > 0, "notify_retry_initial", "must be positive")
    need(
        config.notify_retry_max >= config.notify_retry_initial,
        "notify_retry_max",
        "must be at least notify_retry_initial",
    )
    for name, distance in config.distances.items():
        need(distance >= 0, "distances", f"{name} distance must not be negative")
