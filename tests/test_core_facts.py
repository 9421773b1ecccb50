"""Facts are computed lazily, once, thread-safely; unavailable facts skip, crashing ones error."""

from __future__ import annotations

import threading
import time

import pytest

from preflight import facts
from preflight.config import load_config
from preflight.context import Context, FactError
from preflight.facts import FactUnavailable, fact


@pytest.fixture
def counting_fact():
    calls = []

    @fact("test_counted")
    def provider(ctx):
        calls.append(threading.get_ident())
        time.sleep(0.05)
        return 42

    yield calls
    facts._REGISTERED.pop("test_counted", None)


def _ctx():
    return Context(load_config({}, environ={}, search=False), environ={})


def test_fact_computed_once_under_concurrency(counting_fact):
    ctx = _ctx()
    out = []
    threads = [threading.Thread(target=lambda: out.append(ctx.get("test_counted"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [42] * 8
    assert len(counting_fact) == 1


def test_facts_are_lazy():
    ctx = _ctx()
    assert ctx.peek("script") is None  # nothing computed until asked


def test_unavailable_fact_is_cached_and_raised():
    @fact("test_absent")
    def provider(ctx):
        raise FactUnavailable("no such thing here")

    try:
        ctx = _ctx()
        with pytest.raises(FactUnavailable, match="no such thing"):
            ctx.get("test_absent")
        assert ctx.get("test_absent", "fallback") == "fallback"
        assert not ctx.available("test_absent")
    finally:
        facts._REGISTERED.pop("test_absent", None)


def test_crashing_provider_becomes_fact_error():
    @fact("test_crash")
    def provider(ctx):
        raise ValueError("corrupt input")

    try:
        with pytest.raises(FactError, match="corrupt input"):
            _ctx().get("test_crash")
    finally:
        facts._REGISTERED.pop("test_crash", None)


def test_overrides_replace_providers():
    ctx = Context(load_config({}, environ={}, search=False), environ={}, overrides={"gpus": ["H100"]})
    assert ctx.get("gpus") == ["H100"]


def test_unknown_fact_is_an_error():
    with pytest.raises(FactError, match="unknown fact"):
        _ctx().get("no_such_fact_anywhere")
