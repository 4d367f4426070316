"""The services' wait for airflow-init's migrations (airtasks.stack.migrations): the heads of
Airflow's migration scripts, read without loading Airflow, against the database's revisions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airtasks.stack import migrations
from airtasks.stack.migrations import MigrationsError, ScriptsUnreadable, Unread


def scripts(tmp_path: Path, revisions: dict[str, str]) -> Path:
    """A versions directory: file name -> its `revision` and `down_revision` lines."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, body in revisions.items():
        (tmp_path / f"{name}.py").write_text(f'"""A migration."""\nimport sqlalchemy as sa\n{body}\n')
    return tmp_path


def test_the_head_is_the_revision_nothing_builds_on(tmp_path: Path) -> None:
    versions = scripts(
        tmp_path,
        {
            "0001": 'revision = "a1"\ndown_revision = None',
            "0002": 'revision = "b2"\ndown_revision = "a1"',
            "0003": 'revision: str = "c3"\ndown_revision: str | None = "b2"',
            "helpers": "def upgrade_helper():\n    pass",  # no revision: not a migration
        },
    )
    assert migrations.script_heads(versions) == {"c3"}


def test_a_merge_has_one_head_and_two_branches_have_two(tmp_path: Path) -> None:
    base = {
        "0001": 'revision = "a1"\ndown_revision = None',
        "0002": 'revision = "b2"\ndown_revision = "a1"',
        "0003": 'revision = "c3"\ndown_revision = "a1"',
    }
    assert migrations.script_heads(scripts(tmp_path / "split", base)) == {"b2", "c3"}
    merged = {**base, "0004": 'revision = "d4"\ndown_revision = ("b2", "c3")'}
    assert migrations.script_heads(scripts(tmp_path / "merged", merged)) == {"d4"}


def test_unreadable_scripts_say_so(tmp_path: Path) -> None:
    with pytest.raises(ScriptsUnreadable, match="no migration scripts"):
        migrations.script_heads(scripts(tmp_path / "empty", {}))
    broken = scripts(tmp_path / "broken", {"0001": 'revision = "a1"\ndown_revision = (None'})
    with pytest.raises(ScriptsUnreadable, match=r"0001\.py: SyntaxError"):
        migrations.script_heads(broken)


def test_the_installed_airflow_has_the_heads_alembic_finds() -> None:
    """The reading agrees with Alembic's own over Airflow's scripts (what `airflow db
    check-migrations` compares), asked in a child: importing Airflow here would set up its logging
    for the whole test process."""
    alembic = subprocess.run(
        [
            sys.executable,
            "-c",
            "from alembic.script import ScriptDirectory\n"
            "from airflow.utils.db import _get_alembic_config\n"
            "print(' '.join(sorted(ScriptDirectory.from_config(_get_alembic_config()).get_heads())))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert migrations.script_heads(migrations.versions_dir()) == set(alembic.stdout.split())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_wait_ends_when_the_database_reaches_the_heads() -> None:
    clock = Clock()
    answers = iter(
        [Unread("it has no alembic_version table yet", "migrate"), frozenset({"a1"}), frozenset({"c3"})]
    )
    lines: list[str] = []
    took = migrations.wait_migrated(
        frozenset({"c3"}), lambda: next(answers), 60, clock=clock, sleep=clock.sleep, log=lines.append
    )
    assert took == 2 * migrations.POLL_SECONDS
    assert lines == ["waiting for the database's migrations to c3: it has no alembic_version table yet"]


@pytest.mark.parametrize(
    ("found", "said"),
    [
        (frozenset({"a1"}), "it is at a1; run `airflow db migrate`"),
        (
            Unread("it does not answer: connection refused", "check that the database runs"),
            "it does not answer: connection refused; check that the database runs",
        ),
    ],
)
def test_a_database_that_never_gets_there_is_named_with_the_fix(
    found: migrations.Revisions, said: str
) -> None:
    clock = Clock()
    with pytest.raises(MigrationsError) as caught:
        migrations.wait_migrated(
            frozenset({"c3"}), lambda: found, 10, clock=clock, sleep=clock.sleep, log=print
        )
    assert str(caught.value).startswith(
        "the metadata database did not reach Airflow's schema (c3) within 10s: "
    )
    assert said in str(caught.value)
    assert clock.now == pytest.approx(10)


def test_without_a_database_url_it_fails_naming_the_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert migrations.main(["--timeout", "1"], environ={}) == 1
    assert (
        "no metadata database given: set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN or its _CMD"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize("schema", ["", "airflow_meta"])
def test_what_it_cannot_read_is_handed_over_to_airflow_s_own_check(
    schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scripts it cannot read, or Alembic's table in a schema of the user's choosing."""

    def unreadable() -> Path:
        raise ScriptsUnreadable("Airflow's migrations/versions directory is missing")

    asked: list[float] = []
    if not schema:
        monkeypatch.setattr(migrations, "versions_dir", unreadable)
    monkeypatch.setattr(migrations, "_airflow_check", lambda timeout: asked.append(timeout) or 0)
    environ = {migrations.SCHEMA_ENV: schema} if schema else {}
    assert migrations.main(["--timeout", "42"], environ=environ) == 0
    assert asked == [42.0]
