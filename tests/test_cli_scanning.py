"""``safemedia hash``, ``match`` and ``lists check``, run as the real command."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from safemedia.cli import main

DIH = Path(__file__).parent / "fixtures" / "pdq" / "images" / "dih"
MODS = Path(__file__).parent / "fixtures" / "pdq" / "images" / "bridge-mods"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_hash_output_is_itself_a_valid_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orig = str(MODS / "aaa-orig.jpg")
    status, out, err = run(capsys, "hash", "--algorithm", "pdq,md5,phash", orig)
    assert status == 0, err
    lines = out.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["pdq", "md5", "phash"]
    assert lines[1] == f"md5 {hashlib.md5(Path(orig).read_bytes()).hexdigest()} {orig}"
    listed = tmp_path / "list.txt"
    listed.write_text(out)
    status, out, _ = run(capsys, "lists", "check", str(listed))
    assert status == 0
    assert out == f"{listed}: OK, 3 entries (md5 1, pdq 1, phash 1)\n"


def test_hash_goes_on_after_an_undecodable_file_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff broken")
    good = str(MODS / "blur-a-little.jpg")
    status, out, err = run(capsys, "hash", str(bad), good)
    assert status == 1
    assert out.splitlines() == [out.splitlines()[0]]
    assert out.startswith("pdq ")
    assert out.rstrip().endswith(good)
    assert str(bad) in err


def test_hash_rejects_unknown_algorithms(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["hash", "--algorithm", "crc32", "x.jpg"])
    assert info.value.code == 2
    assert "unknown algorithm" in capsys.readouterr().err


def make_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    status, out, _ = run(capsys, "hash", str(DIH / "bridge-1-original.jpg"))
    assert status == 0
    listed = tmp_path / "known.txt"
    listed.write_text(out)
    return listed


def test_match_prints_a_verdict_per_file_and_exits_1_on_a_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = make_list(tmp_path, capsys)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")
    flipped = str(DIH / "bridge-5-flipx.jpg")
    other = str(Path(__file__).parent / "fixtures" / "pdq" / "images" / "misc-images" / "c.png")
    status, out, _ = run(capsys, "match", "--list", str(listed), flipped, other, str(bad))
    assert status == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{flipped}: MATCH list='known' entry=")
    assert "algorithm=pdq" in lines[0]
    assert lines[1] == f"{other}: CLEAN"
    assert lines[2].startswith(f"{bad}: UNINSPECTABLE reason=")


def test_match_json_has_one_object_per_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = make_list(tmp_path, capsys)
    files = [str(MODS / "sharpen-a-lot.jpg"), str(MODS.parent / "misc-images" / "c.png")]
    status, out, _ = run(capsys, "match", "-l", str(listed), "--json", *files)
    assert status == 1
    records = [json.loads(line) for line in out.splitlines()]
    keys = {"file", "verdict", "algorithm", "distance", "list", "entry_id", "reason"}
    assert all(keys <= set(r) for r in records)
    assert records[0]["verdict"] == "MATCH"
    assert records[0]["list"] == "known"
    assert records[0]["entry_id"] == str(DIH / "bridge-1-original.jpg")
    assert 0 < records[0]["distance"] <= 31
    assert records[1]["verdict"] == "CLEAN"
    assert records[1]["distance"] is None


def test_match_exits_0_when_nothing_matched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = make_list(tmp_path, capsys)
    status, out, _ = run(
        capsys, "match", "-l", str(listed), str(MODS.parent / "misc-images" / "c.png")
    )
    assert status == 0
    assert out.endswith(": CLEAN\n")


def test_match_exits_2_on_a_bad_list_or_no_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("pdq 1234 x\n")
    status, out, err = run(capsys, "match", "-l", str(bad), str(MODS / "aaa-orig.jpg"))
    assert (status, out) == (2, "")
    assert f"{bad}:1: pdq hash must be 64 hex digits" in err
    status, _, err = run(capsys, "match", str(MODS / "aaa-orig.jpg"))
    assert status == 2
    assert "no hash list" in err


def test_lists_check_reports_every_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("pdq " + "0" * 32 + "\nmd5 xyz\n\nnonsense here\n")
    status, out, err = run(capsys, "lists", "check", str(bad))
    assert status == 2
    assert out == f"{bad}: INVALID, 3 errors\n"
    assert [line.split(": ")[0] for line in err.splitlines()] == [
        f"{bad}:1",
        f"{bad}:2",
        f"{bad}:4",
    ]


def test_the_installed_command_runs(tmp_path: Path) -> None:
    listed = tmp_path / "l.txt"
    listed.write_text("# algorithm: md5\n" + hashlib.md5(b"x").hexdigest() + " x\n")
    body = tmp_path / "x.bin"
    body.write_bytes(b"x")
    done = subprocess.run(
        [sys.executable, "-m", "safemedia", "match", "--json", "-l", str(listed), str(body)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    assert (record["verdict"], record["algorithm"], record["entry_id"]) == ("MATCH", "md5", "x")


def test_match_reads_lists_and_settings_from_a_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = make_list(tmp_path, capsys)
    config = tmp_path / "safemedia.toml"
    config.write_text(
        "[safemedia]\n"
        f'hash_lists = [{{ path = "{listed.name}", name = "from-config", distance = 4 }}]\n'
    )
    near = str(MODS / "blur-a-lot.jpg")  # 4 bits from the listed original
    far = str(MODS / "sharpen-a-lot.jpg")  # 12 bits: beyond this list's distance
    status, out, _ = run(capsys, "match", "--config", str(config), "--json", near, far)
    assert status == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["verdict"], r["list"]) for r in records] == [
        ("MATCH", "from-config"),
        ("CLEAN", None),
    ]


def test_hash_full_resolution_gives_the_reference_pdq(capsys: pytest.CaptureFixture[str]) -> None:
    expected = json.loads((MODS.parent.parent / "expected.json").read_text())
    reference = expected["full_resolution"]["hashes"]["bridge-mods/aaa-orig.jpg"]
    status, out, _ = run(capsys, "hash", "--full-resolution", str(MODS / "aaa-orig.jpg"))
    assert status == 0
    assert out.split()[1] == reference
