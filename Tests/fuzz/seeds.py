#!/usr/bin/env python3
"""Seed corpora for the libFuzzer targets (make fuzz-coverage): zip shapes (stored, deflated, data
descriptor, zip64, a header line, microseconds) and prefixes of the real archives of ../shared
(read in place, written only into the corpus folder under .build-fuzz), CSV rows, msgpack bodies
(the real captures and a small write request)."""
import io
import os
import sys
import zipfile

out, shared = sys.argv[1], sys.argv[2]
ROWS = ("1704067200000,42283.58000000,42298.62000000,42261.02000000,42298.61000000,35.92724000,1704067259999,"
        "1519032.49812980,1327,23.24777000,982787.70578230,0\n")
US = ROWS.replace("1704067200000", "1735689600000000").replace("1704067259999", "1735689659999999")
HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
          "taker_buy_quote_volume,ignore\n")


class Unseekable(io.RawIOBase):
    """A stream zipfile cannot seek in, so it writes data descriptors."""
    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += b
        return len(b)


def zipped(text, method=zipfile.ZIP_DEFLATED, zip64=False, descriptor=False):
    stream = Unseekable() if descriptor else io.BytesIO()
    with zipfile.ZipFile(stream, "w", compression=method) as z:
        with z.open(zipfile.ZipInfo("BTCUSDT-1m-2024-01-01.csv", (2024, 1, 1, 0, 0, 0)), "w", force_zip64=zip64) as f:
            f.write(text.encode())
    return bytes(stream.buf if descriptor else stream.getvalue())


def save(kind, name, data):
    os.makedirs(os.path.join(out, kind), exist_ok=True)
    with open(os.path.join(out, kind, name), "wb") as f:
        f.write(data)


rows = ROWS * 3
for label, data in [("deflated", zipped(rows)), ("stored", zipped(rows, zipfile.ZIP_STORED)),
                    ("zip64", zipped(rows, zip64=True)), ("zip64-stored", zipped(rows, zipfile.ZIP_STORED, zip64=True)),
                    ("descriptor", zipped(rows, descriptor=True)), ("descriptor-zip64", zipped(rows, zip64=True, descriptor=True)),
                    ("header", zipped(HEADER + rows)), ("micro", zipped(US * 2))]:
    save("zip", label, data)
binance = os.path.join(shared, "binance")
if os.path.isdir(binance):
    for name in sorted(os.listdir(binance)):
        if name.endswith(".zip"):
            data = open(os.path.join(binance, name), "rb").read()
            save("zip", "real-" + name, data if len(data) < 64 << 10 else data[:4096] + data[-4096:])
for label, text in [("ms", rows), ("us", US * 3), ("header", HEADER + rows), ("crlf", rows.replace("\n", "\r\n")), ("no-final-newline", rows[:-1])]:
    save("csv", label, b"\x07" + text.encode())  # the first byte picks the piece size
captures = os.path.join(shared, "marketstore", "captures")
if os.path.isdir(captures):
    for name in sorted(os.listdir(captures)):
        if name.endswith(".msgpack"):
            save("msgpack", name, open(os.path.join(captures, name), "rb").read())
save("msgpack", "small-map", bytes([0x82, 0xA2]) + b"id" + bytes([0xA1]) + b"1" + bytes([0xA6]) + b"result" + bytes([0xC0]))
print("seeds in", out)
