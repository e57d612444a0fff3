"""Rialto services: intake, matching, persistence and distribution around the core."""
