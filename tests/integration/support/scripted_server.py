#!/usr/bin/env python3
"""A scripted NBD server that announces whatever export facts it is told to,
true or absurd, for the shell tests (`unbd info`, `unbd attach`).

  scripted_server.py (--unix PATH | --port PORT) --ready FILE
                     [--size N] [--flags N] [--block MIN,PREF,MAX]
                     [--close-after-handshake]

Fixed newstyle with NO_ZEROES. NBD_OPT_GO / NBD_OPT_INFO get NBD_INFO_EXPORT
(and NBD_INFO_BLOCK_SIZE with --block) then ACK; EXPORT_NAME gets the short
reply; other options ERR_UNSUP. Then, unless --close-after-handshake (the
peer that goes away: the client's next send finds the socket closed), it
serves requests: READ returns zeros, everything else succeeds, DISC ends.
Every connection is served in its own thread; FILE is created once the
server listens.
"""
import argparse
import os
import socket
import struct
import threading
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x0003E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
OPT_EXPORT_NAME, OPT_ABORT, OPT_INFO, OPT_GO = 1, 2, 6, 7
REP_ACK, REP_INFO, REP_ERR_UNSUP = 1, 3, (1 << 31) + 1
CMD_READ, CMD_DISC = 0, 2


def read_full(c, n):
    data = b""
    while len(data) < n:
        chunk = c.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def handshake(c, args):
    c.sendall(struct.pack(">QQH", NBDMAGIC, IHAVEOPT, 1 | 2))  # FIXED_NEWSTYLE | NO_ZEROES
    read_full(c, 4)
    while True:
        _, opt, length = struct.unpack(">QII", read_full(c, 16))
        read_full(c, length)

        def reply(rtype, payload=b""):
            c.sendall(struct.pack(">QIII", OPT_REPLY_MAGIC, opt, rtype, len(payload)) + payload)

        if opt == OPT_EXPORT_NAME:
            c.sendall(struct.pack(">QH", args.size, args.flags))
            return True
        if opt in (OPT_GO, OPT_INFO):
            if opt == OPT_GO and args.close_after_handshake:
                # Gone from here on: on a Unix socket, shutting our reading
                # side down makes every later send of the client fail with
                # EPIPE at once, not after a race with our close().
                c.shutdown(socket.SHUT_RD)
            if args.block:
                reply(REP_INFO, struct.pack(">HIII", 3, *args.block))
            reply(REP_INFO, struct.pack(">HQH", 0, args.size, args.flags))
            reply(REP_ACK)
            if opt == OPT_GO:
                return True
        elif opt == OPT_ABORT:
            reply(REP_ACK)
            return False
        else:
            reply(REP_ERR_UNSUP)


def serve(c, args):
    with c:
        try:
            if not handshake(c, args):
                return
            if args.close_after_handshake:
                time.sleep(0.5)  # the client sends into the half-closed socket meanwhile
                return
            while True:
                _, _, cmd, cookie, _, length = struct.unpack(">IHHQQI", read_full(c, 28))
                if cmd == CMD_DISC:
                    return
                if cmd == 1:  # WRITE: swallow the payload
                    read_full(c, length)
                body = bytes(length) if cmd == CMD_READ else b""
                c.sendall(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, 0, cookie) + body)
        except (EOFError, OSError):
            return


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--unix")
    p.add_argument("--port", type=int)
    p.add_argument("--ready", required=True)
    p.add_argument("--size", type=int, default=1 << 20)
    p.add_argument("--flags", type=int, default=1)  # HAS_FLAGS
    p.add_argument("--block", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--close-after-handshake", action="store_true")
    args = p.parse_args()
    if args.unix:
        s = socket.socket(socket.AF_UNIX)
        if os.path.exists(args.unix):
            os.unlink(args.unix)
        s.bind(args.unix)
    else:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", args.port))
    s.listen(16)
    open(args.ready, "w").close()
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, args), daemon=True).start()


if __name__ == "__main__":
    main()
