"""Intake: where a validated request becomes a durable command."""
