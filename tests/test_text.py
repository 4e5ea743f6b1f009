"""frugalbench.text: what makes text from submissions inert (issue 15, item 3)."""
from __future__ import annotations

from frugalbench.text import (
    MAX_STORED_TEXT,
    WORD_JOINER,
    cap,
    cap_strings,
    code_span,
    markdown_literal,
    visible,
    visible_strings,
)


def test_visible_writes_controls_escapes_and_bidi_as_escapes_and_keeps_other_text() -> None:
    assert visible('a\x1b[31mb\x07\x9b\x7f\u202e\u2066\u200b\u2028c') == \
        'a\\x1b[31mb\\x07\\x9b\\x7f\\u202e\\u2066\\u200b\\u2028c'
    assert visible('Ünïcödé 名前 عربي e\u0301 \u200d') == 'Ünïcödé 名前 عربي e\u0301 \u200d'  # ZWJ kept
    assert visible('two\nlines\t') == 'two\\x0alines\\x09'
    assert visible('two\nlines', keep_newlines=True) == 'two\nlines'


def test_cap_says_how_much_was_cut_and_cap_strings_reaches_keys_and_lists() -> None:
    text = 'x' * 10_000
    capped = cap(text)
    assert len(capped) == MAX_STORED_TEXT and capped.endswith('[... 5000 more characters not stored]')
    assert cap('short') == 'short'
    value = cap_strings({'k' * 6000: ['y' * 6000, 3, None, {'z': 'ok'}]})
    [(key, items)] = value.items()
    assert len(key) == MAX_STORED_TEXT and len(items[0]) == MAX_STORED_TEXT and items[1:] == [3, None, {'z': 'ok'}]


def test_markdown_literal_escapes_syntax_and_breaks_autolinks_and_shortcodes() -> None:
    out = markdown_literal('**b** [l](http://x.io) <i>h</i> :red[r] $x$ a@b.c :smile:')
    assert '\\*\\*b\\*\\*' in out and '\\[l\\]' in out and '\\<i\\>' in out and '\\$x\\$' in out
    assert 'http://' not in out and 'x.io' not in out and 'a@b' not in out and ':smile:' not in out
    assert out.replace(WORD_JOINER, '').replace('\\', '') == '**b** [l](http://x.io) <i>h</i> :red[r] $x$ a@b.c :smile:'


def test_code_span_fences_longer_than_any_backtick_run() -> None:
    assert code_span('plain') == '`plain`'
    assert code_span('a`b``c') == '```a`b``c```'
    assert code_span('`edge`') == '`` `edge` ``'
    assert code_span('\x1b[2J') == '`\\x1b[2J`'


def test_visible_strings_maps_every_string_of_a_json_value() -> None:
    assert visible_strings({'n\u202e': ['\x1b', 1, {'a': 'b\nc'}]}) == {'n\\u202e': ['\\x1b', 1, {'a': 'b\nc'}]}
