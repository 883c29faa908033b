"""The console producer's line format: the cases of Kafka's ``LineMessageReaderTest``.

The reader is the pure function behind ``streamlog produce``; these cases call it
directly (fast), and ``test_cli_produce.py`` runs the same rules through the real
command.
"""

from __future__ import annotations

import pytest

from streamlog._cli._produce import LineFormatError, LineMessageReader, ParsedRecord

Headers = list[tuple[str, bytes | None]]


def props(**kw: str) -> dict[str, str]:
    base = {"parse.key": "true", "parse.headers": "true"}
    base.update({k.replace("_", "."): v for k, v in kw.items()})
    return base


def read(p: dict[str, str], text: str) -> list[ParsedRecord]:
    reader = LineMessageReader(p)
    return [reader.parse(line, n) for n, line in enumerate(text.splitlines(), 1)]


def rec(key: str | None, value: str | None, headers: Headers | None = None) -> ParsedRecord:
    return ParsedRecord(
        None if key is None else key.encode(),
        None if value is None else value.encode(),
        headers or [],
    )


def h(key: str, value: str | None) -> tuple[str, bytes | None]:
    return (key, None if value is None else value.encode())


def test_line_reader() -> None:
    got = read(props(parse_headers="false"), "key0\tvalue0\nkey1\tvalue1")
    assert got == [rec("key0", "value0"), rec("key1", "value1")]


def test_line_reader_header() -> None:
    got = read(props(), "headerKey0:headerValue0,headerKey1:headerValue1\tkey0\tvalue0\n")
    assert got == [
        rec("key0", "value0", [h("headerKey0", "headerValue0"), h("headerKey1", "headerValue1")])
    ]


def test_minimal_valid_input_with_header_key_and_value() -> None:
    assert read(props(), ":\t\t") == [rec("", "", [h("", "")])]


def test_key_missing_value() -> None:
    assert read(props(parse_headers="false"), "key\t") == [rec("key", "")]


def test_first_separator_splits_the_rest_stays_in_the_value() -> None:
    assert read(props(parse_headers="false"), "k\tv1\tv2") == [rec("k", "v1\tv2")]


def test_demarcations_longer_than_one() -> None:
    p = {
        **props(),
        "key.separator": "\t\t",
        "headers.delimiter": "\t\t",
        "headers.separator": "---",
        "headers.key.separator": "::::",
    }
    got = read(p, "headerKey0.0::::headerValue0.0---headerKey1.0::::\t\tkey\t\tvalue")
    assert got == [
        rec("key", "value", [h("headerKey0.0", "headerValue0.0"), h("headerKey1.0", "")])
    ]


def test_header_no_key() -> None:
    got = read(props(parse_key="false"), "headerKey:headerValue\tvalue\n")
    assert got == [rec(None, "value", [h("headerKey", "headerValue")])]


def test_only_value() -> None:
    assert read(props(parse_key="false", parse_headers="false"), "value\n") == [rec(None, "value")]


def test_custom_delimiters_and_varying_header_counts() -> None:
    p = {
        **props(),
        "key.separator": "#",
        "headers.delimiter": "!",
        "headers.separator": "&",
        "headers.key.separator": ":",
    }
    text = (
        "headerKey0.0:headerValue0.0&headerKey0.1:headerValue0.1!key0#value0\n"
        "headerKey1.0:headerValue1.0!key1#value1"
    )
    assert read(p, text) == [
        rec(
            "key0",
            "value0",
            [h("headerKey0.0", "headerValue0.0"), h("headerKey0.1", "headerValue0.1")],
        ),
        rec("key1", "value1", [h("headerKey1.0", "headerValue1.0")]),
    ]


def test_missing_key_separator() -> None:
    reader = LineMessageReader(props())
    reader.parse("headerKey0.0:headerValue0.0,headerKey0.1:headerValue0.1\tkey0\tvalue0", 1)
    line = "headerKey1.0:headerValue1.0\tkey1[MISSING-DELIMITER]value1"
    with pytest.raises(LineFormatError) as e:
        reader.parse(line, 2)
    assert str(e.value) == f"No key separator found on line number 2: '{line}'"


def test_missing_header_key_separator() -> None:
    with pytest.raises(LineFormatError) as e:
        read(props(), "key[MISSING-DELIMITER]val\tkey0\tvalue0\n")
    assert str(e.value) == (
        "No header key separator found in pair 'key[MISSING-DELIMITER]val' on line number 1"
    )


def test_missing_headers_delimiter() -> None:
    with pytest.raises(LineFormatError) as e:
        read(props(), "no-delimiter-here")
    assert str(e.value) == "No headers delimiter found on line number 1: 'no-delimiter-here'"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"headers.delimiter": "\t", "headers.separator": "\t", "headers.key.separator": "\t"},
            "headers.delimiter and headers.separator may not be equal",
        ),
        (
            {"headers.delimiter": "\t", "headers.separator": ",", "headers.key.separator": "\t"},
            "headers.delimiter and headers.key.separator may not be equal",
        ),
        (
            {"headers.delimiter": "\t", "headers.separator": ",", "headers.key.separator": ","},
            "headers.separator and headers.key.separator may not be equal",
        ),
    ],
)
def test_header_demarcation_collision(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(LineFormatError) as e:
        LineMessageReader({**props(), **overrides})
    assert str(e.value) == message


def test_ignore_error_in_input() -> None:
    text = (
        "headerKey0.0:headerValue0.0\tkey0\tvalue0\n"
        "headerKey1.0:headerValue1.0,headerKey1.1:headerValue1.1[MISSING-HEADER-DELIMITER]key1"
        "\tvalue1\n"
        "headerKey2.0:headerValue2.0\tkey2[MISSING-KEY-DELIMITER]value2\n"
        "headerKey3.0:headerValue3.0[MISSING-HEADER-DELIMITER]key3[MISSING-KEY-DELIMITER]value3\n"
    )
    assert read(props(ignore_error="true"), text) == [
        rec("key0", "value0", [h("headerKey0.0", "headerValue0.0")]),
        rec(
            None,
            "value1",
            [
                h("headerKey1.0", "headerValue1.0"),
                h("headerKey1.1", "headerValue1.1[MISSING-HEADER-DELIMITER]key1"),
            ],
        ),
        rec(None, "key2[MISSING-KEY-DELIMITER]value2", [h("headerKey2.0", "headerValue2.0")]),
        rec(
            None,
            "headerKey3.0:headerValue3.0[MISSING-HEADER-DELIMITER]key3[MISSING-KEY-DELIMITER]value3",
        ),
    ]


def test_malformed_header_ignore_error() -> None:
    assert read(props(ignore_error="true"), "key-val\tkey0\tvalue0\n") == [
        rec("key0", "value0", [("key-val", None)])
    ]


def test_null_marker() -> None:
    text = "key\t\nkey\t<NULL>\nkey\t<NULL>value\n<NULL>\tvalue\n<NULL>\t<NULL>"
    p = props(parse_headers="false")
    assert read({**p, "null.marker": "<NULL>"}, text) == [
        rec("key", ""),
        rec("key", None),
        rec("key", "<NULL>value"),
        rec(None, "value"),
        rec(None, None),
    ]
    assert read(p, text) == [
        rec("key", ""),
        rec("key", "<NULL>"),
        rec("key", "<NULL>value"),
        rec("<NULL>", "value"),
        rec("<NULL>", "<NULL>"),
    ]


def test_null_marker_with_headers() -> None:
    text = (
        "h0:v0,h1:v1\t<NULL>\tvalue\n"
        "<NULL>\tkey\t<NULL>\n"
        "h0:,h1:v1\t<NULL>\t<NULL>\n"
        "h0:<NULL>,h1:v1\tkey\t<NULL>\n"
        "h0:<NULL>,h1:<NULL>value\tkey\t<NULL>\n"
    )
    h1 = h("h1", "v1")
    assert read({**props(), "null.marker": "<NULL>"}, text) == [
        rec(None, "value", [h("h0", "v0"), h1]),
        rec("key", None),
        rec(None, None, [h("h0", ""), h1]),
        rec("key", None, [h("h0", None), h1]),
        rec("key", None, [h("h0", None), h("h1", "<NULL>value")]),
    ]
    # without the marker, line 2 has a header pair without a key separator
    reader = LineMessageReader(props())
    lines = text.splitlines()
    assert reader.parse(lines[0], 1) == rec("<NULL>", "value", [h("h0", "v0"), h1])
    with pytest.raises(LineFormatError) as e:
        reader.parse(lines[1], 2)
    assert str(e.value) == "No header key separator found in pair '<NULL>' on line number 2"
    assert reader.parse(lines[2], 3) == rec("<NULL>", "<NULL>", [h("h0", ""), h1])
    assert reader.parse(lines[3], 4) == rec("key", "<NULL>", [h("h0", "<NULL>"), h1])
    assert reader.parse(lines[4], 5) == rec(
        "key", "<NULL>", [h("h0", "<NULL>"), h("h1", "<NULL>value")]
    )


def test_null_marker_header_key_throws() -> None:
    text = "<NULL>:v0,h1:v1\tkey\tvalue\n"
    with pytest.raises(LineFormatError) as e:
        read({**props(), "null.marker": "<NULL>"}, text)
    assert str(e.value) == (
        "Header keys should not be equal to the null marker '<NULL>' as they can't be null"
    )
    assert read(props(), text) == [rec("key", "value", [h("<NULL>", "v0"), h("h1", "v1")])]


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("-", "null.marker and headers.delimiter may not be equal"),
        (":", "null.marker and headers.separator may not be equal"),
        ("/", "null.marker and headers.key.separator may not be equal"),
        ("\t", "null.marker and key.separator may not be equal"),
    ],
)
def test_invalid_null_marker(marker: str, message: str) -> None:
    p = {
        **props(),
        "headers.delimiter": "-",
        "headers.separator": ":",
        "headers.key.separator": "/",
        "null.marker": marker,
    }
    with pytest.raises(LineFormatError) as e:
        LineMessageReader(p)
    assert str(e.value) == message


def test_headers_separator_is_a_regex_and_trailing_empty_pairs_are_dropped() -> None:
    p = {**props(), "headers.separator": "[,;]"}
    assert read(p, "a:1;b:2,\tk\tv") == [rec("k", "v", [h("a", "1"), h("b", "2")])]


def test_undecodable_bytes_pass_through() -> None:
    reader = LineMessageReader(props(parse_headers="false"))
    line = b"k\xff\tv\xfe".decode("utf-8", "surrogateescape")
    assert reader.parse(line, 1) == ParsedRecord(b"k\xff", b"v\xfe", [])
