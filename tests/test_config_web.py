"""[web], [web.messages.LANG] and [metrics]: defaults, the loopback rule, named problems."""

from __future__ import annotations

import pytest

from kiosk.config import load_config
from kiosk.config.show import shown
from kiosk.errors import ConfigError
from support import write_config


def problems(tmp_path, extra_toml: str = "", **sections) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, None, extra_toml=extra_toml, **sections))
    return err.value.problems if hasattr(err.value, "problems") else str(err.value).splitlines()


def test_defaults_serve_on_loopback_in_three_languages(tmp_path):
    path = write_config(tmp_path, None)
    text = path.read_text().replace('listen = "127.0.0.1:0"\n', "")
    path.write_text(text)
    cfg = load_config(path)
    web = cfg.web
    assert web.enabled and web.listen == "127.0.0.1:8088" and web.host_port == ("127.0.0.1", 8088)
    assert web.languages == ("kk", "ru", "en") and web.show_holder
    assert web.accounts_file == str(tmp_path / "state" / "console.accounts")
    assert web.session_s == 3600.0 and not web.allow_plain_remote
    assert cfg.metrics.textfile is None and cfg.metrics.textfile_period_s == 15.0
    assert cfg.messages == () and cfg.metrics_token is None


def test_a_remote_listen_needs_tls_or_the_opt_in(tmp_path):
    found = problems(tmp_path, web={"listen": "0.0.0.0:8088"})
    assert any("[web] listen" in p and "not loopback" in p for p in found)
    cfg = load_config(
        write_config(tmp_path, None, web={"listen": "0.0.0.0:8088", "allow_plain_remote": True})
    )
    assert cfg.web.host_port == ("0.0.0.0", 8088)
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("y")
    tls = {"listen": "[::]:8443", "tls_cert": str(cert), "tls_key": str(key)}
    assert load_config(write_config(tmp_path, None, web=tls)).web.host_port == ("::", 8443)
    assert load_config(write_config(tmp_path, None, web={"listen": "[::1]:8088"})).web.listen


@pytest.mark.parametrize("listen", ["8088", "127.0.0.1", "127.0.0.1:99999", "http://x:1", ":80"])
def test_a_listen_address_not_host_port_is_named(tmp_path, listen):
    assert any(
        "[web] listen" in p and "HOST:PORT" in p for p in problems(tmp_path, web={"listen": listen})
    )


def test_half_a_tls_pair_is_named(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    found = problems(tmp_path, web={"tls_cert": str(cert)})
    assert any("[web] tls_key" in p and "required" in p for p in found)


def test_languages_are_checked(tmp_path):
    assert any("[web] languages" in p for p in problems(tmp_path, web={"languages": []}))
    assert any("twice" in p for p in problems(tmp_path, web={"languages": ["kk", "kk"]}))
    found = problems(tmp_path, web={"languages": ["kz"]})
    assert any("[web] languages[0]" in p and "'kk'" in p for p in found)
    cfg = load_config(write_config(tmp_path, None, web={"languages": ["ru", "kk"]}))
    assert cfg.web.languages == ("ru", "kk")


def test_the_metrics_token_is_a_secret_inline_or_from_a_file(tmp_path):
    cfg = load_config(write_config(tmp_path, None, web={"metrics_token": "scrape-0123456789"}))
    assert cfg.metrics_token is not None and cfg.metrics_token.reveal() == "scrape-0123456789"
    assert "scrape-0123456789" not in repr(cfg) and "scrape-0123456789" not in str(shown(cfg))
    (tmp_path / "tok").write_text("from-a-file-0123\n")
    cfg = load_config(write_config(tmp_path, None, web={"metrics_token_file": "tok"}))
    assert cfg.metrics_token is not None and cfg.metrics_token.reveal() == "from-a-file-0123"
    both = problems(tmp_path, web={"metrics_token": "a", "metrics_token_file": "tok"})
    assert any("not both" in p for p in both)


def test_a_venue_overrides_display_lines_per_language(tmp_path):
    extra = (
        '[web.messages.en]\nshow_code = "Show your pass"\nopens_at = "We open at {time}"\n'
        '[web.messages.kk]\nwelcome = "Сәлем!"\n'
    )
    cfg = load_config(write_config(tmp_path, None, extra_toml=extra))
    assert cfg.message_overrides() == {
        "en": {"show_code": "Show your pass", "opens_at": "We open at {time}"},
        "kk": {"welcome": "Сәлем!"},
    }
    assert shown(cfg)["web"]["messages"]["kk"] == {"welcome": "Сәлем!"}
    hash(cfg)  # still a hashable record


def test_an_unknown_language_or_message_is_named_with_the_near_miss(tmp_path):
    extra = (
        '[web.messages.kz]\nshow_code = "x"\n'
        '[web.messages.en]\nshow_cod = "x"\nwelcome = 3\nopens_at = "soon"\n'
    )
    found = problems(tmp_path, extra_toml=extra)
    text = "\n".join(found)
    assert (
        "kiosk.toml: [web.messages.kz]: unknown language; the display speaks 'kk', 'ru', 'en'"
        in text
    )
    assert "[web.messages.en] show_cod: unknown message; did you mean 'show_code'?" in text
    assert "[web.messages.en] welcome: expected a line of text" in text
    assert "[web.messages.en] opens_at: must hold {time} once" in text


def test_a_messages_key_that_is_not_a_table_is_named(tmp_path):
    found = problems(tmp_path, web={"messages": "hello"})
    assert any("[web] messages" in p for p in found)


def test_metrics_textfile_and_its_period(tmp_path):
    cfg = load_config(
        write_config(tmp_path, None, metrics={"textfile": "m/ashyq.prom", "textfile_period_s": 60})
    )
    assert cfg.metrics.textfile == str(tmp_path / "m" / "ashyq.prom")
    found = problems(tmp_path, metrics={"textfile_period_s": 0.5})
    assert any("[metrics] textfile_period_s" in p and "minimum" in p for p in found)


def test_an_unknown_web_key_is_named_with_the_near_miss(tmp_path):
    found = problems(tmp_path, web={"show_holders": False})
    assert any("[web] show_holders: unknown key; did you mean 'show_holder'?" in p for p in found)
