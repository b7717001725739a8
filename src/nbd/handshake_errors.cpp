// Server refusals during the handshake, as sentences a person can act on.
// The spec's error reply types map to messages in exactly this one place.
#include <cstdio>

#include "nbd/handshake.h"

namespace unbd::nbd {

std::string sanitize_server_text(std::string_view text) {
    std::string out;
    auto n = std::min(text.size(), proto::kMaxStringLength);
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
    }
    return out;
}

std::string describe_option_error(proto::Opt option, uint32_t rep_type, std::string_view server_message,
                                  const std::string& export_name, const std::string& where) {
    using proto::Rep;
    const std::string exp = "export '" + sanitize_server_text(export_name) + "'";
    const std::string opt = proto::name(option);
    const bool list = option == proto::Opt::List;
    std::string text;
    if (option == proto::Opt::StartTls && rep_type != static_cast<uint32_t>(Rep::ErrShutdown)) {
        char code[16];
        std::snprintf(code, sizeof code, "0x%08x", rep_type);
        text = "the server on " + where + " does not support TLS (it answered NBD_OPT_STARTTLS with " +
               (rep_type == static_cast<uint32_t>(Rep::ErrUnsup)    ? std::string("NBD_REP_ERR_UNSUP")
                : rep_type == static_cast<uint32_t>(Rep::ErrPolicy) ? std::string("NBD_REP_ERR_POLICY")
                                                                    : std::string(code)) +
               "): refusing to go on without TLS";
        if (!server_message.empty()) text += ": server says \"" + sanitize_server_text(server_message) + "\"";
        return text;
    }
    switch (static_cast<Rep>(rep_type)) {
        case Rep::ErrUnsup:
            text = list ? "the server does not support listing exports (NBD_OPT_LIST) on " + where
                        : "the server does not support " + opt + " on " + where;
            break;
        case Rep::ErrPolicy:
            text = list ? "the server's policy forbids listing exports on " + where
                        : "the server's policy denies access to " + exp + " on " + where;
            break;
        case Rep::ErrInvalid:
            text = "the server rejected " + opt + (list ? "" : " for " + exp) + " as invalid on " + where;
            break;
        case Rep::ErrPlatform:
            text = "the server cannot serve " + opt + " on this platform (" + where + ")";
            break;
        case Rep::ErrTlsReqd:
            text = "the server requires TLS (" + where + "): use an nbds:// URI or --tls=require";
            break;
        case Rep::ErrUnknown:
            text = exp + " does not exist on " + where;
            break;
        case Rep::ErrShutdown:
            text = "the server is shutting down (" + where + ")";
            break;
        case Rep::ErrBlockSizeReqd:
            text = "the server requires block size negotiation for " + exp + " on " + where;
            break;
        case Rep::ErrTooBig:
            text = "the " + opt + " request was too big for the server (" + where + ")";
            break;
        case Rep::ErrExtHeaderReqd:
            text = "the server requires extended headers, which unbd does not support yet (" + where + ")";
            break;
        default: {
            char code[16];
            std::snprintf(code, sizeof code, "0x%08x", rep_type);
            text = "the server refused " + opt + (list ? "" : " for " + exp) + " with unknown error " + code +
                   " on " + where;
        }
    }
    if (!server_message.empty()) text += ": server says \"" + sanitize_server_text(server_message) + "\"";
    return text;
}

}  // namespace unbd::nbd
