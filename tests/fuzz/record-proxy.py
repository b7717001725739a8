#!/usr/bin/env python3
"""record-proxy.py LISTEN_SOCKET UPSTREAM OUT_FILE SETUP_BYTE

Accepts one client on the Unix socket LISTEN_SOCKET, connects it to
UPSTREAM (a Unix socket path, or HOST:PORT), passes bytes both ways until
either side closes, and writes the server's bytes to OUT_FILE after one
setup byte (the handshake fuzz target's input layout). Used by
record-handshakes.sh to turn real handshakes into seeds.
"""
import os
import select
import socket
import sys

listen_path, upstream, out_path, setup = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4], 0)
if os.path.exists(listen_path):
    os.unlink(listen_path)
lsock = socket.socket(socket.AF_UNIX)
lsock.bind(listen_path)
lsock.listen(1)
print("ready", flush=True)
client, _ = lsock.accept()
if upstream.startswith("/"):
    server = socket.socket(socket.AF_UNIX)
    server.connect(upstream)
else:
    host, port = upstream.rsplit(":", 1)
    server = socket.create_connection((host, int(port)))
recorded = bytearray()
open_ends = {client: server, server: client}
while open_ends:
    ready, _, _ = select.select(list(open_ends), [], [], 10)
    if not ready:
        break
    for s in ready:
        try:
            data = s.recv(65536)
            if s is server:
                recorded += data
            if data:
                open_ends[s].sendall(data)
        except ConnectionError:  # a side that gave up resets the connection
            data = b""
        if not data:
            open_ends.clear()
            break
with open(out_path, "wb") as f:
    f.write(bytes([setup]) + recorded)
