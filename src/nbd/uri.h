// NBD URIs (NetworkBlockDevice/nbd doc/uri.md):
//   nbd://host[:port]/export          TCP, port 10809 by default
//   nbd+unix:///export?socket=PATH    Unix socket
//   nbds://, nbds+unix://             TLS: recognised, refused for now
#pragma once

#include <cstdint>
#include <string>

namespace unbd::nbd {

enum class Transport { Tcp, Unix };

struct Uri {
    Transport transport = Transport::Tcp;
    std::string host;         // TCP: name or address, IPv6 without brackets
    uint16_t port = 10809;    // TCP
    std::string socket_path;  // Unix
    std::string export_name;  // percent-decoded path without its leading '/'

    // The URI in canonical form, for messages: "nbd://host:10809/disk".
    std::string to_string() const;
};

// Throws unbd::Error naming the bad part of the URI.
Uri parse_uri(const std::string& text);

}  // namespace unbd::nbd
