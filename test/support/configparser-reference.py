#!/usr/bin/env python3
"""What Python's configparser makes of INI files: the reference that
src/config/configparser.ts must match.

    configparser-reference.py [--set SECTION KEY VALUE]... FILE...
    configparser-reference.py --batch CASES.json

Files are read in order with ConfigParser(interpolation=ExtendedInterpolation())
(via read_file, so a missing file is an error), then each --set is applied.
Prints {"ok": true, "sections": {name: items(name)}} with a section whose items
fail to interpolate as {"error": ExceptionClassName}, or {"ok": false,
"error": ExceptionClassName} when reading or setting fails.

--batch takes a JSON list of cases, each a list of file texts or
{"files": [text, ...], "sets": [[section, key, value], ...]}, and prints a
JSON list of results. The texts are written to temporary files first, so that
they are read exactly as files are (universal newlines).
"""

import configparser
import json
import os
import sys
import tempfile


def run(paths, sets):
    parser = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
    try:
        for path in paths:
            # utf-8-sig: a byte order mark is not part of the first line.
            with open(path, encoding="utf-8-sig") as f:
                parser.read_file(f)
        for section, key, value in sets:
            parser.set(section, key, value)
    except Exception as e:  # the verdict is the exception's class
        return {"ok": False, "error": type(e).__name__}
    sections = {}
    for name in parser.sections():
        try:
            sections[name] = dict(parser.items(name))
        except configparser.Error as e:
            sections[name] = {"error": type(e).__name__}
    return {"ok": True, "sections": sections}


def run_batch(cases_path):
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    results = []
    with tempfile.TemporaryDirectory(prefix="configparser-reference-") as folder:
        for number, case in enumerate(cases):
            if isinstance(case, list):
                case = {"files": case}
            paths = []
            for index, text in enumerate(case["files"]):
                path = os.path.join(folder, "case-%d-file-%d.ini" % (number, index))
                # newline="": write the text's own line ends unchanged.
                with open(path, "w", encoding="utf-8", newline="") as f:
                    f.write(text)
                paths.append(path)
            results.append(run(paths, [tuple(s) for s in case.get("sets", [])]))
    return results


def main(argv):
    paths = []
    sets = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--batch" and i + 1 < len(argv):
            json.dump(run_batch(argv[i + 1]), sys.stdout)
            return 0
        if arg == "--set" and i + 3 < len(argv):
            sets.append((argv[i + 1], argv[i + 2], argv[i + 3]))
            i += 4
            continue
        if arg == "--":
            paths.extend(argv[i + 1:])
            break
        paths.append(arg)
        i += 1
    json.dump(run(paths, sets), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
