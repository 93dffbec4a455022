"""bench/disruption.py's pure parts: the generated manifest and the two counts that must be zero.

The benchmark itself runs against a live ``make run`` stack (docs/benchmarks.md); these check that what it
sends is a valid, realistic manifest and that its checks catch what they claim to catch."""

from __future__ import annotations

from collections import defaultdict

import pytest

from bench import disruption
from bench.disruption import (
    Progress,
    disruption_manifest,
    double_room_nights,
    manifest_summary,
    read_token,
    rooms_with_unrelated_passengers,
    split_rooms,
    unrelated_sharing_count,
)
from cases.manifest import validate_rows


def test_the_manifest_is_300_valid_unique_passengers_and_the_same_for_the_same_seed():
    rows = disruption_manifest(300)
    assert len(rows) == 300
    validation = validate_rows(rows)
    assert validation.errors == []
    assert len(validation.rows) == 300
    assert disruption_manifest(300) == rows
    assert disruption_manifest(300, seed=2) != rows
    assert len(disruption_manifest(17)) == 17


def test_the_manifest_is_a_realistic_disruption():
    rows = disruption_manifest(300)
    summary = manifest_summary(rows)
    assert summary["families"] >= 15
    assert summary["infants"] >= 5
    assert summary["prm"] >= 8
    assert summary["unaccompaniedMinors"] >= 5
    assert set(summary["tiers"]) == {"ECONOMY", "PREMIUM_ECONOMY", "BUSINESS", "FIRST"}
    assert summary["pnrs"] < 200  # parties, not 300 solo travellers
    parties = defaultdict(list)
    for row in rows:
        parties[row["pnr"]].append(row)
        assert row.get("email") or row.get("phone"), "every passenger can be notified"
    for party in parties.values():
        assert len({row["tier"] for row in party}) == 1, "one tier per PNR: no mixed-tier group by design"
        minors = [row for row in party if "UNACCOMPANIED_MINOR" in row.get("specialNeeds", ())]
        assert not minors or len(minors) == len(party), "an unaccompanied minor travels with no adult"
        infants = [row for row in party if "INFANT" in row.get("specialNeeds", ())]
        assert len(infants) < len(party), "an infant travels with an adult of the PNR"


def reservation(urn, rooms, status="CONFIRMED", check_in="2026-12-01", nights=1):
    return {"urn": urn, "status": status, "checkIn": check_in, "nights": nights,
            "rooms": [{"occupants": occupants} for occupants in rooms]}  # fmt: skip


PNRS = {"a1": "AAA111", "a2": "AAA111", "b1": "BBB222", "c1": "CCC333"}


def test_unrelated_sharing_counts_passengers_in_rooms_that_mix_pnrs_whatever_the_status():
    fine = reservation("r1", [["a1", "a2"], ["b1"]])
    assert unrelated_sharing_count([fine], PNRS) == 0
    mixed = reservation("r2", [["a1", "b1"]], status="CANCELLED")
    assert unrelated_sharing_count([fine, mixed], PNRS) == 2
    assert rooms_with_unrelated_passengers([mixed], PNRS) == [
        {"reservation": "r2", "occupants": ["a1", "b1"], "pnrs": ["AAA111", "BBB222"]}
    ]
    stranger = reservation("r3", [["c1", "zz"]])  # an occupant not on the manifest is nobody's companion
    assert unrelated_sharing_count([stranger], PNRS) == 2
    assert unrelated_sharing_count([reservation("r4", [["a1", "a2", "c1"]]), mixed], PNRS) == 4


def test_double_room_nights_are_two_active_reservations_covering_one_passenger_and_night():
    first = reservation("r1", [["a1", "a2"]])
    assert double_room_nights([first]) == {}
    assert double_room_nights([first, reservation("r2", [["a2"]], status="HELD")]) == {
        "a2": {"2026-12-01": ["r1", "r2"]}
    }
    # released or failed reservations do not count, nor does the next night
    assert double_room_nights([first, reservation("r2", [["a2"]], status="CANCELLED")]) == {}
    assert double_room_nights([first, reservation("r2", [["a2"]], status="FAILED")]) == {}
    assert double_room_nights([first, reservation("r2", [["a2"]], check_in="2026-12-02")]) == {}
    # a two-night stay overlaps the next night's booking
    two_nights = reservation("r3", [["b1"]], nights=2)
    assert double_room_nights([two_nights, reservation("r4", [["b1"]], check_in="2026-12-02")]) == {
        "b1": {"2026-12-02": ["r3", "r4"]}
    }


def test_progress_records_when_each_passenger_was_first_seen_with_a_room():
    progress = Progress(started=100.0)
    progress.observe([{"urn": "a", "status": "BOOKING"}, {"urn": "b", "status": "MANUAL_REVIEW"}], at=101.0)
    assert not progress.settled and progress.roomed == {}
    progress.observe([{"urn": "a", "status": "BOOKED"}, {"urn": "b", "status": "MANUAL_REVIEW"}], at=102.5)
    progress.observe([{"urn": "a", "status": "NOTIFIED"}, {"urn": "b", "status": "MANUAL_REVIEW"}], at=104.0)
    assert progress.roomed == {"a": 2.5}
    assert progress.first_seen["MANUAL_REVIEW"] == {"b": 1.0}
    assert progress.settled
    assert progress.time_to_room() == {"p50": 2.5, "p95": 2.5, "max": 2.5}


def test_contract_rooms_are_shared_out_over_the_hotels():
    assert split_rooms(120, 3) == [40, 40, 40]
    assert split_rooms(120, 7) == [18, 17, 17, 17, 17, 17, 17]
    assert sum(split_rooms(120, 7)) == 120
    assert split_rooms(120, 0) == []


def test_the_token_comes_from_the_environment_or_make_runs_export_file(tmp_path, monkeypatch):
    monkeypatch.delenv("NEXA_TOKEN_OPS_SUPERVISOR", raising=False)
    monkeypatch.setenv("NEXA_STATE_DIR", str(tmp_path))
    (tmp_path / "demo-tokens.env").write_text("export NEXA_TOKEN_ADMIN=adm\nexport NEXA_TOKEN_OPS_SUPERVISOR=ops.jwt\n")
    assert read_token(None) == "ops.jwt"
    monkeypatch.setenv("NEXA_TOKEN_OPS_SUPERVISOR", "from-env")
    assert read_token(None) == "from-env"
    assert read_token("given") == "given"
    monkeypatch.delenv("NEXA_TOKEN_OPS_SUPERVISOR")
    (tmp_path / "demo-tokens.env").unlink()
    with pytest.raises(SystemExit, match="no token"):
        read_token(None)


def test_the_script_runs_as_a_file_and_as_a_module():
    import subprocess
    import sys

    for command in ([sys.executable, disruption.__file__, "--help"], [sys.executable, "-m", "bench.disruption", "-h"]):
        result = subprocess.run(command, capture_output=True, text=True, cwd=disruption.ROOT, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "300-passenger" in result.stdout
