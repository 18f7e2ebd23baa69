#!/usr/bin/env python3
"""Contract test: pymarketstore (the real Python client) against the MarketStore test server,
compared with the exchange captured from the real server, and the Swift client's Write body
compared with what pymarketstore sends for the same numpy array.

usage: pymarketstore_contract.py URL CAPTURES_DIR SWIFT_WRITE_BODY
Prints one line per check and exits 1 on the first difference.
"""
import ast
import os
import sys

import msgpack
import numpy as np
import pymarketstore as pymkts
import requests

sent, received = [], []
_post = requests.Session.post


def recording_post(self, url, data=None, **kw):
    sent.append(data)
    response = _post(self, url, data=data, **kw)
    received.append(response.content)
    return response


requests.Session.post = recording_post


def load_repr(captures, name):
    return ast.literal_eval(open(os.path.join(captures, name + ".repr.txt")).read())


def check(label, actual, expected):
    if actual != expected:
        print("DIFFERENT:", label)
        print("  expected:", expected)
        print("  actual:  ", actual)
        sys.exit(1)
    print("same:", label)


def main(url, captures, swift_body_path):
    captured_write = load_repr(captures, "write_request_body")
    ds = captured_write["params"]["requests"][0]["dataset"]
    dtype = [(n, "<" + t) for n, t in zip(ds["names"], ds["types"])]
    array = np.zeros(ds["length"], dtype=dtype)
    for name, typ, raw in zip(ds["names"], ds["types"], ds["data"]):
        array[name] = np.frombuffer(raw, dtype="<" + typ)

    client = pymkts.Client(url)
    client.write(array, "BTCUSDT/1Min/OHLCV")
    check("pymarketstore's Write body vs the captured one", msgpack.unpackb(sent[-1]), captured_write)
    check("the server's Write response vs the real one", msgpack.unpackb(received[-1]), load_repr(captures, "write_response_body"))

    reply = client.query(pymkts.Params("BTCUSDT", "1Min", "OHLCV"))
    check("pymarketstore's Query body vs the captured one", msgpack.unpackb(sent[-1]), load_repr(captures, "query_request_body"))
    check("the server's Query response vs the real one", msgpack.unpackb(received[-1]), load_repr(captures, "query_response_body"))
    frame = reply.first().df()
    for name in ds["names"][1:]:
        check("column %s read back by pymarketstore" % name, frame[name].to_numpy().tobytes(), array[name].tobytes())

    swift = msgpack.unpackb(open(swift_body_path, "rb").read())
    check("the Swift client's Write body vs pymarketstore's for the same array", swift, msgpack.unpackb(sent[0]))


if __name__ == "__main__":
    main(*sys.argv[1:4])
