import stat

import pytest

from agent.config import (AgentConfig, ConfigError, load_config, parse_name_value_arguments,
                          read_ini_properties)

PACKAGE_INI = """[Properties]
ServicesUrl=http://pageledger.example:6320/
InstallDir=/opt/pl
SuppressReboots=1
SuppressAddRemove=1
SuppressShortcuts=0
IgnoreDisconnected=0
"""


def test_package_ini_and_command_line_merge_with_the_command_line_winning(tmp_path):
    ini = tmp_path / "package.ini"
    ini.write_text(PACKAGE_INI)
    properties = read_ini_properties(ini)
    properties.update(parse_name_value_arguments(["IGNOREDISCONNECTED=1", "AGENTTOKEN=s3cret"]))
    config = AgentConfig(state_dir=tmp_path / "state").with_properties(properties)
    assert config.services_url == "http://pageledger.example:6320"
    assert config.ignore_disconnected is True
    assert config.suppress_add_remove is True and config.suppress_shortcuts is False
    assert str(config.install_dir) == "/opt/pl"
    assert "s3cret" not in repr(config)


def test_saved_config_is_owner_only_and_reloads(tmp_path):
    config = AgentConfig(state_dir=tmp_path / "state").with_properties(
        {"ServicesUrl": "http://h:1", "AgentToken": "tok", "IgnoreDisconnected": "0"})
    config.save()
    assert stat.S_IMODE(config.config_path.stat().st_mode) == 0o600
    loaded = load_config(tmp_path / "state")
    assert (loaded.services_url, loaded.agent_token, loaded.ignore_disconnected) == ("http://h:1", "tok", False)


@pytest.mark.parametrize("arguments,message", [
    (["SERVICESURL"], "unknown argument"),
    (["COLOUR=1"], "unknown argument"),
])
def test_bad_arguments_name_the_problem(arguments, message):
    with pytest.raises(ConfigError, match=message):
        parse_name_value_arguments(arguments)


@pytest.mark.parametrize("properties,message", [
    ({"IgnoreDisconnected": "maybe"}, "IgnoreDisconnected must be 1 or 0"),
    ({"ServicesUrl": "ftp://x"}, "ServicesUrl must start with http"),
    ({"ServerTimeout": "soon"}, "ServerTimeout must be a number"),
])
def test_bad_values_name_the_property(properties, message):
    with pytest.raises(ConfigError, match=message):
        AgentConfig().with_properties(properties)


def test_ini_without_properties_section_or_with_unknown_names_is_refused(tmp_path):
    ini = tmp_path / "p.ini"
    ini.write_text("[Other]\nx=1\n")
    with pytest.raises(ConfigError, match="no \\[Properties\\]"):
        read_ini_properties(ini)
    ini.write_text("[Properties]\nColour=1\n")
    with pytest.raises(ConfigError, match="unknown property"):
        read_ini_properties(ini)


def test_missing_config_says_to_install(tmp_path):
    with pytest.raises(ConfigError, match="pageledger-agent install"):
        load_config(tmp_path)
