// Codecs for proto/nbd_wire.h. Kept out of the header so the header stays a
// readable table of the protocol.
#include "proto/nbd_wire.h"

#include <cerrno>

namespace unbd::proto {

int errno_from_nbd_error(uint32_t nbd_error) {
    switch (nbd_error) {
        case 0: return 0;
        case kEPERM: return EPERM;
        case kEIO: return EIO;
        case kENOMEM: return ENOMEM;
        case kEINVAL: return EINVAL;
        case kENOSPC: return ENOSPC;
        case kEOVERFLOW: return EOVERFLOW;
        case kENOTSUP: return EOPNOTSUPP;
        case kESHUTDOWN: return ESHUTDOWN;
        default: return EINVAL;
    }
}

void encode_option_request(const OptionRequest& r, std::span<std::byte, kOptionRequestSize> out) {
    store_be<uint64_t>(out.data(), kIHaveOpt);
    store_be<uint32_t>(out.data() + 8, static_cast<uint32_t>(r.option));
    store_be<uint32_t>(out.data() + 12, r.length);
}

std::optional<OptionReply> decode_option_reply(std::span<const std::byte, kOptionReplySize> in) {
    if (load_be<uint64_t>(in.data()) != kOptReplyMagic) return std::nullopt;
    return OptionReply{load_be<uint32_t>(in.data() + 8), load_be<uint32_t>(in.data() + 12),
                       load_be<uint32_t>(in.data() + 16)};
}

void encode_request(const Request& r, std::span<std::byte, kRequestSize> out) {
    store_be<uint32_t>(out.data(), kRequestMagic);
    store_be<uint16_t>(out.data() + 4, r.flags);
    store_be<uint16_t>(out.data() + 6, static_cast<uint16_t>(r.type));
    store_be<uint64_t>(out.data() + 8, r.cookie);
    store_be<uint64_t>(out.data() + 16, r.offset);
    store_be<uint32_t>(out.data() + 24, r.length);
}

std::optional<Request> decode_request(std::span<const std::byte, kRequestSize> in) {
    if (load_be<uint32_t>(in.data()) != kRequestMagic) return std::nullopt;
    return Request{load_be<uint16_t>(in.data() + 4), static_cast<Cmd>(load_be<uint16_t>(in.data() + 6)),
                   load_be<uint64_t>(in.data() + 8), load_be<uint64_t>(in.data() + 16),
                   load_be<uint32_t>(in.data() + 24)};
}

void encode_simple_reply(const SimpleReply& r, std::span<std::byte, kSimpleReplySize> out) {
    store_be<uint32_t>(out.data(), kSimpleReplyMagic);
    store_be<uint32_t>(out.data() + 4, r.error);
    store_be<uint64_t>(out.data() + 8, r.cookie);
}

std::optional<SimpleReply> decode_simple_reply(std::span<const std::byte, kSimpleReplySize> in) {
    if (load_be<uint32_t>(in.data()) != kSimpleReplyMagic) return std::nullopt;
    return SimpleReply{load_be<uint32_t>(in.data() + 4), load_be<uint64_t>(in.data() + 8)};
}

std::optional<StructuredReply> decode_structured_reply(std::span<const std::byte, kStructuredReplySize> in) {
    if (load_be<uint32_t>(in.data()) != kStructuredReplyMagic) return std::nullopt;
    return StructuredReply{load_be<uint16_t>(in.data() + 4), load_be<uint16_t>(in.data() + 6),
                           load_be<uint64_t>(in.data() + 8), load_be<uint32_t>(in.data() + 16)};
}

const char* name(Opt o) {
    switch (o) {
        case Opt::ExportName: return "NBD_OPT_EXPORT_NAME";
        case Opt::Abort: return "NBD_OPT_ABORT";
        case Opt::List: return "NBD_OPT_LIST";
        case Opt::PeekExport: return "NBD_OPT_PEEK_EXPORT";
        case Opt::StartTls: return "NBD_OPT_STARTTLS";
        case Opt::Info: return "NBD_OPT_INFO";
        case Opt::Go: return "NBD_OPT_GO";
        case Opt::StructuredReply: return "NBD_OPT_STRUCTURED_REPLY";
        case Opt::ListMetaContext: return "NBD_OPT_LIST_META_CONTEXT";
        case Opt::SetMetaContext: return "NBD_OPT_SET_META_CONTEXT";
        case Opt::ExtendedHeaders: return "NBD_OPT_EXTENDED_HEADERS";
    }
    return "NBD_OPT_(unknown)";
}

const char* name(Cmd c) {
    switch (c) {
        case Cmd::Read: return "NBD_CMD_READ";
        case Cmd::Write: return "NBD_CMD_WRITE";
        case Cmd::Disc: return "NBD_CMD_DISC";
        case Cmd::Flush: return "NBD_CMD_FLUSH";
        case Cmd::Trim: return "NBD_CMD_TRIM";
        case Cmd::Cache: return "NBD_CMD_CACHE";
        case Cmd::WriteZeroes: return "NBD_CMD_WRITE_ZEROES";
        case Cmd::BlockStatus: return "NBD_CMD_BLOCK_STATUS";
        case Cmd::Resize: return "NBD_CMD_RESIZE";
    }
    return "NBD_CMD_(unknown)";
}

const char* rep_name(uint32_t rep_type) {
    switch (static_cast<Rep>(rep_type)) {
        case Rep::Ack: return "NBD_REP_ACK";
        case Rep::Server: return "NBD_REP_SERVER";
        case Rep::Info: return "NBD_REP_INFO";
        case Rep::MetaContext: return "NBD_REP_META_CONTEXT";
        case Rep::ErrUnsup: return "NBD_REP_ERR_UNSUP";
        case Rep::ErrPolicy: return "NBD_REP_ERR_POLICY";
        case Rep::ErrInvalid: return "NBD_REP_ERR_INVALID";
        case Rep::ErrPlatform: return "NBD_REP_ERR_PLATFORM";
        case Rep::ErrTlsReqd: return "NBD_REP_ERR_TLS_REQD";
        case Rep::ErrUnknown: return "NBD_REP_ERR_UNKNOWN";
        case Rep::ErrShutdown: return "NBD_REP_ERR_SHUTDOWN";
        case Rep::ErrBlockSizeReqd: return "NBD_REP_ERR_BLOCK_SIZE_REQD";
        case Rep::ErrTooBig: return "NBD_REP_ERR_TOO_BIG";
        case Rep::ErrExtHeaderReqd: return "NBD_REP_ERR_EXT_HEADER_REQD";
    }
    return "NBD_REP_(unknown)";
}

}  // namespace unbd::proto
