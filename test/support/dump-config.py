#!/usr/bin/env python3
"""Print what Python's configparser makes of image-factory configuration
files, as image-factory reads them.

    dump-config.py DATA_DIR FILE...

The files are read in order with ConfigParser(interpolation=
ExtendedInterpolation()) after [DEFAULT] data_dir is set to DATA_DIR, as
image-factory does. Prints one JSON object: {"sections": {name: items}}, where
items is {key: value} with every ${...} resolved, or {"__error__": message}
for a section whose values cannot be resolved. A file that cannot be read or
parsed prints {"error": message} and exits with 1.
"""

import configparser
import json
import sys


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    data_dir, paths = argv[0], argv[1:]
    parser = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
    parser.set("DEFAULT", "data_dir", data_dir)
    try:
        for path in paths:
            with open(path, encoding="utf-8") as f:
                parser.read_file(f)
    except (OSError, configparser.Error) as e:
        json.dump({"error": "%s: %s" % (type(e).__name__, e)}, sys.stdout)
        return 1
    sections = {}
    for name in parser.sections():
        try:
            sections[name] = dict(parser.items(name))
        except configparser.Error as e:
            sections[name] = {"__error__": "%s: %s" % (type(e).__name__, e)}
    json.dump({"sections": sections}, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
