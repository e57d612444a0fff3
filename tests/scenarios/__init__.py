"""Conformance scenarios for the matching engine, written as tables.

``dsl`` holds the vocabulary (accounts, assets, instruments, command builders,
expected-event rows, the book-state notation), ``runner`` plays a scenario
against one backend and compares, ``invariants`` checks what must hold after
every command whatever the scenario (used by the property tests too).
"""
