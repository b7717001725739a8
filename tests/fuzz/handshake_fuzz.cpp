// Fuzzes nbd::Handshake (src/nbd/handshake.h) with the input as the
// server's side of the conversation.
//
// Input: one setup byte, then the server's bytes.
//   bit 0   goal List (else Export)
//   bit 1   ask for structured replies (what `unbd info` does)
//   bit 2   an empty export name (else "disk")
//   bits 3-7  0: feed exactly bytes_needed() at a time (what connect.cpp
//             does); n: at most n bytes at a time (short reads); 31: as 0,
//             with STARTTLS (nbds://): once it is accepted, "TLS starts" and
//             the rest of the input is what came through it
// The caller's contract is followed to the letter (take_output, then feed
// no more than bytes_needed()); the handshake's is checked: it asks for
// bytes until done() or failed(), a failure has a message, and what it
// accepted obeys the limits it promises.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "nbd/handshake.h"

using namespace unbd;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

void check_accepted(const nbd::Handshake& hs) {
    const nbd::ExportInfo& i = hs.info();
    check(hs.exports().size() <= nbd::kMaxExports);
    for (const auto& e : hs.exports())
        check(e.name.size() <= proto::kMaxStringLength && e.description.size() <= proto::kMaxStringLength);
    check(!i.description || i.description->size() <= proto::kMaxStringLength);
    if (i.block_size_advertised) {
        check(proto::is_power_of_two(i.block_size_min) && i.block_size_min <= proto::kMaxMinimumBlockSize);
        check(proto::is_power_of_two(i.block_size_preferred) && i.block_size_preferred >= i.block_size_min);
        check(i.block_size_max >= i.block_size_min);
    }
    if (!i.structured_replies) check(!i.can_df());
    (void)i.size_is_block_aligned();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const uint8_t setup = data[0];
    nbd::Handshake::Params params;
    params.goal = (setup & 1) ? nbd::Handshake::Goal::List : nbd::Handshake::Goal::Export;
    params.structured_replies = (setup & 2) != 0;
    params.export_name = (setup & 4) ? "" : "disk";
    params.where = "nbd://fuzz:10809/disk";
    params.starttls = (setup >> 3) == 31;
    const std::size_t chunk = params.starttls ? 0 : setup >> 3;

    nbd::Handshake hs(params);
    auto in = std::as_bytes(std::span(data + 1, size - 1));
    while (!hs.done() && !hs.failed()) {
        (void)hs.take_output();
        if (hs.tls_pending()) {
            check(hs.bytes_needed() == 0 && !hs.tls());
            hs.tls_started();
            check(hs.tls() || hs.failed());
            continue;
        }
        const std::size_t need = hs.bytes_needed();
        check(need > 0);
        if (in.empty()) {
            check(!hs.eof_message().empty());
            return 0;
        }
        std::size_t n = std::min(need, in.size());
        if (chunk != 0) n = std::min(n, chunk);
        hs.feed(in.first(n));
        in = in.subspan(n);
    }
    check(hs.bytes_needed() == 0);
    if (hs.failed()) {
        check(!hs.error().empty());
        return 0;
    }
    check_accepted(hs);
    (void)hs.take_output();
    return 0;
}
