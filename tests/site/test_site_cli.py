"""``funnelguard site build|serve``: flags, store resolution, exit codes, the 127.0.0.1 server."""

from __future__ import annotations

import argparse
import threading
import urllib.error
import urllib.request

import pytest


def _parser() -> argparse.ArgumentParser:
    from monitors.site.cli import register

    parser = argparse.ArgumentParser(prog="funnelguard")
    register(parser.add_subparsers(dest="command"))
    return parser


def _run(*argv: str) -> tuple[int, str | None]:
    """(exit code, error message) through the same edge as ``funnelguard.cli.run``."""
    from funnelguard.commands import execute

    args = _parser().parse_args(list(argv))
    done = execute(args.command_name, lambda: args.handler(args))
    return done.code, done.result.error.message if done.result and done.result.error else None


def test_build_writes_the_site_and_says_where(filled_store, tmp_path, capsys):
    out = tmp_path / "site"
    assert _run("site", "build", "--store", filled_store.url, "--out", str(out)) == (0, None)
    said = capsys.readouterr().out
    assert f"{len(filled_store.runs)} run pages written" in said and "index.html" in said
    assert (out / "index.html").is_file()
    assert _run("site", "build", "--store", filled_store.url, "--out", str(out)) == (0, None)
    assert "0 run pages written" in capsys.readouterr().out


def test_store_defaults_to_the_environment(filled_store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FUNNELGUARD_STORE", filled_store.url)
    out = tmp_path / "site"
    code, _ = _run("site", "build", "--project", str(filled_store.market.project_path),
                   "--out", str(out))
    assert code == 0 and f"{len(filled_store.runs)} runs" in capsys.readouterr().out


def test_bad_inputs_exit_2_with_the_reason(tmp_path):
    code, error = _run("site", "build", "--store", f"sqlite:///{tmp_path / 'none.db'}",
                       "--out", str(tmp_path / "s"))
    assert code == 2 and "found no file" in error and "none.db" in error
    code, error = _run("site", "build", "--store", "not a url", "--out", str(tmp_path / "s"))
    assert code == 2 and "SQLAlchemy URL" in error
    code, error = _run("site", "serve", "--out", str(tmp_path / "empty"))
    assert code == 2 and "no index.html" in error
    code, error = _run("site", "serve", "--out", str(tmp_path), "--port", "70000")
    assert code == 2 and "--port" in error
    code, error = _run("site", "build", "--store", "sqlite://", "--out", str(tmp_path / "s"),
                       "--trend-partitions", "0")
    assert code == 2 and "--trend-partitions" in error


def test_server_binds_loopback_and_serves_the_pages(built_site, filled_store):
    from monitors.site import make_server

    out, _ = built_site
    server = make_server(out, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        base = f"http://{host}:{port}"
        with urllib.request.urlopen(f"{base}/") as r:
            assert r.status == 200 and b"funnelguard results" in r.read()
        run_id = filled_store.runs["validate_online"]
        with urllib.request.urlopen(f"{base}/runs/{run_id}.html") as r:
            assert f"Run {run_id}:".encode() in r.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/runs/999999.html")
        assert missing.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_registered_in_the_funnelguard_command(filled_store, tmp_path):
    from funnelguard import cli

    if "monitors.site.cli" not in cli.COMMAND_MODULES:
        pytest.skip("monitors.site.cli is not yet listed in funnelguard.cli.COMMAND_MODULES")
    code, result = cli.run(["site", "build", "--store", filled_store.url,
                            "--out", str(tmp_path / "site")])
    assert code == 0 and result is None and (tmp_path / "site" / "index.html").is_file()
