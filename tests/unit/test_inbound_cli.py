"""`ontime inbound SOURCE FILE`: the events a saved payload would become, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.cli import main

FIXTURES = Path(__file__).parent.parent / "fixtures" / "inbound"


def test_it_prints_each_event_with_its_rule_status_and_raw_code(capsys: pytest.CaptureFixture[str]) -> None:
    main(
        [
            "inbound",
            "easypost",
            str(FIXTURES / "easypost" / "unknown_status_and_detail.json"),
            "--zone",
            "Europe/Madrid",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "easypost: 4 events (nothing written)"
    rows = out[3:]
    assert len(rows) == 4
    assert "teleported (unmapped)" in rows[3] and "account" in rows[3] and "2024-03-12 08:30:00" in rows[3]
    assert "pre_transit/status_update" in rows[0] and "label_created" in rows[0]


def test_a_body_that_is_not_the_source_s_is_a_clear_exit(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b'<!DOCTYPE x [<!ENTITY a SYSTEM "file:///etc/passwd">]><x>&a;</x>')
    with pytest.raises(SystemExit, match="is not a dhl_express payload"):
        main(["inbound", "dhl_express", str(bad)])
    with pytest.raises(SystemExit, match="no such source 'pigeon'"):
        main(["inbound", "pigeon", str(bad)])
    with pytest.raises(SystemExit, match="cannot read"):
        main(["inbound", "ups", str(tmp_path / "missing.json")])
