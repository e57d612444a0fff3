"""The venue's configuration: one dataclass, filled from defaults, a TOML file, ``RIALTO_*`` and flags.

Precedence, lowest first: the defaults below; a TOML file (``--config PATH``
or ``RIALTO_CONFIG``); environment variables; command-line flags.

Every scalar field has an environment variable: ``RIALTO_`` + the field's
name in upper case, nested sections joined by ``_``::

    RIALTO_PORT=8001              port
    RIALTO_DATA=/var/lib/rialto   data_dir (also RIALTO_DATA_DIR)
    RIALTO_ENGINE=rust            engine (the same variable core.engine reads)
    RIALTO_ARGON2=cheap           argon2 ("standard" or "cheap": tests only)
    RIALTO_RATE_ACCOUNT_BURST=50  rate.account_burst
    RIALTO_FAUCET_ENABLED=0       faucet.enabled

The TOML file uses the same names: top-level keys, ``[rate]``, ``[faucet]``
(with ``[faucet.per_request]`` and ``[faucet.per_hour]`` tables of asset ->
decimal string), ``[[assets]]`` and ``[[instruments]]`` to replace the two
default markets.

The profile picks the adapters, in one place: ``control.adapters``.
``embedded``: file journals, SQLite, everything in one process. ``local``:
Redis Streams logs, PostgreSQL projections and auth, Redis for rate limits,
client order ids and market data, several processes under the supervisor.
``aws``: the same processes on Kinesis, DynamoDB, Aurora PostgreSQL,
ElastiCache Redis and S3 (``[aws]``).

Shards (``[[shards]]``, local and aws profiles): each names the symbols one
engine process owns; the default is one shard with every symbol. A shard's
id is its place in the list, and it is part of every sequence number it
stamps (``services.matcher.shard.SHARD_BITS``), so order ids are unique
across shards.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from core.instrument import Asset, Instrument, make_instrument

PROFILES = ("embedded", "local", "aws")
AVAILABLE_PROFILES = PROFILES
MAX_SHARDS = 64
ENV_PREFIX = "RIALTO_"


class ConfigError(ValueError):
    """A configuration value that cannot be used."""


@dataclass
class AssetSpec:
    id: int
    code: str
    decimals: int


@dataclass
class InstrumentSpec:
    """One market as configured: sizes as decimal strings, limits in ticks and lots."""

    id: int
    symbol: str
    base: str
    quote: str
    tick_size: str
    lot_size: str
    min_quantity: int = 1
    max_quantity: int = 10**8
    max_price: int = 10**8
    price_band_bps: int = 0
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0
    reference_price: int = 0


def default_assets() -> list[AssetSpec]:
    return [AssetSpec(1, "BTC", 8), AssetSpec(2, "ETH", 8), AssetSpec(3, "USD", 6)]


def default_instruments() -> list[InstrumentSpec]:
    return [
        # tick 0.01 USD x lot 0.0001 BTC = 1 micro-USD; 0.0001 .. 100 BTC; prices up to 1,000,000.00;
        # a 10 % band around the last trade (60,000.00 before the first).
        InstrumentSpec(1, "BTC-USD", "BTC", "USD", "0.01", "0.0001", min_quantity=1, max_quantity=1_000_000,
                       max_price=100_000_000, price_band_bps=1_000, maker_fee_bps=10, taker_fee_bps=20,
                       reference_price=6_000_000),
        # tick 0.01 USD x lot 0.001 ETH = 10 micro-USD; 0.001 .. 1,000 ETH; prices up to 100,000.00;
        # a 10 % band around the last trade (3,000.00 before the first).
        InstrumentSpec(2, "ETH-USD", "ETH", "USD", "0.01", "0.001", min_quantity=1, max_quantity=1_000_000,
                       max_price=10_000_000, price_band_bps=1_000, maker_fee_bps=10, taker_fee_bps=20,
                       reference_price=300_000),
    ]


@dataclass
class ShardSpec:
    """One engine shard: a name and the symbols it owns."""

    name: str
    symbols: list[str]


@dataclass
class AwsConfig:
    """Where the aws profile's services are (endpoint_url: empty for AWS itself, a URL for moto or LocalStack)."""

    region: str = "us-east-1"
    endpoint_url: str = ""
    kinesis_stream: str = "rialto-commands"
    event_stream: str = "rialto-events"
    table_prefix: str = "rialto-"
    bucket: str = "rialto-venue"
    archive_after_days: float = 30.0
    """Trades older than this go to the Parquet archive in S3 (0: every trade, as soon as it is stored)."""
    archive_every_seconds: float = 3600.0
    """How often the persister looks for trades to archive."""


@dataclass
class RateLimits:
    """Token buckets (see ``services.gateway.ratelimit``): a burst and a steady rate per second."""

    ip_burst: float = 400.0
    ip_per_second: float = 200.0
    account_burst: float = 100.0
    account_per_second: float = 50.0
    auth_cost: float = 10.0
    """Tokens an IP spends on one register or login (Argon2 is expensive)."""


@dataclass
class FaucetConfig:
    """Test funds, embedded and local profiles only: capped per request and per account per hour."""

    enabled: bool = True
    per_request: dict[str, str] = field(default_factory=lambda: {"BTC": "10", "ETH": "100", "USD": "1000000"})
    per_hour: dict[str, str] = field(default_factory=lambda: {"BTC": "100", "ETH": "1000", "USD": "10000000"})


@dataclass
class Config:
    profile: str = "embedded"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    engine: str = ""
    """Engine backend (``python``, ``cython``, ``rust``, ``fpga-sim``); empty: the fastest built here."""
    fsync: str = "every_batch"
    """Journal fsync policy: ``every_batch`` (default, nothing acknowledged is ever lost), ``interval_ms``, ``none``."""
    tick_ms: int = 100
    """How often the venue checks for due GTD expiries and, if one is due, sends a TICK command."""
    snapshot_seconds: float = 60.0
    """Snapshot the engine this often when something changed (and always on shutdown)."""
    snapshot_every: int = 100_000
    """... and after this many commands."""
    read_your_writes_ms: int = 2_000
    """How long a read waits for the projection to reach the caller's last acknowledged command."""
    argon2: str = "standard"
    token_ttl: int = 900
    token_leeway: int = 30
    secret_key: str = ""
    """Base64 server key sealing secrets at rest; empty: ``<data>/secret.key``, created on first start."""
    log_level: str = "info"
    admin_api: bool = True
    """Serve ``/admin/status`` (state hash, positions); for operators and tests on a local venue."""
    fast_path: bool = True
    """Answer order placement and cancellation in ``services.gateway.fastpath`` (same answers as FastAPI's routes)."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Local profile: the Redis holding the logs, market data, rate limits and client order id claims."""
    redis_fsync: str = "always"
    """What Redis's ``appendfsync`` must be (checked at start): ``always`` (an acknowledged order survives a
    Redis crash), ``everysec`` (up to a second of acknowledged orders can be lost) or ``none`` (no check)."""
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/rialto"
    """Local and aws profiles: projections, ledger and accounts."""
    key_prefix: str = "rialto:"
    """Prefix of this venue's Redis keys (several venues can share one Redis)."""
    gateways: int = 2
    """Gateway worker processes (local and aws profiles); they share the listening socket."""
    rate: RateLimits = field(default_factory=RateLimits)
    aws: AwsConfig = field(default_factory=AwsConfig)
    shards: list[ShardSpec] = field(default_factory=list)
    faucet: FaucetConfig = field(default_factory=FaucetConfig)
    assets: list[AssetSpec] = field(default_factory=default_assets)
    instruments: list[InstrumentSpec] = field(default_factory=default_instruments)

    # Derived -------------------------------------------------------------
    def check(self) -> Config:
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        if self.fsync not in ("every_batch", "interval_ms", "none"):
            raise ConfigError(f"fsync must be every_batch, interval_ms or none, not {self.fsync!r}")
        if self.argon2 not in ("standard", "cheap"):
            raise ConfigError(f"argon2 must be 'standard' or 'cheap', not {self.argon2!r}")
        if not 0 <= self.port < 65_536:
            raise ConfigError(f"port must be in 0..65535, not {self.port}")
        from core.engine import BACKENDS

        if self.engine and self.engine not in BACKENDS:
            raise ConfigError(f"unknown engine backend {self.engine!r}; choose one of {', '.join(BACKENDS)}")
        if self.tick_ms < 1:
            raise ConfigError("tick_ms must be at least 1")
        if self.redis_fsync not in ("always", "everysec", "none"):
            raise ConfigError(f"redis_fsync must be always, everysec or none, not {self.redis_fsync!r}")
        if not 1 <= self.gateways <= 64:
            raise ConfigError("gateways must be between 1 and 64")
        if self.aws.archive_after_days < 0:
            raise ConfigError("aws.archive_after_days must not be negative")
        if self.aws.archive_every_seconds < 1:
            raise ConfigError("aws.archive_every_seconds must be at least 1")
        self.build_instruments()  # raises on a bad market
        self.shard_of_symbol()  # raises on a bad shard map
        return self

    def shard_specs(self) -> list[ShardSpec]:
        """The configured shards, or one shard owning every symbol."""
        return self.shards or [ShardSpec("main", [spec.symbol for spec in self.instruments])]

    def shard_of_symbol(self) -> dict[str, int]:
        """symbol -> shard id; every symbol in exactly one shard."""
        specs = self.shard_specs()
        if len(specs) > MAX_SHARDS:
            raise ConfigError(f"at most {MAX_SHARDS} shards")
        known = {spec.symbol for spec in self.instruments}
        owner: dict[str, int] = {}
        for shard, spec in enumerate(specs):
            if not spec.symbols:
                raise ConfigError(f"shard {spec.name!r} owns no symbol")
            for symbol in spec.symbols:
                if symbol not in known:
                    raise ConfigError(f"shard {spec.name!r}: unknown symbol {symbol!r}")
                if symbol in owner:
                    raise ConfigError(f"symbol {symbol!r} is in two shards")
                owner[symbol] = shard
        missing = sorted(known - owner.keys())
        if missing:
            raise ConfigError(f"symbols in no shard: {', '.join(missing)}")
        return owner

    def shard_instruments(self, shard: int) -> list[Instrument]:
        """The instruments engine shard ``shard`` runs."""
        owner = self.shard_of_symbol()
        return [i for i in self.build_instruments() if owner[i.symbol] == shard]

    def build_assets(self) -> dict[str, Asset]:
        try:
            return {spec.code: Asset(spec.id, spec.code, spec.decimals) for spec in self.assets}
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def build_instruments(self) -> list[Instrument]:
        assets = self.build_assets()
        out = []
        for spec in self.instruments:
            try:
                base, quote = assets[spec.base], assets[spec.quote]
            except KeyError as exc:
                raise ConfigError(f"{spec.symbol}: unknown asset {exc.args[0]!r}") from None
            try:
                out.append(make_instrument(
                    spec.id, spec.symbol, base, quote, spec.tick_size, spec.lot_size,
                    min_quantity=spec.min_quantity, max_quantity=spec.max_quantity, max_price=spec.max_price,
                    price_band_bps=spec.price_band_bps, maker_fee_bps=spec.maker_fee_bps,
                    taker_fee_bps=spec.taker_fee_bps, reference_price=spec.reference_price,
                ))
            except ValueError as exc:
                raise ConfigError(f"{spec.symbol}: {exc}") from None
        return out


# Loading ------------------------------------------------------------------
def _coerce(value: Any, current: Any, name: str) -> Any:
    """``value`` (from TOML or an environment string) as the type of ``current``."""
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name}: expected a boolean, got {value!r}")
    try:
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if isinstance(current, Path):
        return Path(str(value))
    if isinstance(current, str):
        return str(value)
    return value


def _apply_mapping(target: Any, values: Mapping[str, Any], where: str) -> Any:
    changes: dict[str, Any] = {}
    by_name = {f.name: f for f in fields(target)}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name == "data":
            name = "data_dir"
        if name not in by_name:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        current = getattr(target, name)
        if name == "assets":
            changes[name] = [AssetSpec(**item) for item in value]
        elif name == "instruments":
            changes[name] = [InstrumentSpec(**item) for item in value]
        elif name == "shards":
            try:
                changes[name] = [ShardSpec(str(item["name"]), [str(s) for s in item["symbols"]]) for item in value]
            except (KeyError, TypeError):
                raise ConfigError(f"{where}: each [[shards]] needs a name and a list of symbols") from None
        elif is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{key}] must be a table")
            changes[name] = _apply_mapping(current, value, f"{where} [{key}]")
        elif isinstance(current, dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: {key} must be a table")
            changes[name] = {str(k): str(v) for k, v in value.items()}
        else:
            changes[name] = _coerce(value, current, f"{where}: {key}")
    return replace(target, **changes)


def _env_overrides(target: Any, environ: Mapping[str, str], prefix: str) -> Any:
    changes: dict[str, Any] = {}
    for f in fields(target):
        current = getattr(target, f.name)
        names = [prefix + f.name.upper()]
        if f.name == "data_dir":
            names.insert(0, prefix + "DATA")
        if is_dataclass(current):
            changes[f.name] = _env_overrides(current, environ, f"{prefix}{f.name.upper()}_")
            continue
        if isinstance(current, list | dict):
            continue
        for env_name in names:
            if env_name in environ:
                changes[f.name] = _coerce(environ[env_name], current, env_name)
                break
    return replace(target, **changes)


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Defaults, then the TOML file, then ``RIALTO_*``, then ``overrides`` (flags; None means unset)."""
    env = os.environ if environ is None else environ
    config = Config()
    file = path or env.get("RIALTO_CONFIG")
    if file:
        try:
            with open(file, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file}: {exc}") from None
        config = _apply_mapping(config, data, str(file))
    config = _env_overrides(config, env, ENV_PREFIX)
    given = {k: v for k, v in overrides.items() if v is not None}
    if given:
        config = _apply_mapping(config, given, "command line")
    return config.check()
