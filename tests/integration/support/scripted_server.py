#!/usr/bin/env python3
"""A scripted NBD server that announces whatever export facts it is told to,
true or absurd, for the shell tests (`unbd info`, `unbd attach`).

  scripted_server.py (--unix PATH | --port PORT) --ready FILE
                     [--size N] [--flags N] [--block MIN,PREF,MAX]
                     [--close-after-handshake]
                     [--misbehave CASE --poison OFFSET]

Fixed newstyle with NO_ZEROES. NBD_OPT_GO / NBD_OPT_INFO get NBD_INFO_EXPORT
(and NBD_INFO_BLOCK_SIZE with --block) then ACK; EXPORT_NAME gets the short
reply; other options ERR_UNSUP. Then, unless --close-after-handshake (the
peer that goes away: the client's next send finds the socket closed), it
serves requests: READ returns zeros, everything else succeeds, DISC ends.
Every connection is served in its own thread; FILE is created once the
server listens. With --misbehave, the export holds what is written (one
store shared by all connections, so data can be checked around the
misbehaviour) and every request that covers byte OFFSET gets CASE instead
of a right reply:
  bad-magic        a reply with a wrong magic
  unknown-cookie   a reply to a cookie never sent, instead of the right one
  stale-cookie     first a reply to the previous (answered) request again
  unsolicited      first a reply to a cookie never sent, then the right one
  duplicate        the right reply, twice
  close-mid-read   the header and half the READ payload, then close
  error-out-of-spec  error 0x7777, which the spec does not define
  structured       a structured reply (never negotiated)
  silent           no reply at all (the connection serves on)
  stop-reading     stop reading this connection (the client's sends block)
and `handshake-never-ends` (no OFFSET) never answers NBD_OPT_GO.
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
        if opt == OPT_GO and args.misbehave == "handshake-never-ends":
            time.sleep(3600)
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
            previous = None
            while True:
                _, _, cmd, cookie, offset, length = struct.unpack(">IHHQQI", read_full(c, 28))
                if cmd == CMD_DISC:
                    return
                poisoned = args.poison is not None and offset <= args.poison < offset + length
                if poisoned and args.misbehave == "stop-reading":
                    time.sleep(3600)
                payload = read_full(c, length) if cmd == 1 else b""
                if cmd == 1 and STORE is not None:
                    STORE[offset:offset + length] = payload
                if cmd == CMD_READ:
                    body = bytes(STORE[offset:offset + length]) if STORE is not None else bytes(length)
                else:
                    body = b""
                right = struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, 0, cookie) + body
                if poisoned:
                    if not misbehave(c, args.misbehave, cookie, previous, right, cmd):
                        return
                else:
                    c.sendall(right)
                previous = cookie
        except (EOFError, OSError):
            return


STORE = None


def misbehave(c, case, cookie, previous, right, cmd):
    """Sends CASE's reply; False when the connection is to end."""
    never_sent = cookie ^ 0x5A5A5A5A00000000
    if case == "bad-magic":
        c.sendall(struct.pack(">IIQ", 0x12345678, 0, cookie))
    elif case == "unknown-cookie":
        c.sendall(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, 0, never_sent))
    elif case == "stale-cookie":
        c.sendall(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, 0, previous if previous is not None else never_sent))
        c.sendall(right)
    elif case == "unsolicited":
        c.sendall(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, 0, never_sent))
        c.sendall(right)
    elif case == "duplicate":
        c.sendall(right)
        c.sendall(right)
    elif case == "close-mid-read":
        c.sendall(right[:16 + (len(right) - 16) // 2])
        return False
    elif case == "error-out-of-spec":
        c.sendall(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, 0x7777, cookie))
    elif case == "structured":
        # NBD_REPLY_TYPE_NONE with NBD_REPLY_FLAG_DONE: valid only if negotiated.
        c.sendall(struct.pack(">IHHQI", 0x668E33EF, 1, 0, cookie, 0))
    elif case == "silent":
        pass
    else:
        raise SystemExit(f"unknown --misbehave {case}")
    return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--unix")
    p.add_argument("--port", type=int)
    p.add_argument("--ready", required=True)
    p.add_argument("--size", type=int, default=1 << 20)
    p.add_argument("--flags", type=int, default=1)  # HAS_FLAGS
    p.add_argument("--block", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--close-after-handshake", action="store_true")
    p.add_argument("--misbehave")
    p.add_argument("--poison", type=int)
    args = p.parse_args()
    global STORE
    if args.misbehave and args.size <= 256 << 20:
        STORE = bytearray(args.size)
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
