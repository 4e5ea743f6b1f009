"""Text from submissions and benchmark files is data: never markup, terminal control or a formula.

    visible(text)          control characters (C0, DEL, C1: escape sequences), bidi controls and other
                           invisible format characters written as visible escapes (``\\x1b``, ``\\u202e``)
    cap(text, limit)       at most ``limit`` characters, the cut said in the text
    cap_strings(value)     every string of a JSON-like value capped at ``MAX_STORED_TEXT``
    visible_strings(value) every string of a JSON-like value through ``visible`` (JSON viewers)
    csv_cell(value)        a spreadsheet formula prefix (``= + - @``, tab, CR) neutralised by a ``'``
    csv_safe(frame)        ``csv_cell`` and ``visible`` on every text cell of a data frame
    markdown_literal(text) for Streamlit elements that read Markdown (captions, labels, messages):
                           every ASCII punctuation character backslash-escaped, autolinks and
                           shortcodes broken by invisible word joiners, plus ``visible``
    code_span(text)        the same as a Markdown code span (a path in a message)

Terminal output (``frugalbench.cli``) passes every string through ``visible`` (and rich's
``escape``); the leaderboard shows such strings with elements that render plain text, or through
``markdown_literal`` where an element reads Markdown.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

MAX_STORED_TEXT = 5000  # characters per string in a stored run document (the manifest's description limit)
FORMULA_PREFIXES = ('=', '+', '-', '@', '\t', '\r')

# Bidi controls (LRM, RLM, ALM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI) and other invisible characters.
_BIDI = frozenset('\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069')
_KEEP_FORMAT = frozenset('\u200c\u200d')  # zero-width (non-)joiners: part of how some scripts are written
_MARKDOWN_PUNCTUATION = frozenset('\\`*_{}[]()<>#+-.!|~$:"\'&%=^,;?/@')


def _hidden(char: str) -> bool:
    if char in _BIDI:
        return True
    category = unicodedata.category(char)
    if category in ('Cc', 'Cs', 'Zl', 'Zp'):  # controls (ESC, CSI 0x9b, ...), surrogates, line/paragraph sep.
        return True
    return category == 'Cf' and char not in _KEEP_FORMAT


def _escape(char: str) -> str:
    code = ord(char)
    return f'\\x{code:02x}' if code < 0x100 else f'\\u{code:04x}'


def visible(text: object, keep_newlines: bool = False) -> str:
    """``text`` with every control, bidi or invisible format character as a visible escape."""
    text = str(text)
    if all(char.isprintable() or (keep_newlines and char == '\n') for char in text) and not any(
            char in _BIDI for char in text):
        return text
    return ''.join(_escape(char) if _hidden(char) and not (keep_newlines and char == '\n') else char
                   for char in text)


def cap(text: str, limit: int = MAX_STORED_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    note = f' [... {len(text) - limit} more characters not stored]'
    return text[:max(0, limit - len(note))] + note


def cap_strings(value: Any, limit: int = MAX_STORED_TEXT) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings, numbers) with every string, keys included,
    capped at ``limit`` characters."""
    if isinstance(value, str):
        return cap(value, limit)
    if isinstance(value, Mapping):
        return {cap(k, limit) if isinstance(k, str) else k: cap_strings(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [cap_strings(v, limit) for v in value]
    return value


def visible_strings(value: Any) -> Any:
    """A copy of a JSON-like value with every string, keys included, passed through ``visible``
    (for JSON viewers, which show a string's characters as they are)."""
    if isinstance(value, str):
        return visible(value, keep_newlines=True)
    if isinstance(value, Mapping):
        return {visible(k) if isinstance(k, str) else k: visible_strings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [visible_strings(v) for v in value]
    return value


def csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula, prefixed with ``'``; others unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_safe(frame: Any) -> Any:
    """A copy of a pandas frame whose text cells (and column names) are visible and formula-free."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype).startswith(('string', 'str')):
            out[column] = out[column].map(lambda v: csv_cell(visible(v, keep_newlines=True))
                                          if isinstance(v, str) else v)
    out.columns = [csv_cell(visible(c)) if isinstance(c, str) else c for c in out.columns]
    return out


WORD_JOINER = '\u2060'  # invisible, no width: breaks what Markdown would link or replace after parsing


def markdown_literal(text: object) -> str:
    """``text`` for a Streamlit element that reads Markdown: shown as the characters it holds.

    ASCII punctuation is backslash-escaped (emphasis, links, HTML, ``:red[...]`` directives, math);
    a word joiner follows each ``:`` and ``.`` and precedes each ``@``, since bare URLs, e-mail
    addresses and ``:emoji:`` shortcodes are turned into links and pictures after parsing, where
    escapes no longer count."""
    out = []
    for char in visible(text):
        if char == '@':
            out.append(WORD_JOINER)
        out.append('\\' + char if char in _MARKDOWN_PUNCTUATION else char)
        if char in ':.':
            out.append(WORD_JOINER)
    return ''.join(out)


def code_span(text: object) -> str:
    """``text`` as a Markdown code span (nothing inside is interpreted), fenced with more
    backticks than it holds in a row; control and bidi characters visible."""
    shown = visible(text)
    longest = max((len(run) for run in _backtick_runs(shown)), default=0)
    fence = '`' * (longest + 1)
    pad = ' ' if shown.startswith('`') or shown.endswith('`') else ''
    return f'{fence}{pad}{shown}{pad}{fence}'


def _backtick_runs(text: str) -> list[str]:
    runs, current = [], ''
    for char in text:
        if char == '`':
            current += char
        elif current:
            runs.append(current)
            current = ''
    return runs + ([current] if current else [])
