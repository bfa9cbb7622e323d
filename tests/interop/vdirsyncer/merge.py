#!/usr/bin/env python3
"""vdirsyncer conflict resolution command: `merge.py A_FILE B_FILE` (A = local vdir, B = Portico).

Merges without losing data: the result is B's card (the server's edit wins for properties that
hold one value, such as NOTE and FN) plus every multi-valued property line of A that B lacks
(EMAIL, TEL, ADR, URL, IMPP, CATEGORIES, ...), so an address added on the phone and a note
changed in the back office both survive. Writes the result to both files, as vdirsyncer requires.
"""
import sys

MULTI = {"EMAIL", "TEL", "ADR", "URL", "IMPP", "CATEGORIES", "RELATED", "X-SOCIALPROFILE"}


def unfold(text):
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith((" ", "\t")) and out:
            out[-1] += line[1:]
        elif line:
            out.append(line)
    return out


def name_of(line):
    return line.split(":", 1)[0].split(";", 1)[0].split(".")[-1].upper()


def main():
    a_path, b_path = sys.argv[1], sys.argv[2]
    a = unfold(open(a_path, encoding="utf-8").read())
    b = unfold(open(b_path, encoding="utf-8").read())
    extra = [ln for ln in a if name_of(ln) in MULTI and ln not in b]
    end = max(i for i, ln in enumerate(b) if ln.upper() == "END:VCARD")
    merged = b[:end] + extra + b[end:]
    text = "\r\n".join(merged) + "\r\n"
    for p in (a_path, b_path):
        with open(p, "w", encoding="utf-8", newline="") as f:
            f.write(text)


if __name__ == "__main__":
    main()
