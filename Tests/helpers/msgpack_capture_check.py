#!/usr/bin/env python3
"""Checks msgpack bytes against a capture's decoded structure (the `.repr.txt` of a real exchange).

usage: msgpack_capture_check.py CAPTURE.repr.txt BODY.msgpack
Decodes BODY with the msgpack package and compares it with the Python literal in CAPTURE; prints
"same" and exits 0, or prints both structures and exits 1.
"""
import ast
import sys

import msgpack


def main(repr_path, body_path):
    expected = ast.literal_eval(open(repr_path).read())
    actual = msgpack.unpackb(open(body_path, "rb").read(), raw=False, strict_map_key=False)
    if actual == expected:
        print("same")
        return 0
    print("expected:", expected)
    print("actual:  ", actual)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
