import json

from agent.cli import main
from tests import sample_documents as docs


def test_count_prints_json_with_sheets_for_copies_duplex_and_n_up(tmp_path, capsys):
    path = docs.pdf(tmp_path / "d.pdf", 6, colour_pages=(0,))
    assert main(["count", str(path), "--copies", "2", "--duplex", "--number-up", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {k: out[k] for k in ("format", "pages", "sheets", "colour_pages", "paper_size")} == \
        {"format": "pdf", "pages": 3, "sheets": 4, "colour_pages": 1, "paper_size": "A4"}
    assert out["bytes"] == path.stat().st_size


def test_count_of_an_unknown_format_prints_null_pages_and_exits_3(tmp_path, capsys):
    path = tmp_path / "blob"
    path.write_bytes(b"\x00\xff" * 100)
    assert main(["count", str(path)]) == 3
    captured = capsys.readouterr()
    assert json.loads(captured.out)["pages"] is None and "unknown format" in captured.err


def test_count_of_a_missing_file_is_an_error(tmp_path, capsys):
    assert main(["count", str(tmp_path / "nope.pdf")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_bad_copies_is_a_usage_error(tmp_path, capsys):
    path = docs.pdf(tmp_path / "d.pdf", 1)
    try:
        main(["count", str(path), "--copies", "0"])
    except SystemExit as exit:
        assert exit.code == 2
    assert "0 is less than 1" in capsys.readouterr().err


def test_install_with_an_unknown_property_names_it(tmp_path, capsys):
    assert main(["install", "COLOUR=1", "--state-dir", str(tmp_path)]) == 1
    assert "unknown argument 'COLOUR'" in capsys.readouterr().err


def test_install_without_a_services_url_says_what_is_missing(tmp_path, capsys):
    assert main(["install", "AGENTTOKEN=x", "--state-dir", str(tmp_path)]) == 1
    assert "ServicesUrl is required" in capsys.readouterr().err


def test_flush_before_install_says_to_install(tmp_path, capsys):
    assert main(["flush", "--state-dir", str(tmp_path)]) == 1
    assert "pageledger-agent install" in capsys.readouterr().err
