"""Just enough vCard reading for the scenarios' checks: unfold, split, unescape (RFC 6350 §3.2-3.4)."""
from __future__ import annotations


def unfold(text: str) -> list[str]:
    out: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith((" ", "\t")) and out:
            out[-1] += line[1:]
        elif line:
            out.append(line)
    return out


def unescape(v: str) -> str:
    out, i = [], 0
    while i < len(v):
        c = v[i]
        if c == "\\" and i + 1 < len(v):
            n = v[i + 1]
            out.append("\n" if n in "nN" else n)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def props(text: str) -> list[tuple[str, str, str]]:
    """(NAME, params, raw value) for each content line; the group prefix is dropped."""
    res = []
    for line in unfold(text):
        head, sep, value = line.partition(":")
        if not sep:
            continue
        name, _, params = head.partition(";")
        name = name.split(".")[-1].upper()
        res.append((name, params, value))
    return res


def values(text: str, name: str) -> list[str]:
    return [unescape(v) for n, _, v in props(text) if n == name.upper()]


def first(text: str, name: str) -> str | None:
    v = values(text, name)
    return v[0] if v else None
