#!/usr/bin/env python3
"""Writes the synthetic seeds of tests/fuzz/corpus/{reply,uri,io_mapping}/.

Each seed follows the input layout at the top of its target's source. The
handshake seeds are recorded from real servers instead (record-handshakes.sh).
Run from anywhere; rewrites only the files named seed-*.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SIMPLE_MAGIC, STRUCTURED_MAGIC = 0x67446698, 0x668E33EF


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def cookie(tag, part=0, generation=1):
    return tag | part << 16 | generation << 32


def reply(tag, part=0, generation=1, error=0, payload=b""):
    return struct.pack(">IIQ", SIMPLE_MAGIC, error, cookie(tag, part, generation)) + payload


def reply_seeds():
    # export flags, min shift, max shift, depth-1; per tag: op|fua<<3, blocks-1, offset, sent parts
    read, write_, flush, trim, zeroes = range(5)
    setup = bytes([0x0F, 9, 3, 3])  # flush+fua+trim+zeroes, 512 B blocks, 4 KiB max, 4 tags
    tags = bytes([read, 7, 0, 7, write_ | 8, 15, 1, 7, flush, 0, 0, 7, trim, 3, 2, 7])
    # READ of 4 KiB: one part; WRITE FUA of 8 KiB: two parts; FLUSH; TRIM.
    stream = (reply(0, payload=bytes(4096)) + reply(1, 0) + reply(1, 1) + reply(2) + reply(3, error=5)
              + reply(0, generation=2, payload=b"\xab" * 4096))
    write("reply", "all-ops", setup + tags + stream)
    # FUA emulated by a flush (SEND_FLUSH without SEND_FUA): the flush is part data_parts.
    setup = bytes([0x01, 9, 3, 0])
    write("reply", "fua-flush", setup + bytes([write_ | 8, 7, 0, 7]) + reply(0) + reply(0, 1))
    # A READ split into 4 parts of 1 KiB, answered out of order, one with an error.
    setup = bytes([0x00, 10, 0, 0])
    write("reply", "split-read", setup + bytes([read, 3, 0, 7]) + reply(0, 2, payload=bytes(1024))
          + reply(0, 0, payload=bytes(1024)) + reply(0, 3, error=22) + reply(0, 1, payload=bytes(1024)))
    # Hostile: structured reply never negotiated, stale and duplicate cookies, unsent part.
    setup = bytes([0x00, 9, 0, 1])
    tags = bytes([read, 1, 0, 1, write_, 0, 0, 0])
    write("reply", "hostile", setup + tags + reply(0, payload=bytes(512)) + reply(0, payload=bytes(512))
          + reply(1) + struct.pack(">IHHQI", STRUCTURED_MAGIC, 1, 1, cookie(0), 0) + reply(0, 0, 0))
    write("reply", "shutdown", bytes([0, 9, 0, 0, read, 0, 0, 7]) + reply(0, error=108))


def uri_seeds():
    for name, text in {
        "tcp": "nbd://server.example:10809/disk",
        "tcp-default-port": "nbd://localhost/",
        "ipv6": "nbd://[::1]:10810/exp%2Fname",
        "unix": "nbd+unix:///disk?socket=/run/nbdkit.sock",
        "unix-x-param": "nbd+unix:///?socket=%2Ftmp%2Fs;x-foo=1",
        "user": "nbd://user@host:1/a/b",
        "tls": "nbds://host/disk?tls-certificates=/etc/pki",
        "bad-port": "nbd://host:99999/",
    }.items():
        write("uri", name, text)


def io_mapping_seeds():
    fua, nounmap = 1 << 13, 1 << 15
    for name, (op, flags, sectors, sector, cmds) in {
        "read": (0, 0, 8, 0, 0x1F),
        "write-fua": (1, fua, 256, 2048, 0x1F),
        "flush": (2, 0, 0, 0, 0x01),
        "discard": (3, 0, 2048, 100, 0x04),
        "write-zeroes-nounmap": (5, nounmap, 8, 8, 0x08),
        "write-read-only": (1, 0, 8, 0, 0x00),
        "zone-append": (13, 0, 8, 0, 0x1F),
    }.items():
        desc = struct.pack("<IIQQ", op | flags, sectors, sector, 0)
        write("io_mapping", name, desc + bytes([cmds]) + struct.pack("<Hi", 3, 0))


if __name__ == "__main__":
    reply_seeds()
    uri_seeds()
    io_mapping_seeds()
