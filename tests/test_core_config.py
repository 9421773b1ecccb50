"""Config: schema validation with clear one-line errors, precedence, pyproject, init."""

from __future__ import annotations

import pytest

from preflight.config import STARTER_CONFIG, ConfigError, load_config


def test_defaults_without_any_file(tmp_path):
    cfg = load_config({}, environ={}, cwd=tmp_path)
    assert cfg["fail-on"] == "error" and cfg["select"] == ["ALL"] and cfg.sources == ["defaults"]


def test_precedence_cli_over_env_over_file(tmp_path):
    (tmp_path / "preflight.yaml").write_text("fail-on: info\nmfu: 0.3\nhourly-rate: 2.0\n")
    env = {"PREFLIGHT_FAIL_ON": "warning", "PREFLIGHT_MFU": "0.5"}
    cfg = load_config({"fail-on": "error"}, environ=env, cwd=tmp_path)
    assert cfg["fail-on"] == "error"  # CLI
    assert cfg["mfu"] == 0.5  # environment over file
    assert cfg["hourly-rate"] == 2.0  # file over defaults
    assert cfg.sources[1:] == [str(tmp_path / "preflight.yaml"), "environment", "command line"]


def test_env_lists(tmp_path):
    cfg = load_config({}, environ={"PREFLIGHT_SELECT": "SB, ENV001", "PREFLIGHT_DEEP": "1"}, cwd=tmp_path)
    assert cfg["select"] == ["SB", "ENV001"] and cfg["deep"] is True


def test_pyproject_tool_section(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname="x"\n\n[tool.preflight]\nignore = ["SB003"]\nnetwork = "online"\n'
    )
    cfg = load_config({}, environ={}, cwd=tmp_path)
    assert cfg["ignore"] == ["SB003"] and cfg["network"] == "online"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("fail-on: sometimes\n", "$.fail-on: 'sometimes' is not one of"),
        ("select: SB003\n", "$.select: 'SB003' is not of type 'array'"),
        ("severity: {SB003: fatal}\n", "$.severity.SB003"),
        ("colour: red\n", "unknown key"),
        ("gpu: {count: zero}\n", "$.gpu.count"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("select: [SB003\n", "invalid YAML"),
        ("a: &a [1]\nb: !!python/object:os.system [echo]\n", "invalid YAML"),
    ],
)
def test_invalid_config_is_one_clear_line(tmp_path, text, expected):
    path = tmp_path / "preflight.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config({}, environ={}, cwd=tmp_path)
    message = str(err.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_billion_laughs_is_refused_quickly(tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 12):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]")
    (tmp_path / "preflight.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="expands to over"):
        load_config({}, environ={}, cwd=tmp_path)


def test_cli_exits_2_on_invalid_config(tmp_path, cli):
    (tmp_path / "preflight.yaml").write_text("timeout: -3\n")
    result = cli("preflight", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("preflight: config error:") and "$.timeout" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_env_value_exits_2(tmp_path, cli):
    result = cli("preflight", "check", cwd=tmp_path, env={"PREFLIGHT_TIMEOUT": "soon"})
    assert result.returncode == 2 and "PREFLIGHT_TIMEOUT" in result.stderr


def test_init_writes_a_valid_commented_config(tmp_path, cli):
    result = cli("preflight", "init", cwd=tmp_path)
    assert result.returncode == 0
    text = (tmp_path / "preflight.yaml").read_text()
    assert text == STARTER_CONFIG and text.count("#") > 20
    load_config({}, environ={}, cwd=tmp_path)  # validates
    again = cli("preflight", "init", cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr
    # every commented example is a real, valid setting: uncomment them all and validate
    import re

    import yaml

    body = "\n".join(line[2:] for line in text.splitlines() if re.match(r"^# ([a-z-]+:|  [a-z-]+:)", line))
    data = yaml.safe_load(body)
    assert {"select", "severity", "gpu", "mfu", "plugins", "network"} <= set(data)
    (tmp_path / "all.yaml").write_text(body)
    load_config({}, config_path=tmp_path / "all.yaml", environ={})
