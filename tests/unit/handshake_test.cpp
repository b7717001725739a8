// The handshake machine fed scripted server byte streams: good servers of
// each kind, and hostile ones. A "trailer" after every good stream stands for
// the first transmission bytes: the machine must never ask for them.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "nbd/handshake.h"

using namespace unbd::proto;
using unbd::nbd::Handshake;
using unbd::nbd::kMaxOptionReplyLength;

namespace {

using Bytes = std::vector<std::byte>;
const std::string kWhere = "nbd://host:10809/x";

// Builds what a server sends.
struct Server {
    Bytes b;
    Server& u16(uint16_t v) { return put(v); }
    Server& u32(uint32_t v) { return put(v); }
    Server& u64(uint64_t v) { return put(v); }
    Server& str(const std::string& s) {
        for (char c : s) b.push_back(static_cast<std::byte>(c));
        return *this;
    }
    Server& greeting(uint16_t flags) { return u64(kNbdMagic).u64(kIHaveOpt).u16(flags); }
    Server& reply(Opt opt, uint32_t type, const Bytes& payload = {}) {
        u64(kOptReplyMagic).u32(static_cast<uint32_t>(opt)).u32(type).u32(static_cast<uint32_t>(payload.size()));
        b.insert(b.end(), payload.begin(), payload.end());
        return *this;
    }
    Server& reply(Opt opt, Rep type, const Bytes& payload = {}) { return reply(opt, static_cast<uint32_t>(type), payload); }
    Server& info_export(uint64_t size, uint16_t flags) {
        return reply(Opt::Go, Rep::Info, Server{}.u16(0).u64(size).u16(flags).b);
    }
    Server& info_string(Info type, const std::string& s) {
        return reply(Opt::Go, Rep::Info, Server{}.u16(static_cast<uint16_t>(type)).str(s).b);
    }
    Server& info_block(uint32_t min, uint32_t pref, uint32_t max) {
        return reply(Opt::Go, Rep::Info, Server{}.u16(3).u32(min).u32(pref).u32(max).b);
    }
    Server& export_name_reply(uint64_t size, uint16_t flags, bool zeroes) {
        u64(size).u16(flags);
        if (zeroes) b.insert(b.end(), 124, std::byte{0});
        return *this;
    }
    template <typename T>
    Server& put(T v) {
        std::byte tmp[sizeof(T)];
        store_be<T>(tmp, v);
        b.insert(b.end(), tmp, tmp + sizeof(T));
        return *this;
    }
};

const Bytes kTrailer = Server{}.u32(kSimpleReplyMagic).b;  // transmission starts here

struct Run {
    Bytes client;           // everything the client sent
    std::size_t consumed = 0;
};

// Feeds `stream` the way connect.cpp does: at most bytes_needed() at a time
// (`chunk` caps it further, to exercise partial feeds).
Run drive(Handshake& hs, const Bytes& stream, std::size_t chunk = SIZE_MAX) {
    Run r;
    for (;;) {
        auto out = hs.take_output();
        r.client.insert(r.client.end(), out.begin(), out.end());
        if (hs.done() || hs.failed()) break;
        auto n = std::min({hs.bytes_needed(), chunk, stream.size() - r.consumed});
        if (n == 0) break;  // stream exhausted: the server "closed"
        hs.feed(std::span<const std::byte>(stream.data() + r.consumed, n));
        r.consumed += n;
    }
    return r;
}

Handshake make(const std::string& name = "x", bool sr = false, Handshake::Goal goal = Handshake::Goal::Export) {
    return Handshake({goal, name, sr, kWhere});
}

Bytes concat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

constexpr uint16_t kFlags = kFlagHasFlags | kFlagSendFlush | kFlagSendFua | kFlagSendDf | kFlagCanMultiConn;
constexpr uint16_t kBoth = kFlagFixedNewstyle | kFlagNoZeroes;

Bytes good_go_stream() {
    return Server{}
        .greeting(kBoth)
        .info_string(Info::Name, "canon")
        .info_string(Info::Description, "a disk")
        .info_block(512, 4096, 1 << 20)
        .info_export(1 << 30, kFlags)
        .reply(Opt::Go, Rep::Ack)
        .b;
}

// Splits what the client sent into {client flags, option requests}.
struct ClientMsgs {
    uint32_t flags = 0;
    std::vector<std::pair<Opt, Bytes>> options;
};
ClientMsgs parse_client(const Bytes& c) {
    ClientMsgs m;
    REQUIRE(c.size() >= 4);
    m.flags = load_be<uint32_t>(c.data());
    std::size_t i = 4;
    while (i < c.size()) {
        REQUIRE(c.size() - i >= 16);
        CHECK(load_be<uint64_t>(c.data() + i) == kIHaveOpt);
        auto opt = static_cast<Opt>(load_be<uint32_t>(c.data() + i + 8));
        auto len = load_be<uint32_t>(c.data() + i + 12);
        REQUIRE(c.size() - i - 16 >= len);
        m.options.emplace_back(opt, Bytes(c.begin() + static_cast<long>(i) + 16, c.begin() + static_cast<long>(i + 16 + len)));
        i += 16 + len;
    }
    return m;
}

std::string fail_with(const Bytes& stream, const std::string& name = "x", bool sr = false,
                      Handshake::Goal goal = Handshake::Goal::Export) {
    auto hs = make(name, sr, goal);
    drive(hs, stream);
    CHECK(hs.failed());
    CHECK(hs.bytes_needed() == 0);
    return hs.error();
}

bool contains(const std::string& s, const std::string& part) {
    if (s.find(part) != std::string::npos) return true;
    MESSAGE("'" << s << "' lacks '" << part << "'");
    return false;
}

}  // namespace

TEST_CASE("handshake: fixed newstyle GO with every info, stops at transmission") {
    auto hs = make("x");
    auto r = drive(hs, concat(good_go_stream(), kTrailer));
    REQUIRE(hs.done());
    CHECK(r.consumed == good_go_stream().size());
    auto& i = hs.info();
    CHECK(i.name == "canon");
    CHECK(i.description == "a disk");
    CHECK(i.size == (1u << 30));
    CHECK(i.block_size_advertised);
    CHECK(i.block_size_min == 512);
    CHECK(i.block_size_preferred == 4096);
    CHECK(i.block_size_max == (1u << 20));
    CHECK(i.can_flush());
    CHECK(i.can_multi_conn());
    CHECK_FALSE(i.can_df());  // no structured replies negotiated: DF is dropped
    CHECK_FALSE(i.structured_replies);

    auto m = parse_client(r.client);
    CHECK(m.flags == (kFlagCFixedNewstyle | kFlagCNoZeroes));
    REQUIRE(m.options.size() == 1);
    CHECK(m.options[0].first == Opt::Go);
    auto want = Server{}.u32(1).str("x").u16(4).u16(0).u16(1).u16(2).u16(3).b;
    CHECK(m.options[0].second == want);
}

TEST_CASE("handshake: byte-by-byte feeding gives the same result") {
    auto hs = make("x");
    auto r = drive(hs, concat(good_go_stream(), kTrailer), 1);
    REQUIRE(hs.done());
    CHECK(r.consumed == good_go_stream().size());
    CHECK(hs.info().name == "canon");
}

TEST_CASE("handshake: structured replies asked first when wanted, then GO") {
    auto stream = Server{}
                      .greeting(kBoth)
                      .reply(Opt::StructuredReply, Rep::Ack)
                      .info_export(4096, kFlags)
                      .reply(Opt::Go, Rep::Ack)
                      .b;
    auto hs = make("", true);
    auto r = drive(hs, stream);
    REQUIRE(hs.done());
    CHECK(hs.info().structured_replies);
    CHECK(hs.info().can_df());
    CHECK_FALSE(hs.info().block_size_advertised);
    CHECK(hs.info().block_size_min == 1);
    CHECK(hs.info().name.empty());
    CHECK_FALSE(hs.info().description);
    auto m = parse_client(r.client);
    REQUIRE(m.options.size() == 2);
    CHECK(m.options[0].first == Opt::StructuredReply);
    CHECK(m.options[0].second.empty());
    CHECK(m.options[1].first == Opt::Go);
}

TEST_CASE("handshake: the data path never asks for structured replies") {
    auto hs = make("x", false);
    auto r = drive(hs, good_go_stream());
    REQUIRE(hs.done());
    for (auto& [opt, data] : parse_client(r.client).options) CHECK(opt != Opt::StructuredReply);
}

TEST_CASE("handshake: a refused STRUCTURED_REPLY is not fatal") {
    auto stream = Server{}
                      .greeting(kBoth)
                      .reply(Opt::StructuredReply, Rep::ErrUnsup, Server{}.str("no").b)
                      .info_export(4096, kFlags)
                      .reply(Opt::Go, Rep::Ack)
                      .b;
    auto hs = make("", true);
    drive(hs, stream);
    REQUIRE(hs.done());
    CHECK_FALSE(hs.info().structured_replies);
    CHECK_FALSE(hs.info().can_df());
}

TEST_CASE("handshake: GO unsupported falls back to EXPORT_NAME with NO_ZEROES") {
    auto good = Server{}.greeting(kBoth).reply(Opt::Go, Rep::ErrUnsup).export_name_reply(8192, kFlags, false).b;
    auto hs = make("disk");
    auto r = drive(hs, concat(good, kTrailer));
    REQUIRE(hs.done());
    CHECK(r.consumed == good.size());
    CHECK(hs.info().size == 8192);
    CHECK(hs.info().name == "disk");
    CHECK(hs.info().can_flush());
    auto m = parse_client(r.client);
    REQUIRE(m.options.size() == 2);
    CHECK(m.options[1].first == Opt::ExportName);
    CHECK(m.options[1].second == Server{}.str("disk").b);
}

TEST_CASE("handshake: EXPORT_NAME fallback without NO_ZEROES reads the 124 zero bytes") {
    auto good = Server{}
                    .greeting(kFlagFixedNewstyle)
                    .reply(Opt::Go, Rep::ErrUnsup)
                    .export_name_reply(8192, kFlags, true)
                    .b;
    auto hs = make("disk");
    auto r = drive(hs, concat(good, kTrailer));
    REQUIRE(hs.done());
    CHECK(r.consumed == good.size());
    CHECK(parse_client(r.client).flags == kFlagCFixedNewstyle);
}

TEST_CASE("handshake: plain newstyle server gets EXPORT_NAME directly") {
    for (uint16_t flags : {uint16_t{0}, kFlagNoZeroes}) {
        bool zeroes = !(flags & kFlagNoZeroes);
        auto good = Server{}.greeting(flags).export_name_reply(512, kFlagHasFlags | kFlagReadOnly, zeroes).b;
        auto hs = make("d");
        auto r = drive(hs, concat(good, kTrailer));
        REQUIRE(hs.done());
        CHECK(r.consumed == good.size());
        CHECK(hs.info().read_only());
        auto m = parse_client(r.client);
        CHECK(m.flags == (zeroes ? 0u : kFlagCNoZeroes));
        REQUIRE(m.options.size() == 1);
        CHECK(m.options[0].first == Opt::ExportName);
    }
}

TEST_CASE("handshake: EOF after EXPORT_NAME means the export is probably missing") {
    auto hs = make("nope");
    drive(hs, Server{}.greeting(0).b);
    CHECK_FALSE(hs.done());
    CHECK(contains(hs.eof_message(), "export 'nope' probably does not exist on " + kWhere));
}

TEST_CASE("handshake: NBD_OPT_LIST collects exports, then ABORTs") {
    auto stream = Server{}
                      .greeting(kBoth)
                      .reply(Opt::List, Rep::Server, Server{}.u32(5).str("disk1").str("first disk").b)
                      .reply(Opt::List, Rep::Server, Server{}.u32(0).b)
                      .reply(Opt::List, Rep::Ack)
                      .b;
    auto hs = make("", false, Handshake::Goal::List);
    auto r = drive(hs, concat(stream, kTrailer));
    REQUIRE(hs.done());
    CHECK(r.consumed == stream.size());
    REQUIRE(hs.exports().size() == 2);
    CHECK(hs.exports()[0].name == "disk1");
    CHECK(hs.exports()[0].description == "first disk");
    CHECK(hs.exports()[1].name.empty());
    auto m = parse_client(r.client);
    REQUIRE(m.options.size() == 2);
    CHECK(m.options[0].first == Opt::List);
    CHECK(m.options[1].first == Opt::Abort);
}

TEST_CASE("handshake: truncated at every step, the machine keeps waiting") {
    auto fallback = Server{}.greeting(kFlagFixedNewstyle).reply(Opt::Go, Rep::ErrUnsup).export_name_reply(1, 1, true).b;
    auto list = Server{}.greeting(kBoth).reply(Opt::List, Rep::Server, Server{}.u32(1).str("a").b).reply(Opt::List, Rep::Ack).b;
    struct Case {
        Bytes stream;
        Handshake::Goal goal;
    };
    for (auto& [stream, goal] : {Case{good_go_stream(), Handshake::Goal::Export}, Case{fallback, Handshake::Goal::Export},
                                 Case{list, Handshake::Goal::List}}) {
        for (std::size_t k = 0; k < stream.size(); ++k) {
            auto hs = make("x", false, goal);
            drive(hs, Bytes(stream.begin(), stream.begin() + static_cast<long>(k)));
            CHECK_MESSAGE(!hs.done(), "prefix ", k);
            CHECK_MESSAGE(!hs.failed(), "prefix ", k, ": ", hs.error());
            CHECK(hs.bytes_needed() > 0);
            CHECK(contains(hs.eof_message(), kWhere));
        }
    }
}

TEST_CASE("handshake: bad magic, oldstyle, bad second magic") {
    CHECK(contains(fail_with(Server{}.u64(0x1122334455667788).u64(kIHaveOpt).b), "bad magic 0x1122334455667788"));
    CHECK(contains(fail_with(Server{}.u64(kNbdMagic).u64(kOldstyleMagic).b), "oldstyle"));
    CHECK(contains(fail_with(Server{}.u64(kNbdMagic).u64(42).b), "not a newstyle NBD server"));
}

TEST_CASE("handshake: bad option reply magic and mismatched option") {
    auto bad = Server{}.greeting(kBoth).u64(0x1234).u32(7).u32(1).u32(0).b;
    CHECK(contains(fail_with(bad), "bad option reply magic"));
    auto other = Server{}.greeting(kBoth).reply(Opt::List, Rep::Ack).b;
    CHECK(contains(fail_with(other), "answered option 3 while NBD_OPT_GO was pending"));
}

TEST_CASE("handshake: option reply longer than the limit is refused before reading it") {
    auto s = Server{}.greeting(kBoth).u64(kOptReplyMagic).u32(7).u32(static_cast<uint32_t>(Rep::Info));
    s.u32(static_cast<uint32_t>(kMaxOptionReplyLength + 1));
    auto hs = make();
    drive(hs, s.b);
    REQUIRE(hs.failed());
    CHECK(contains(hs.error(), "more than the 65536 bytes allowed"));
    auto huge = Server{}.greeting(kBoth).u64(kOptReplyMagic).u32(3).u32(2).u32(0xffffffff).b;
    CHECK(contains(fail_with(huge, "", false, Handshake::Goal::List), "4294967295 bytes long"));
}

TEST_CASE("handshake: ACK before NBD_INFO_EXPORT is a protocol error") {
    auto s = Server{}.greeting(kBoth).info_string(Info::Name, "n").reply(Opt::Go, Rep::Ack).b;
    CHECK(contains(fail_with(s), "without sending NBD_INFO_EXPORT"));
}

TEST_CASE("handshake: bad NBD_INFO_BLOCK_SIZE values") {
    auto with = [](uint32_t min, uint32_t pref, uint32_t max) {
        return fail_with(Server{}.greeting(kBoth).info_block(min, pref, max).info_export(1, 1).reply(Opt::Go, Rep::Ack).b);
    };
    CHECK(contains(with(3, 4096, 1 << 20), "bad minimum block size (minimum 3"));
    CHECK(contains(with(0, 4096, 1 << 20), "bad minimum block size"));
    CHECK(contains(with(128 * 1024, 128 * 1024, 1 << 20), "bad minimum block size"));
    CHECK(contains(with(512, 3000, 1 << 20), "bad preferred block size"));
    CHECK(contains(with(4096, 512, 1 << 20), "bad preferred block size"));
    CHECK(contains(with(4096, 4096, 1024), "maximum payload below the minimum"));
    auto bad_len = Server{}.greeting(kBoth).reply(Opt::Go, Rep::Info, Server{}.u16(3).u32(512).b).b;
    CHECK(contains(fail_with(bad_len), "NBD_INFO_BLOCK_SIZE of 6 bytes"));
}

TEST_CASE("handshake: an export size above 2^63-1 is refused, from GO and from EXPORT_NAME") {
    const uint64_t limit = unbd::nbd::kMaxExportSize;
    using Stream = Bytes (*)(uint64_t);
    const Stream go = [](uint64_t size) {
        return Server{}.greeting(kBoth).info_export(size, 1).reply(Opt::Go, Rep::Ack).b;
    };
    const Stream by_name = [](uint64_t size) {
        return Server{}.greeting(kBoth).reply(Opt::Go, Rep::ErrUnsup).export_name_reply(size, 1, false).b;
    };
    for (const Stream stream : {go, by_name}) {
        CHECK(contains(fail_with(stream(limit + 1)), "announces an export of 9223372036854775808 bytes, more than"));
        CHECK(contains(fail_with(stream(~uint64_t{0})), "18446744073709551615 bytes"));
        auto hs = make();
        drive(hs, stream(limit));
        REQUIRE(hs.done());
        CHECK(hs.info().size == limit);
    }
}

TEST_CASE("handshake: lenient block sizes real servers send are accepted") {
    // qemu-nbd -f raw: minimum 1; preferred below 512 is tolerated.
    auto s = Server{}.greeting(kBoth).info_block(1, 256, 0xffffffff).info_export(1000, 1).reply(Opt::Go, Rep::Ack).b;
    auto hs = make();
    drive(hs, s);
    REQUIRE(hs.done());
    CHECK(hs.info().block_size_min == 1);
    CHECK(hs.info().block_size_preferred == 256);
    CHECK(hs.info().block_size_max == 0xffffffff);
}

TEST_CASE("handshake: size not a multiple of the minimum block is reported, not rejected") {
    auto s = Server{}.greeting(kBoth).info_block(4096, 4096, 1 << 20).info_export(5000, 1).reply(Opt::Go, Rep::Ack).b;
    auto hs = make();
    drive(hs, s);
    REQUIRE(hs.done());
    CHECK_FALSE(hs.info().size_is_block_aligned());
}

TEST_CASE("handshake: unknown info types are ignored, malformed known ones are not") {
    auto s = Server{}
                 .greeting(kBoth)
                 .reply(Opt::Go, Rep::Info, Server{}.u16(99).str("whatever").b)
                 .info_export(77, 1)
                 .reply(Opt::Go, Rep::Ack)
                 .b;
    auto hs = make();
    drive(hs, s);
    REQUIRE(hs.done());
    CHECK(hs.info().size == 77);
    CHECK(contains(fail_with(Server{}.greeting(kBoth).reply(Opt::Go, Rep::Info, Server{}.u16(0).u64(1).b).b),
                   "NBD_INFO_EXPORT of 10 bytes"));
    CHECK(contains(fail_with(Server{}.greeting(kBoth).reply(Opt::Go, Rep::Info, Server{}.u16(0).b).b),
                   "NBD_INFO_EXPORT of 2 bytes"));
    CHECK(contains(fail_with(Server{}.greeting(kBoth).reply(Opt::Go, Rep::Info).b), "shorter than its type"));
    CHECK(contains(fail_with(Server{}.greeting(kBoth).info_string(Info::Name, std::string(4097, 'n')).b),
                   "export name of 4097 bytes"));
    CHECK(contains(fail_with(Server{}.greeting(kBoth).info_string(Info::Description, std::string(5000, 'd')).b),
                   "export description of 5000 bytes"));
}

TEST_CASE("handshake: ACK with a payload and unexpected reply types are protocol errors") {
    CHECK(contains(fail_with(Server{}.greeting(kBoth).info_export(1, 1).reply(Opt::Go, Rep::Ack, Server{}.u32(0).b).b),
                   "NBD_REP_ACK to NBD_OPT_GO carries 4 bytes"));
    CHECK(contains(fail_with(Server{}.greeting(kBoth).reply(Opt::Go, Rep::Server, Server{}.u32(0).b).b),
                   "unexpected NBD_REP_SERVER reply to NBD_OPT_GO"));
    CHECK(contains(fail_with(Server{}.greeting(kBoth).reply(Opt::List, Rep::Info, Server{}.u16(0).b).b, "",
                             false, Handshake::Goal::List),
                   "unexpected NBD_REP_INFO reply to NBD_OPT_LIST"));
    CHECK(contains(fail_with(Server{}.greeting(kBoth).reply(Opt::StructuredReply, Rep::Info).b, "", true),
                   "unexpected NBD_REP_INFO reply to NBD_OPT_STRUCTURED_REPLY"));
}

TEST_CASE("handshake: malformed NBD_REP_SERVER entries") {
    auto list = [](const Bytes& payload) {
        return fail_with(Server{}.greeting(kBoth).reply(Opt::List, Rep::Server, payload).b, "", false,
                         Handshake::Goal::List);
    };
    CHECK(contains(list(Server{}.u16(1).b), "shorter than its name length"));
    CHECK(contains(list(Server{}.u32(10).str("abc").b), "name length 10 exceeds the reply"));
    CHECK(contains(list(Server{}.u32(5000).str(std::string(5000, 'a')).b), "longer than 4096"));
}

TEST_CASE("handshake: list needs fixed newstyle") {
    CHECK(contains(fail_with(Server{}.greeting(0).b, "", false, Handshake::Goal::List), "cannot list exports"));
}

TEST_CASE("handshake: every server error reply becomes a sentence, then a soft disconnect") {
    struct Case {
        Rep rep;
        const char* text;
    };
    const Case cases[] = {
        {Rep::ErrPolicy, "the server's policy denies access to export 'x' on " },
        {Rep::ErrInvalid, "the server rejected NBD_OPT_GO for export 'x' as invalid"},
        {Rep::ErrPlatform, "cannot serve NBD_OPT_GO on this platform"},
        {Rep::ErrTlsReqd, "the server requires TLS"},
        {Rep::ErrUnknown, "export 'x' does not exist on nbd://host:10809/x"},
        {Rep::ErrShutdown, "the server is shutting down"},
        {Rep::ErrBlockSizeReqd, "requires block size negotiation for export 'x'"},
        {Rep::ErrTooBig, "NBD_OPT_GO request was too big for the server"},
        {Rep::ErrExtHeaderReqd, "requires extended headers"},
    };
    for (auto& c : cases) {
        auto hs = make("x");
        auto r = drive(hs, Server{}.greeting(kBoth).reply(Opt::Go, c.rep).b);
        REQUIRE(hs.failed());
        CHECK(contains(hs.error(), c.text));
        CHECK(hs.error().find("server says") == std::string::npos);
        auto m = parse_client(r.client);
        REQUIRE(m.options.size() == 2);
        CHECK(m.options[1].first == Opt::Abort);
    }
    CHECK(contains(fail_with(Server{}.greeting(kBoth).reply(Opt::Go, kRepFlagError | 77).b),
                   "unknown error 0x8000004d"));
    CHECK(contains(fail_with(Server{}.greeting(kBoth).reply(Opt::List, Rep::ErrPolicy).b, "", false,
                             Handshake::Goal::List),
                   "policy forbids listing exports"));
    CHECK(contains(fail_with(Server{}.greeting(kBoth).reply(Opt::List, Rep::ErrUnsup).b, "", false,
                             Handshake::Goal::List),
                   "does not support listing exports"));
}

TEST_CASE("handshake: the server's error text is kept, sanitized and bounded") {
    auto msg = Server{}.str("no such export \x1b[31mred\n").b;
    auto e = fail_with(Server{}.greeting(kBoth).reply(Opt::Go, Rep::ErrUnknown, msg).b);
    CHECK(contains(e, "export 'x' does not exist on nbd://host:10809/x: server says \"no such export ?[31mred?\""));
    auto long_msg = Server{}.str(std::string(10000, 'm')).b;
    auto e2 = fail_with(Server{}.greeting(kBoth).reply(Opt::Go, Rep::ErrPolicy, long_msg).b);
    CHECK(e2.size() < 4096 + 200);
}

TEST_CASE("handshake: endless replies to one option are cut off") {
    Server list;
    list.greeting(kBoth);
    for (std::size_t i = 0; i <= unbd::nbd::kMaxExports; ++i) list.reply(Opt::List, Rep::Server, Server{}.u32(1).str("e").b);
    CHECK(contains(fail_with(list.b, "", false, Handshake::Goal::List), "lists more than 10000 exports"));

    Server go;
    go.greeting(kBoth);
    for (std::size_t i = 0; i <= unbd::nbd::kMaxRepliesPerOption; ++i) go.reply(Opt::Go, Rep::Info, Server{}.u16(77).b);
    CHECK(contains(fail_with(go.b), "more than 20000 replies to NBD_OPT_GO"));
}

// ---- STARTTLS (nbds://) ------------------------------------------------------

namespace {
Handshake make_tls(bool sr = false, Handshake::Goal goal = Handshake::Goal::Export) {
    return Handshake({goal, "x", sr, kWhere, true});
}
std::string fail_with_tls_policy_text() {
    auto hs = make_tls();
    drive(hs, Server{}.greeting(kBoth).reply(Opt::StartTls, Rep::ErrPolicy, Server{}.str("no").b).b);
    return hs.error();
}
}  // namespace

TEST_CASE("handshake: STARTTLS first, then a pause for TLS, then the options through it") {
    auto hs = make_tls(true);
    // Before TLS: the greeting and the STARTTLS ACK, nothing more is read.
    const Bytes plain = Server{}.greeting(kBoth).reply(Opt::StartTls, Rep::Ack).b;
    auto r = drive(hs, concat(plain, kTrailer));
    REQUIRE(hs.tls_pending());
    CHECK_FALSE(hs.done());
    CHECK_FALSE(hs.tls());
    CHECK(hs.bytes_needed() == 0);  // the TLS handshake's bytes are not the machine's
    CHECK(r.consumed == plain.size());
    auto m = parse_client(r.client);
    REQUIRE(m.options.size() == 1);
    CHECK(m.options[0].first == Opt::StartTls);
    CHECK(m.options[0].second.empty());  // STARTTLS carries no data

    // After TLS: the usual conversation (structured replies, GO), as plaintext
    // fed by the connect layer from the TLS stream.
    hs.tls_started();
    CHECK(hs.tls());
    const Bytes inside = Server{}
                             .reply(Opt::StructuredReply, Rep::Ack)
                             .info_export(1 << 20, kFlags)
                             .reply(Opt::Go, Rep::Ack)
                             .b;
    auto r2 = drive(hs, concat(inside, kTrailer));
    REQUIRE(hs.done());
    CHECK(r2.consumed == inside.size());
    CHECK(hs.info().structured_replies);
    CHECK(hs.info().size == (1u << 20));
    auto m2 = r2.client;
    REQUIRE(m2.size() >= 16);
    CHECK(static_cast<Opt>(load_be<uint32_t>(m2.data() + 8)) == Opt::StructuredReply);  // no flags again
}

TEST_CASE("handshake: list over TLS") {
    auto hs = make_tls(false, Handshake::Goal::List);
    drive(hs, Server{}.greeting(kBoth).reply(Opt::StartTls, Rep::Ack).b);
    REQUIRE(hs.tls_pending());
    hs.tls_started();
    drive(hs, Server{}.reply(Opt::List, Rep::Server, Server{}.u32(1).str("a").b).reply(Opt::List, Rep::Ack).b);
    REQUIRE(hs.done());
    REQUIRE(hs.exports().size() == 1);
    CHECK(hs.exports()[0].name == "a");
}

TEST_CASE("handshake: a refused STARTTLS fails, never falls back to plain text") {
    for (Rep rep : {Rep::ErrUnsup, Rep::ErrPolicy, Rep::ErrInvalid}) {
        auto hs = make_tls();
        auto r = drive(hs, Server{}.greeting(kBoth).reply(Opt::StartTls, rep).b);
        REQUIRE(hs.failed());
        CHECK(contains(hs.error(), "the server on nbd://host:10809/x does not support TLS (it answered "
                                   "NBD_OPT_STARTTLS with "));
        CHECK(contains(hs.error(), "refusing to go on without TLS"));
        auto m = parse_client(r.client);
        REQUIRE(m.options.size() == 2);  // STARTTLS, then ABORT: nothing else in plain text
        CHECK(m.options[0].first == Opt::StartTls);
        CHECK(m.options[1].first == Opt::Abort);
    }
    CHECK(contains(fail_with_tls_policy_text(), "NBD_REP_ERR_POLICY): refusing to go on without TLS: server says \"no\""));
    // Not fixed newstyle: no options at all, so no STARTTLS.
    auto hs = make_tls();
    auto r = drive(hs, Server{}.greeting(0).b);
    REQUIRE(hs.failed());
    CHECK(contains(hs.error(), "does not support fixed newstyle negotiation, so it cannot do TLS"));
    // An odd reply type is a protocol error; EOF after the ACK is explained.
    auto odd = make_tls();
    drive(odd, Server{}.greeting(kBoth).reply(Opt::StartTls, Rep::Server).b);
    CHECK(contains(odd.error(), "unexpected NBD_REP_SERVER reply to NBD_OPT_STARTTLS"));
    auto ack = make_tls();
    drive(ack, Server{}.greeting(kBoth).reply(Opt::StartTls, Rep::Ack).b);
    CHECK(contains(ack.eof_message(), "after accepting NBD_OPT_STARTTLS"));
}

TEST_CASE("handshake: tls_started() without an accepted STARTTLS is an internal error") {
    auto hs = make_tls();
    hs.tls_started();
    CHECK(hs.failed());
}
