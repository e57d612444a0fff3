"""Fixtures for the aws adapters: settings that point at the session's moto server, unique names."""

from __future__ import annotations

import secrets

import pytest

from services.aws import AwsSettings


@pytest.fixture
def aws_settings(moto_endpoint: str) -> AwsSettings:
    """Settings for moto, with names no other test uses (tables, bucket, streams)."""
    tag = secrets.token_hex(4)
    return AwsSettings(
        endpoint_url=moto_endpoint,
        kinesis_stream=f"commands-{tag}",
        event_stream=f"events-{tag}",
        table_prefix=f"t{tag}-",
        bucket=f"bucket-{tag}",
    )
