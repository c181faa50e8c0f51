"""Config: one validated tree, dotted overrides, one-line errors naming the key."""
import datetime as dt

import pytest

from skiller.config import ConfigError, load_config
from skiller.llm.interface import LLMRequest, Message, request_key
from skiller.steps.s01_domain_expansion import DomainTopics


def test_dotted_override_sets_a_nested_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seed: 3\nsteps:\n  s06: {rows_per_table: 50}\n")
    c = load_config(cfg, ["steps.s04.target_blueprints_per_entity=3", "clock=2027-01-02"])
    assert (c.seed, c.steps.s06.rows_per_table, c.steps.s04.target_blueprints_per_entity) == (3, 50, 3)
    assert c.clock == dt.date(2027, 1, 2)


@pytest.mark.parametrize("override, message", [
    ("steps.s04.nope=1", "config: unknown key 'steps.s04.nope'"),
    ("steps.s06.rows_per_table=many", "config: steps.s06.rows_per_table: Input should be a valid integer"),
    ("provider.name=gemini", "config: provider.name: Input should be 'builtin', 'anthropic' or 'openai'"),
])
def test_bad_key_or_type_is_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError) as exc:
        load_config(None, [override])
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_invalid_yaml_is_one_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(cfg)


def _request(**kw):
    base = dict(purpose="s01.domains", messages=(Message(role="user", content="hi"),), response_model=DomainTopics)
    return LLMRequest(**(base | kw))


def test_cache_key_hashes_meaning_only():
    assert request_key(_request(), "p", "m") == request_key(_request(), "p", "m")
    assert request_key(_request(), "p", "m") != request_key(_request(context={"seed": 1}), "p", "m")
    assert request_key(_request(), "p", "m") != request_key(_request(), "p", "other-model")
    # provider settings such as timeouts and retries are not fields of a request at all
    assert not {"timeout", "max_retries", "max_concurrency"} & set(_request().model_dump())
