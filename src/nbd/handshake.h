// Handshake: the NBD option haggling as a sans-IO state machine. It never
// touches a socket: the caller sends what take_output() returns, reads
// exactly bytes_needed() bytes and feed()s them, until done() or failed().
//
// Reading exactly bytes_needed() is what leaves the socket at the first byte
// of the transmission phase, whichever way the handshake ends (GO, or the
// EXPORT_NAME fallback with or without NO_ZEROES).
//
// Conversation (fixed newstyle):
//   greeting -> client flags -> [STRUCTURED_REPLY] -> GO(INFO_EXPORT, NAME,
//   DESCRIPTION, BLOCK_SIZE) -> ACK                       => transmission
//                                        -> ERR_UNSUP -> EXPORT_NAME => transmission
//   List goal: greeting -> client flags -> LIST -> SERVER* -> ACK -> ABORT
// A plain (not fixed) newstyle server only understands EXPORT_NAME.
//
// TLS (Params::starttls, for nbds://): STARTTLS is the first option, before
// anything stateful. On its ACK the machine stops with tls_pending(): the
// caller runs the TLS handshake on the socket, calls tls_started(), and from
// then on sends take_output() and feeds bytes through TLS -- the machine
// itself never sees a byte of TLS. Any refusal of STARTTLS, or a server that
// is not fixed newstyle, fails: never a fallback to plain text (NBD spec,
// downgrade attacks).
//
// Every length the server sends is checked before anything is allocated for
// it; every refusal becomes a sentence naming the export and the server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <span>
#include <vector>

#include "nbd/export_info.h"
#include "proto/nbd_wire.h"

namespace unbd::nbd {

// Longest option reply payload accepted. The largest legitimate ones are a
// SERVER reply (two 4096-byte strings) and an error with its message.
inline constexpr std::size_t kMaxOptionReplyLength = 64 * 1024;
// A hostile server could answer one option forever; these bound the memory
// (NBD_OPT_LIST entries) and the work (replies to one option).
inline constexpr std::size_t kMaxExports = 10'000;
inline constexpr std::size_t kMaxRepliesPerOption = 20'000;
// The largest export size accepted. NBD sizes are u64, but Linux block
// devices and file offsets are signed 64-bit (loff_t), as are nbdkit's and
// qemu's: a size above 2^63-1 is refused, whether from GO or EXPORT_NAME.
inline constexpr uint64_t kMaxExportSize = INT64_MAX;

class Handshake {
public:
    enum class Goal { Export, List };
    struct Params {
        Goal goal = Goal::Export;
        std::string export_name;
        bool structured_replies = false;  // ask for them (only `unbd info` does)
        std::string where;                // the server's URI, for messages
        bool starttls = false;            // nbds://: TLS first, or fail
    };

    explicit Handshake(Params params);

    // Bytes to send before reading again; empties the pending output.
    std::vector<std::byte> take_output();
    // Bytes to read next; 0 once done() or failed().
    std::size_t bytes_needed() const;
    // Up to bytes_needed() bytes received from the server.
    void feed(std::span<const std::byte> data);

    // STARTTLS was acknowledged: run the TLS handshake, then tls_started().
    bool tls_pending() const { return state_ == State::TlsPending; }
    void tls_started();
    bool tls() const { return tls_; }  // the conversation went on over TLS

    bool done() const { return state_ == State::Done; }
    bool failed() const { return state_ == State::Failed; }
    const std::string& error() const { return error_; }
    // What it means that the server closed the connection right now.
    std::string eof_message() const;

    // Valid once done().
    const ExportInfo& info() const { return info_; }
    const std::vector<ExportListing>& exports() const { return exports_; }
    bool fixed_newstyle() const { return fixed_newstyle_; }
    bool no_zeroes() const { return no_zeroes_; }

private:
    enum class State { Greeting, HandshakeFlags, ReplyHeader, ReplyPayload, ExportNameReply, ExportNameZeroes,
                       TlsPending, Done, Failed };

    void on_greeting();
    void on_handshake_flags();
    void on_reply_header();
    void on_reply_payload();
    void on_starttls_reply();
    void send_first_option();  // after the flags, or after TLS started
    void on_structured_reply_reply();
    void on_go_reply();
    void on_list_reply();
    void on_info(std::span<const std::byte> payload);
    void on_export_name_reply();
    bool accept_size(uint64_t size);  // false (and failed) above kMaxExportSize

    void send_option(proto::Opt option, std::span<const std::byte> data = {});
    void send_go();
    void send_export_name();
    void send_list();
    void expect(State state, std::size_t bytes);
    void fail(std::string message);
    void refuse();  // the current reply is an error: describe it, soft-disconnect

    Params params_;
    State state_ = State::Greeting;
    std::vector<std::byte> in_;   // bytes of the current step
    std::size_t need_ = 0;        // size of the current step
    std::vector<std::byte> out_;
    std::string error_;

    bool fixed_newstyle_ = false;
    bool no_zeroes_ = false;
    bool tls_ = false;
    proto::Opt option_ = proto::Opt::Abort;  // option awaiting its reply
    proto::OptionReply reply_{};
    std::size_t replies_ = 0;  // to the current option
    bool got_info_export_ = false;

    ExportInfo info_;
    std::vector<ExportListing> exports_;
};

// Server text made safe for a terminal: control characters become '?',
// at most kMaxStringLength bytes are kept.
std::string sanitize_server_text(std::string_view text);

// The sentence for an NBD_REP_ERR_* reply to `option` (handshake_errors.cpp).
std::string describe_option_error(proto::Opt option, uint32_t rep_type, std::string_view server_message,
                                  const std::string& export_name, const std::string& where);

}  // namespace unbd::nbd
