#!/usr/bin/env python3
"""mmdb_write.py - write a MaxMind DB (format 2.0) country database from a CSV.

    python3 tools/mmdb_write.py [--layout L] [--record-size N] CSV OUT.mmdb

CSV lines are `first_ip,last_ip,country_code[,registered_country_code]`,
IPv4 or IPv6; blank lines and lines starting with '#' are skipped. Ranges may
not overlap. The country code may be empty (a record without a country).

Layouts (--layout):
  ip-location-db  {"country_code": "DE"}                 (default)
  maxmind         {"country": {"iso_code": "DE"}}; the optional fourth column
                  adds {"registered_country": {"iso_code": ...}}, which is all
                  MaxMind has for e.g. anycast networks. ip-location-db has no
                  such field and ignores the column.

The tree is IPv6 (ip_version 6); IPv4 ranges live at ::a.b.c.d, where
libmaxminddb looks IPv4 addresses up. Like the ip-location-db databases, and
unlike MaxMind's, ::ffff:0:0/96 is not aliased to them: readers must map
IPv4-mapped addresses themselves, and the test databases prove they do.

Spec: https://maxmind.github.io/MaxMind-DB/ . Standard library only.
"""
import argparse
import ipaddress
import os
import re
import struct
import sys
import time

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"
DATA_SEPARATOR = bytes(16)
# Data section type numbers (those this writer uses).
UTF8, DOUBLE, UINT16, UINT32, MAP, UINT64, ARRAY, BOOLEAN = 2, 3, 5, 6, 7, 9, 11, 14

LAYOUTS = {
    "ip-location-db": lambda cc, reg: {"country_code": cc} if cc else {},
    "maxmind": lambda cc, reg: {
        **({"country": {"iso_code": cc}} if cc else {}),
        **({"registered_country": {"iso_code": reg}} if reg else {}),
    },
}


# Unsigned integers have several encodings; these say which one a value uses.
class U16(int):
    TYPE = UINT16


class U32(int):
    TYPE = UINT32


class U64(int):
    TYPE = UINT64


def control(type_, size):
    """Control byte(s) of a field: 3 bits of type (extended types use a second
    byte, type - 7), 5 bits of size with 1-3 extra bytes for large sizes."""
    if type_ <= 7:
        head, ext = type_ << 5, b""
    else:
        head, ext = 0, bytes([type_ - 7])
    if size < 29:
        return bytes([head | size]) + ext
    if size < 285:
        return bytes([head | 29]) + ext + bytes([size - 29])
    if size < 65821:
        return bytes([head | 30]) + ext + (size - 285).to_bytes(2, "big")
    return bytes([head | 31]) + ext + (size - 65821).to_bytes(3, "big")


def encode(value):
    """Data section encoding of a Python value (dict, list, str, bool, float,
    U16/U32/U64). A plain int is refused: its width would be a guess."""
    if isinstance(value, dict):
        out = [control(MAP, len(value))]
        for key, item in value.items():
            out += [encode(str(key)), encode(item)]
        return b"".join(out)
    if isinstance(value, list):
        return control(ARRAY, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return control(UTF8, len(raw)) + raw
    if isinstance(value, bool):
        return control(BOOLEAN, int(value))   # the size is the value
    if isinstance(value, float):
        return control(DOUBLE, 8) + struct.pack(">d", value)
    if isinstance(value, (U16, U32, U64)):
        raw = int(value).to_bytes((int(value).bit_length() + 7) // 8, "big")
        return control(value.TYPE, len(raw)) + raw
    raise TypeError(f"cannot encode {value!r}")


class Tree:
    """Binary trie over 128-bit keys. A node is [left, right]; a record is
    None (no data), an int (index of a child node) or bytes (encoded data).
    Nodes are numbered in creation order, so the root is node 0."""

    def __init__(self):
        self.nodes = [[None, None]]

    def insert(self, network, data):
        key, bits = int(network.network_address), network.prefixlen
        if network.version == 4:
            bits += 96   # ::a.b.c.d
        if bits == 0:   # the root is a node, not a record: store ::/0 as two halves
            for half in ipaddress.IPv6Network("::/0").subnets():
                self.insert(half, data)
            return
        node = 0
        for depth in range(bits - 1):
            bit = (key >> (127 - depth)) & 1
            child = self.nodes[node][bit]
            if child is None:
                child = self.nodes[node][bit] = len(self.nodes)
                self.nodes.append([None, None])
            node = child   # never data: ranges were checked not to overlap
        self.nodes[node][(key >> (128 - bits)) & 1] = data

    def serialize(self, record_size=None):
        """Returns (search tree, data section, record size), the record size
        being the smallest that fits unless given. Identical records share one
        copy in the data section."""
        count = len(self.nodes)
        data, offsets = bytearray(), {}
        for record in (r for node in self.nodes for r in node):
            if isinstance(record, bytes) and record not in offsets:
                offsets[record] = len(data)
                data += record
        end = count + len(DATA_SEPARATOR) + len(data)   # above every record value
        fits = [size for size in (24, 28, 32) if end <= 1 << size]
        if not fits or (record_size and record_size not in fits):
            raise OverflowError(f"{count} nodes and {len(data)} bytes of data need a larger record size")
        record_size = record_size or fits[0]

        def value(record):
            if record is None:
                return count
            if isinstance(record, int):
                return record
            return count + len(DATA_SEPARATOR) + offsets[record]

        tree = bytearray()
        for left, right in self.nodes:
            lv, rv = value(left), value(right)
            if record_size == 28:   # the middle byte holds the high nibble of each
                tree += lv.to_bytes(4, "big")[1:] + bytes([(lv >> 24) << 4 | rv >> 24])
                tree += (rv & 0xFFFFFF).to_bytes(3, "big")
            else:
                tree += lv.to_bytes(record_size // 8, "big") + rv.to_bytes(record_size // 8, "big")
        return bytes(tree), bytes(data), record_size


def fail(where, msg):
    sys.exit(f"{where}: {msg}")


def read_ranges(path):
    """[(first, last, cc, registered, 'CSV:LINE')] from the CSV, checked."""
    ranges = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line, where = line.strip(), f"{path}:{n}"
            if not line or line.startswith("#"):
                continue
            cols = [c.strip() for c in line.split(",")]
            if len(cols) not in (3, 4):
                fail(where, "expected first_ip,last_ip,country_code[,registered_country_code]")
            try:
                first, last = ipaddress.ip_address(cols[0]), ipaddress.ip_address(cols[1])
            except ValueError as e:
                fail(where, str(e))
            if first.version != last.version or first > last:
                fail(where, f"{first} - {last} is not a range")
            codes = [c.upper() for c in cols[2:]] + [""] * (4 - len(cols))
            for code in codes:
                if code and not re.fullmatch("[A-Z]{2}", code):
                    fail(where, f"'{code}' is not a two-letter country code")
            ranges.append((first, last, codes[0], codes[1], where))
    return ranges


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layout", choices=sorted(LAYOUTS), default="ip-location-db",
                    help="record layout (default: ip-location-db)")
    ap.add_argument("--record-size", type=int, choices=(24, 28, 32),
                    help="bits per record (default: the smallest that fits)")
    ap.add_argument("csv", help="ranges to write")
    ap.add_argument("out", help="database to write (replaced whole, or not at all)")
    args = ap.parse_args()

    ranges = read_ranges(args.csv)
    # Checked as tree keys, where an IPv4 address is its 32-bit value, so
    # that ::1 and 0.0.0.1 collide as they do in the tree.
    prev = None
    for r in sorted(ranges, key=lambda r: int(r[0])):
        if prev and int(r[0]) <= int(prev[1]):
            why = " (IPv4 a.b.c.d is stored as ::a.b.c.d)" if r[0].version != prev[0].version else ""
            fail(r[4], f"range overlaps the one at {prev[4]}{why}")
        prev = r

    tree = Tree()
    layout = LAYOUTS[args.layout]
    for first, last, cc, reg, _ in ranges:
        data = encode(layout(cc, reg))
        for net in ipaddress.summarize_address_range(first, last):
            tree.insert(net, data)

    try:
        search_tree, data, record_size = tree.serialize(args.record_size)
    except OverflowError as e:
        fail(args.out, str(e))

    metadata = {
        "node_count": U32(len(tree.nodes)),
        "record_size": U16(record_size),
        "ip_version": U16(6),
        "database_type": "anonproxy-country",
        "languages": [],
        "binary_format_major_version": U16(2),
        "binary_format_minor_version": U16(0),
        # SOURCE_DATE_EPOCH makes the output reproducible.
        "build_epoch": U64(int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))),
        "description": {"en": f"country codes ({args.layout} layout) from {os.path.basename(args.csv)}"},
    }
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(search_tree + DATA_SEPARATOR + data + METADATA_MARKER + encode(metadata))
    os.replace(tmp, args.out)


if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        sys.exit(f"mmdb_write: {e.filename}: {e.strerror}")
