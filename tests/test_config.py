"""Config loading: valid files load, and every mistake points at the line to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from calmesh.config import ConfigError, load_config, parse_config, parse_days, secret
from calmesh.services.sync import member_options

VALID = """\
[hub]
timezone = "Romance Standard Time"

[platforms.zoho]
kind = "ics"
path = "zoho"

[platforms.projects]
kind = "ics"
path = "projects"

[[people]]
email = "Alice@Agency.example"
name = "Alice"
platform = "zoho"
also = [{ platform = "projects", calendars = ["alice.ics"] }]
timezone = "Europe/Paris"
working_hours = { days = "Mon-Thu,Sat", start = "08:30", end = "17:00" }
"""


def test_valid_config_normalises_names(tmp_path: Path) -> None:
    path = tmp_path / "calmesh.toml"
    path.write_text(VALID)
    config = load_config(path)
    assert config.hub.timezone == "Europe/Paris"  # Windows name accepted, stored as IANA
    alice = config.person("alice@agency.example")
    assert alice is not None and alice.email == "alice@agency.example"
    assert [s.platform for s in alice.sources] == ["zoho", "projects"]
    hours = alice.hours(config.hub.timezone)
    assert hours is not None and hours.periods[0].days == frozenset({0, 1, 2, 3, 5})


@pytest.mark.parametrize(
    ("mutation", "line", "words"),
    [
        (('kind = "ics"\npath = "zoho"', 'kind = "icz"\npath = "zoho"'), 5, "unknown platform kind 'icz'"),
        (('path = "projects"', 'path = "projects"\nurl = "https://x"'), 8, "exactly one of 'path' or 'url'"),
        (('path = "projects"', 'path = "projects"\npasword_env = "X"'), 11, "unknown setting 'pasword_env'"),
        (('platform = "zoho"', 'platform = "zohoo"'), 15, "names platform 'zohoo'"),
        (('timezone = "Europe/Paris"', 'timezone = "Europe/Pariss"'), 17, "unknown time zone"),
        (('start = "08:30"', 'start = "18:30"'), 18, "end must be after start"),
        (("[[people]]", "[[people]\n"), 12, "not valid TOML"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, mutation: tuple[str, str], line: int, words: str) -> None:
    path = tmp_path / "calmesh.toml"
    path.write_text(VALID.replace(*mutation, 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert words in str(info.value)
    assert info.value.line == line, str(info.value)
    assert str(info.value).startswith(f"{path.resolve()}:{line}: ")


def test_duplicate_person_is_refused() -> None:
    text = VALID + '\n[[people]]\nemail = "alice@agency.example"\nplatform = "zoho"\n'
    with pytest.raises(ConfigError, match="listed twice"):
        parse_config(text)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")


def test_secret_reads_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALMESH_TEST_SECRET", "s3cret")
    assert secret("CALMESH_TEST_SECRET", "x") == "s3cret"
    monkeypatch.delenv("CALMESH_TEST_SECRET")
    with pytest.raises(ConfigError, match="CALMESH_TEST_SECRET is not set"):
        secret("CALMESH_TEST_SECRET", "platforms.zoho.password_env")


def test_day_specs() -> None:
    assert parse_days("Mon-Fri") == frozenset(range(5))
    assert parse_days("Fri-Mon") == frozenset({4, 5, 6, 0})
    with pytest.raises(ValueError):
        parse_days("Funday")


def test_example_config_is_valid() -> None:
    """The sample config shipped in examples/ must always load (secrets are env references)."""
    example = Path(__file__).parent.parent / "examples" / "calmesh.toml"
    config = load_config(example)
    assert config.platforms and config.people


@pytest.mark.parametrize(("setting", "expected"), [("", "omit"), ('attendees = "copy"', "copy"),
                                                   ('attendees = "omit"', "omit")])
def test_sync_group_attendees_default_to_omitted(setting: str, expected: str) -> None:
    """Copies carry no people unless a group says "copy" (Graph would mail them), and the
    setting reaches the planner."""
    text = VALID + f"""
[sync.groups.g]
{setting}
calendars = [{{ platform = "zoho", calendar = "a" }}, {{ platform = "projects", calendar = "b" }}]
"""
    group = parse_config(text).sync.groups["g"]
    assert group.attendees == expected
    assert member_options(group)[1].attendees == expected


def test_sync_group_members_know_their_owner() -> None:
    """Whose calendar a sync member is comes from [[people]] (a listed calendar, or on a
    mailbox platform the person's address), or from an explicit ``owner``; an unlisted calendar
    has none. Sync needs it to tell an attendee's copy of a meeting from its organiser's."""
    text = VALID + """
[[people]]
email = "carla@agency.example"
platform = "zoho"

[sync.groups.g]
calendars = [{ platform = "projects", calendar = "alice.ics" }, { platform = "zoho", calendar = "carla@agency.example" },
             { platform = "zoho", calendar = "team.ics" }, { platform = "zoho", calendar = "x", owner = "Bob@Agency.example" }]
"""
    group = parse_config(text).sync.groups["g"]
    assert [m.owner for m in group.calendars] == ["alice@agency.example", "carla@agency.example", None,
                                                  "bob@agency.example"]
    assert [m.owner for m in member_options(group)[0]] == [m.owner for m in group.calendars]


def test_sync_group_attendees_refuses_other_values(tmp_path: Path) -> None:
    path = tmp_path / "calmesh.toml"
    path.write_text(VALID + """
[sync.groups.g]
attendees = "strip"
calendars = [{ platform = "zoho", calendar = "a" }, { platform = "projects", calendar = "b" }]
""")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "attendees" in str(info.value) and "omit" in str(info.value)
    assert info.value.line == VALID.count("\n") + 3, str(info.value)


@pytest.mark.parametrize(("server", "words"), [
    ('monitoring_users = ["prometheus"]', "monitoring_users names no configured user: prometheus"),
    ('monitoring_addresses = ["10.0.0.300"]', "'10.0.0.300' is not an IP address or network"),
    ("body_timeout = 0", "body_timeout"),
])
def test_server_exposure_settings_are_checked(server: str, words: str) -> None:
    text = VALID + f'\n[server]\n{server}\n[[server.users]]\nname = "ops"\npassword_env = "X"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert words in str(info.value)


def test_a_user_may_have_a_rate_limit_of_its_own() -> None:
    text = VALID + ('\n[server]\nmonitoring_users = ["ops"]\nmonitoring_addresses = ["10.0.0.0/24", "::1"]\n'
                    '[[server.users]]\nname = "ops"\npassword_env = "X"\nrate_limit_per_minute = 20000\n')
    server = parse_config(text).server
    assert server.users[0].rate_limit_per_minute == 20000 and server.monitoring_users == ["ops"]


def test_every_mistake_at_once_with_did_you_mean(tmp_path: Path) -> None:
    """Issue 17 item 3: a misspelt key is named with its likely fix (not reported as the
    "Field required" it causes), and every mistake of the file is listed, in line order."""
    path = tmp_path / "calmesh.toml"
    path.write_text('[hub]\ntimezone = "Europe/Pariss"\ntimezon = "x"\n\n'
                    '[platforms.zoho]\nkind = "caldav"\nurl = "http://127.0.0.1:9/"\nusernme = "demo"\n\n'
                    '[[people]]\nemail = "alice@agency.example"\nplatfrom = "zoho"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    where = path.resolve()
    assert str(info.value).splitlines() == [
        f"{where}:2: hub.timezone: unknown time zone 'Europe/Pariss' (use an IANA name like Europe/Paris)",
        f"{where}:3: hub.timezon: unknown setting 'timezon' (did you mean 'timezone'?)",
        f"{where}:8: platforms.zoho.usernme: unknown setting 'usernme' (did you mean 'username'?)",
        f"{where}:12: people.0.platfrom: unknown setting 'platfrom' (did you mean 'platform'?)",
    ]
    assert info.value.line == 2 and len(info.value.problems) == 4


def test_every_dangling_reference_at_once() -> None:
    text = VALID + '\n[[people]]\nemail = "bob@agency.example"\nplatform = "zoh"\n' \
                   '\n[[people]]\nemail = "carol@agency.example"\nplatform = "nowhere"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    lines = str(info.value).splitlines()
    assert len(lines) == 2 and "'zoh'" in lines[0] and "did you mean 'zoho'?" in lines[0] and "'nowhere'" in lines[1]
