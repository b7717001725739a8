// The handshake state machine (see handshake.h for the conversation).
#include "nbd/handshake.h"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace unbd::nbd {

using namespace proto;

namespace {

std::string hex64(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
    return buf;
}

std::string as_string(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

void put_u16(std::vector<std::byte>& v, uint16_t x) {
    std::byte b[2];
    store_be<uint16_t>(b, x);
    v.insert(v.end(), b, b + 2);
}

void put_u32(std::vector<std::byte>& v, uint32_t x) {
    std::byte b[4];
    store_be<uint32_t>(b, x);
    v.insert(v.end(), b, b + 4);
}

void put_string(std::vector<std::byte>& v, const std::string& s) {
    auto p = reinterpret_cast<const std::byte*>(s.data());
    v.insert(v.end(), p, p + s.size());
}

}  // namespace

Handshake::Handshake(Params params) : params_(std::move(params)) {
    info_.name = params_.export_name;
    expect(State::Greeting, 16);  // NBDMAGIC + IHAVEOPT (or the oldstyle magic)
}

std::vector<std::byte> Handshake::take_output() { return std::exchange(out_, {}); }

std::size_t Handshake::bytes_needed() const {
    if (state_ == State::Done || state_ == State::Failed || state_ == State::TlsPending) return 0;
    return need_ - in_.size();
}

void Handshake::feed(std::span<const std::byte> data) {
    while (!data.empty() && bytes_needed() > 0) {
        auto n = std::min(data.size(), bytes_needed());
        in_.insert(in_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
        data = data.subspan(n);
        if (bytes_needed() > 0) break;
        switch (state_) {
            case State::Greeting: on_greeting(); break;
            case State::HandshakeFlags: on_handshake_flags(); break;
            case State::ReplyHeader: on_reply_header(); break;
            case State::ReplyPayload: on_reply_payload(); break;
            case State::ExportNameReply: on_export_name_reply(); break;
            case State::ExportNameZeroes: state_ = State::Done; break;  // content is irrelevant
            case State::TlsPending:
            case State::Done:
            case State::Failed: break;
        }
    }
    if (!data.empty() && !failed())
        fail("internal error: handshake fed " + std::to_string(data.size()) + " bytes more than it asked for");
}

void Handshake::expect(State state, std::size_t bytes) {
    state_ = state;
    need_ = bytes;
    in_.clear();
    if (bytes == 0) {
        // A zero-length payload completes at once.
        if (state == State::ReplyPayload) on_reply_payload();
    }
}

void Handshake::fail(std::string message) {
    if (state_ == State::Failed) return;
    state_ = State::Failed;
    error_ = std::move(message);
}

std::string Handshake::eof_message() const {
    const std::string on = " on " + params_.where;
    switch (state_) {
        case State::Greeting:
            return in_.empty() ? "the server closed the connection before its greeting" + on +
                                     " (is it an NBD server, and does it accept more clients?)"
                               : "the server closed the connection in the middle of its greeting" + on;
        case State::HandshakeFlags: return "the server closed the connection during its greeting" + on;
        case State::ReplyHeader:
        case State::ReplyPayload:
            return std::string("the server closed the connection while answering ") + name(option_) + on;
        case State::TlsPending: return "the server closed the connection after accepting NBD_OPT_STARTTLS" + on;
        case State::ExportNameReply:
        case State::ExportNameZeroes:
            return in_.empty() && state_ == State::ExportNameReply
                       ? "the server closed the connection after NBD_OPT_EXPORT_NAME: export '" +
                             sanitize_server_text(params_.export_name) + "' probably does not exist" + on
                       : "the server closed the connection while sending the export's size and flags" + on;
        case State::Done:
        case State::Failed: break;
    }
    return "the server closed the connection" + on;
}

// ---- greeting ---------------------------------------------------------------

void Handshake::on_greeting() {
    auto magic = load_be<uint64_t>(in_.data());
    auto second = load_be<uint64_t>(in_.data() + 8);
    if (magic != kNbdMagic)
        return fail("bad magic " + hex64(magic) + " from " + params_.where + ": not an NBD server");
    if (second == kOldstyleMagic)
        return fail("the server on " + params_.where +
                    " speaks the oldstyle NBD handshake, which unbd does not support");
    if (second != kIHaveOpt)
        return fail("bad magic " + hex64(second) + " after NBDMAGIC from " + params_.where +
                    ": not a newstyle NBD server");
    expect(State::HandshakeFlags, 2);
}

void Handshake::on_handshake_flags() {
    auto flags = load_be<uint16_t>(in_.data());  // unknown bits are ignored, as the spec asks
    fixed_newstyle_ = (flags & kFlagFixedNewstyle) != 0;
    no_zeroes_ = (flags & kFlagNoZeroes) != 0;
    uint32_t client = (fixed_newstyle_ ? kFlagCFixedNewstyle : 0) | (no_zeroes_ ? kFlagCNoZeroes : 0);
    put_u32(out_, client);

    if (params_.starttls) {
        if (!fixed_newstyle_)
            return fail("the server on " + params_.where +
                        " does not support fixed newstyle negotiation, so it cannot do TLS: refusing to go on "
                        "without TLS");
        return send_option(Opt::StartTls);
    }
    send_first_option();
}

void Handshake::tls_started() {
    if (state_ != State::TlsPending) return fail("internal error: tls_started() without an accepted STARTTLS");
    tls_ = true;
    send_first_option();
}

void Handshake::send_first_option() {
    if (params_.goal == Goal::List) {
        if (!fixed_newstyle_)
            return fail("the server on " + params_.where +
                        " does not support fixed newstyle negotiation, so it cannot list exports");
        return send_list();
    }
    if (!fixed_newstyle_) return send_export_name();  // plain newstyle: EXPORT_NAME is all there is
    if (params_.structured_replies) return send_option(Opt::StructuredReply);
    send_go();
}

// ---- options ----------------------------------------------------------------

void Handshake::send_option(Opt option, std::span<const std::byte> data) {
    std::byte header[kOptionRequestSize];
    encode_option_request({option, static_cast<uint32_t>(data.size())}, std::span<std::byte, kOptionRequestSize>(header));
    out_.insert(out_.end(), header, header + kOptionRequestSize);
    out_.insert(out_.end(), data.begin(), data.end());
    option_ = option;
    replies_ = 0;
    if (option == Opt::Abort) {
        // The server may or may not ACK an ABORT: nothing more to read.
        state_ = State::Done;
        return;
    }
    expect(option == Opt::ExportName ? State::ExportNameReply : State::ReplyHeader,
           option == Opt::ExportName ? 10 : kOptionReplySize);
}

void Handshake::send_go() {
    std::vector<std::byte> data;
    put_u32(data, static_cast<uint32_t>(params_.export_name.size()));
    put_string(data, params_.export_name);
    const Info wanted[] = {Info::Export, Info::Name, Info::Description, Info::BlockSize};
    put_u16(data, static_cast<uint16_t>(std::size(wanted)));
    for (auto i : wanted) put_u16(data, static_cast<uint16_t>(i));
    got_info_export_ = false;
    send_option(Opt::Go, data);
}

void Handshake::send_export_name() {
    bool structured = info_.structured_replies;  // negotiated before GO failed
    info_ = ExportInfo{};
    info_.name = params_.export_name;
    info_.structured_replies = structured;
    std::vector<std::byte> data;
    put_string(data, params_.export_name);
    send_option(Opt::ExportName, data);
}

void Handshake::send_list() { send_option(Opt::List); }

void Handshake::on_reply_header() {
    auto reply = decode_option_reply(std::span<const std::byte, kOptionReplySize>(in_.data(), kOptionReplySize));
    if (!reply)
        return fail(std::string("bad option reply magic from ") + params_.where + " in the reply to " + name(option_));
    if (reply->option != static_cast<uint32_t>(option_))
        return fail(std::string("protocol error: the server answered option ") + std::to_string(reply->option) +
                    " while " + name(option_) + " was pending (" + params_.where + ")");
    if (reply->length > kMaxOptionReplyLength)
        return fail(std::string("protocol error: the server's reply to ") + name(option_) + " is " +
                    std::to_string(reply->length) + " bytes long, more than the " +
                    std::to_string(kMaxOptionReplyLength) + " bytes allowed (" + params_.where + ")");
    if (++replies_ > kMaxRepliesPerOption)
        return fail(std::string("protocol error: more than ") + std::to_string(kMaxRepliesPerOption) +
                    " replies to " + name(option_) + " (" + params_.where + ")");
    reply_ = *reply;
    expect(State::ReplyPayload, reply->length);
}

void Handshake::on_reply_payload() {
    if (reply_.type == static_cast<uint32_t>(Rep::Ack) && reply_.length != 0)
        return fail(std::string("protocol error: NBD_REP_ACK to ") + name(option_) + " carries " +
                    std::to_string(reply_.length) + " bytes (" + params_.where + ")");
    switch (option_) {
        case Opt::StartTls: return on_starttls_reply();
        case Opt::StructuredReply: return on_structured_reply_reply();
        case Opt::Go: return on_go_reply();
        case Opt::List: return on_list_reply();
        default: return fail("internal error: reply to an option never sent");
    }
}

void Handshake::refuse() {
    fail(describe_option_error(option_, reply_.type, as_string(in_), params_.export_name, params_.where));
    // Soft disconnect, as the spec asks of a client that gives up.
    std::byte header[kOptionRequestSize];
    encode_option_request({Opt::Abort, 0}, std::span<std::byte, kOptionRequestSize>(header));
    out_.insert(out_.end(), header, header + kOptionRequestSize);
}

void Handshake::on_starttls_reply() {
    if (reply_.type == static_cast<uint32_t>(Rep::Ack)) {
        state_ = State::TlsPending;
        need_ = 0;
        in_.clear();
        return;
    }
    if ((reply_.type & kRepFlagError) == 0)
        return fail(std::string("protocol error: unexpected ") + rep_name(reply_.type) +
                    " reply to NBD_OPT_STARTTLS (" + params_.where + ")");
    refuse();  // describe_option_error says it: no TLS, and no fallback
}

void Handshake::on_structured_reply_reply() {
    if (reply_.type == static_cast<uint32_t>(Rep::Ack)) {
        info_.structured_replies = true;
    } else if ((reply_.type & kRepFlagError) == 0) {
        return fail(std::string("protocol error: unexpected ") + rep_name(reply_.type) +
                    " reply to NBD_OPT_STRUCTURED_REPLY (" + params_.where + ")");
    }
    // Any error just means "no structured replies": GO will say what is wrong.
    send_go();
}

void Handshake::on_go_reply() {
    auto type = reply_.type;
    if (type == static_cast<uint32_t>(Rep::Info)) {
        on_info(in_);
        if (!failed()) expect(State::ReplyHeader, kOptionReplySize);
        return;
    }
    if (type == static_cast<uint32_t>(Rep::Ack)) {
        if (!got_info_export_)
            return fail("protocol error: the server acknowledged NBD_OPT_GO without sending NBD_INFO_EXPORT (" +
                        params_.where + ")");
        // DF is meaningless (and must be unset) without structured replies.
        if (!info_.structured_replies) info_.transmission_flags &= static_cast<uint16_t>(~kFlagSendDf);
        state_ = State::Done;
        return;
    }
    if (type == static_cast<uint32_t>(Rep::ErrUnsup)) return send_export_name();  // pre-GO server
    if (type & kRepFlagError) return refuse();
    fail(std::string("protocol error: unexpected ") + rep_name(type) + " reply to NBD_OPT_GO (" + params_.where + ")");
}

void Handshake::on_info(std::span<const std::byte> p) {
    const std::string where = " (" + params_.where + ")";
    if (p.size() < 2) return fail("protocol error: NBD_REP_INFO shorter than its type" + where);
    auto type = load_be<uint16_t>(p.data());
    auto body = p.subspan(2);
    switch (static_cast<Info>(type)) {
        case Info::Export:
            if (body.size() != 10)
                return fail("protocol error: NBD_INFO_EXPORT of " + std::to_string(p.size()) + " bytes, not 12" + where);
            info_.size = load_be<uint64_t>(body.data());
            if (!accept_size(info_.size)) return;
            info_.transmission_flags = load_be<uint16_t>(body.data() + 8);
            got_info_export_ = true;
            return;
        case Info::Name:
        case Info::Description:
            if (body.size() > kMaxStringLength)
                return fail("protocol error: export " + std::string(type == 1 ? "name" : "description") + " of " +
                            std::to_string(body.size()) + " bytes, more than 4096" + where);
            if (type == 1)
                info_.name = as_string(body);
            else
                info_.description = as_string(body);
            return;
        case Info::BlockSize: {
            if (body.size() != 12)
                return fail("protocol error: NBD_INFO_BLOCK_SIZE of " + std::to_string(p.size()) + " bytes, not 14" +
                            where);
            auto min = load_be<uint32_t>(body.data());
            auto pref = load_be<uint32_t>(body.data() + 4);
            auto max = load_be<uint32_t>(body.data() + 8);
            auto sizes = " (minimum " + std::to_string(min) + ", preferred " + std::to_string(pref) + ", maximum " +
                         std::to_string(max) + ")";
            // Strict where garbage would break the data path; lenient where
            // real servers bend the spec (a preferred size below 512).
            if (!is_power_of_two(min) || min > kMaxMinimumBlockSize)
                return fail("protocol error: bad minimum block size" + sizes + where);
            if (!is_power_of_two(pref) || pref < min)
                return fail("protocol error: bad preferred block size" + sizes + where);
            if (max < min) return fail("protocol error: maximum payload below the minimum block size" + sizes + where);
            info_.block_size_advertised = true;
            info_.block_size_min = min;
            info_.block_size_preferred = pref;
            info_.block_size_max = max;
            return;
        }
    }
    // Unknown info types are ignored, as the spec requires.
}

void Handshake::on_list_reply() {
    auto type = reply_.type;
    if (type == static_cast<uint32_t>(Rep::Ack)) return send_option(Opt::Abort);
    if (type == static_cast<uint32_t>(Rep::Server)) {
        const std::string where = " (" + params_.where + ")";
        if (in_.size() < 4) return fail("protocol error: NBD_REP_SERVER shorter than its name length" + where);
        auto len = load_be<uint32_t>(in_.data());
        if (len > in_.size() - 4)
            return fail("protocol error: NBD_REP_SERVER name length " + std::to_string(len) + " exceeds the reply" +
                        where);
        auto desc_len = in_.size() - 4 - len;
        if (len > kMaxStringLength || desc_len > kMaxStringLength)
            return fail("protocol error: NBD_REP_SERVER string longer than 4096 bytes" + where);
        if (exports_.size() == kMaxExports)
            return fail("the server lists more than " + std::to_string(kMaxExports) + " exports" + where);
        std::span<const std::byte> p(in_);
        exports_.push_back({as_string(p.subspan(4, len)), as_string(p.subspan(4 + len))});
        return expect(State::ReplyHeader, kOptionReplySize);
    }
    if (type & kRepFlagError) return refuse();
    fail(std::string("protocol error: unexpected ") + rep_name(type) + " reply to NBD_OPT_LIST (" + params_.where +
         ")");
}

// ---- EXPORT_NAME ------------------------------------------------------------

bool Handshake::accept_size(uint64_t size) {
    if (size <= kMaxExportSize) return true;
    fail("the server on " + params_.where + " announces an export of " + std::to_string(size) +
         " bytes, more than the 2^63-1 a Linux block device can address: refusing it");
    return false;
}

void Handshake::on_export_name_reply() {
    info_.size = load_be<uint64_t>(in_.data());
    if (!accept_size(info_.size)) return;
    info_.transmission_flags = load_be<uint16_t>(in_.data() + 8);
    if (!info_.structured_replies) info_.transmission_flags &= static_cast<uint16_t>(~kFlagSendDf);
    if (no_zeroes_)
        state_ = State::Done;
    else
        expect(State::ExportNameZeroes, kExportNameReplySize - 10);
}

}  // namespace unbd::nbd
