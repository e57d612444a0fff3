"""Configuration: defaults, then a TOML file, then RIALTO_* variables, then command-line flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.config import ConfigError, load_config


def test_the_defaults_are_an_embedded_venue_with_btc_and_eth_against_usd() -> None:
    config = load_config(environ={})
    assert (config.profile, config.host, config.port, config.data_dir) == ("embedded", "127.0.0.1", 8000, Path("data"))
    markets = {i.symbol: i for i in config.build_instruments()}
    assert set(markets) == {"BTC-USD", "ETH-USD"}
    btc = markets["BTC-USD"]
    assert (btc.base.code, btc.quote.code, btc.price_band_bps, btc.maker_fee_bps, btc.taker_fee_bps) == (
        "BTC", "USD", 1_000, 10, 20)
    assert btc.format_price(btc.reference_price) == "60000.00"


def test_settings_come_from_toml_then_environment_then_flags(tmp_path: Path) -> None:
    file = tmp_path / "rialto.toml"
    file.write_text('port = 9000\nengine = "python"\n[rate]\naccount_burst = 7\n[faucet.per_request]\nUSD = "5"\n')
    config = load_config(file, environ={"RIALTO_PORT": "9100", "RIALTO_RATE_IP_BURST": "3", "RIALTO_DATA": "/x"})
    assert (config.port, config.engine, config.data_dir) == (9100, "python", Path("/x"))
    assert (config.rate.account_burst, config.rate.ip_burst, config.faucet.per_request) == (7, 3, {"USD": "5"})
    flagged = load_config(file, environ={"RIALTO_PORT": "9100"}, port=9200, host=None)
    assert (flagged.port, flagged.host) == (9200, "127.0.0.1")


@pytest.mark.parametrize("environ", [
    {"RIALTO_PROFILE": "mainframe"},
    {"RIALTO_PORT": "eighty"},
    {"RIALTO_FSYNC": "sometimes"},
    {"RIALTO_ENGINE": "abacus"},
    {"RIALTO_FAUCET_ENABLED": "maybe"},
])
def test_a_bad_setting_is_a_config_error_naming_it(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_config(environ=environ)


def test_an_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "rialto.toml"
    file.write_text("prot = 9000\n")
    with pytest.raises(ConfigError, match="prot"):
        load_config(file, environ={})
