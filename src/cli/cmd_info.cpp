// `unbd info URI [--json] [--list]`: connect, negotiate, print what the
// export offers (like nbdinfo), then disconnect politely.
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/tls_options.h"
#include "common/error.h"
#include "nbd/connect.h"
#include "nbd/handshake.h"
#include "proto/nbd_wire.h"

namespace unbd::cli {
namespace {

struct InfoArgs {
    std::string uri;
    bool json = false;
    bool list = false;
    double connect_timeout = 10;
    double handshake_timeout = 10;
    TlsArgs tls;
};

std::chrono::milliseconds to_ms(double seconds) {
    return std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0));
}

// "1M", "1.5G": the short size nbdinfo prints after the byte count.
std::string human_size(uint64_t bytes) {
    static constexpr const char* kUnits[] = {"", "K", "M", "G", "T", "P", "E"};
    double v = static_cast<double>(bytes);
    int unit = 0;
    while (v >= 1024 && unit < 6) {
        v /= 1024;
        ++unit;
    }
    char buf[32];
    if (unit == 0 || v == static_cast<double>(static_cast<uint64_t>(v)))
        std::snprintf(buf, sizeof buf, "%llu%s", static_cast<unsigned long long>(v), kUnits[unit]);
    else
        std::snprintf(buf, sizeof buf, "%.1f%s", v, kUnits[unit]);
    return buf;
}

// Tells the server goodbye (NBD_CMD_DISC) before closing: polite, and keeps
// server logs free of "client closed without disconnect". A server that is
// gone already makes this fail with EPIPE (MSG_NOSIGNAL: no SIGPIPE), which
// changes nothing: what it said is printed all the same.
void send_disconnect(const Fd& fd) {
    std::byte req[proto::kRequestSize];
    proto::encode_request({0, proto::Cmd::Disc, 0, 0, 0}, std::span<std::byte, proto::kRequestSize>(req));
    (void)!::send(fd.get(), req, sizeof req, MSG_NOSIGNAL);
}

nlohmann::json info_json(const nbd::ExportInfo& i, const std::string& uri, const std::string& tls) {
    nlohmann::json j;
    j["export_name"] = i.name;
    j["uri"] = uri;
    j["tls"] = tls.empty() ? nlohmann::json(nullptr) : nlohmann::json(tls);
    j["size_bytes"] = i.size;
    j["read_only"] = i.read_only();
    j["rotational"] = i.rotational();
    j["can_flush"] = i.can_flush();
    j["can_fua"] = i.can_fua();
    j["can_trim"] = i.can_trim();
    j["can_write_zeroes"] = i.can_write_zeroes();
    j["can_fast_zero"] = i.can_fast_zero();
    j["can_cache"] = i.can_cache();
    j["can_df"] = i.can_df();
    j["can_multi_conn"] = i.can_multi_conn();
    j["structured_replies"] = i.structured_replies;
    j["block_size_advertised"] = i.block_size_advertised;
    j["block_size_min"] = i.block_size_min;
    j["block_size_preferred"] = i.block_size_preferred;
    j["block_size_max"] = i.block_size_max;
    j["description"] = i.description ? nlohmann::json(*i.description) : nlohmann::json(nullptr);
    j["transmission_flags"] = i.transmission_flags;
    return j;
}

void print_human(const nbd::ExportInfo& i, const std::string& uri, const std::string& tls) {
    auto yn = [](bool b) { return b ? "true" : "false"; };
    std::printf("export=\"%s\":\n", nbd::sanitize_server_text(i.name).c_str());
    std::printf("\texport-size: %llu (%s)\n", static_cast<unsigned long long>(i.size), human_size(i.size).c_str());
    if (i.description) std::printf("\tdescription: %s\n", nbd::sanitize_server_text(*i.description).c_str());
    std::printf("\turi: %s\n", uri.c_str());
    std::printf("\ttls: %s\n", tls.empty() ? "off" : tls.c_str());
    std::printf("\tstructured_replies: %s\n", yn(i.structured_replies));
    std::printf("\tis_rotational: %s\n", yn(i.rotational()));
    std::printf("\tis_read_only: %s\n", yn(i.read_only()));
    std::printf("\tcan_cache: %s\n", yn(i.can_cache()));
    std::printf("\tcan_df: %s\n", yn(i.can_df()));
    std::printf("\tcan_fast_zero: %s\n", yn(i.can_fast_zero()));
    std::printf("\tcan_flush: %s\n", yn(i.can_flush()));
    std::printf("\tcan_fua: %s\n", yn(i.can_fua()));
    std::printf("\tcan_multi_conn: %s\n", yn(i.can_multi_conn()));
    std::printf("\tcan_trim: %s\n", yn(i.can_trim()));
    std::printf("\tcan_zero: %s\n", yn(i.can_write_zeroes()));
    const char* note = i.block_size_advertised ? "" : " (not advertised; protocol default)";
    std::printf("\tblock_size_minimum: %u%s\n", i.block_size_min, note);
    std::printf("\tblock_size_preferred: %u%s\n", i.block_size_preferred, note);
    std::printf("\tblock_size_maximum: %u%s\n", i.block_size_max, note);
    if (!i.size_is_block_aligned())
        std::printf("\twarning: the size is not a multiple of the minimum block size %u\n", i.block_size_min);
}

void run_list(const nbd::Uri& uri, const nbd::ConnectOptions& opts, bool json) {
    auto exports = nbd::list_exports(uri, opts);
    if (json) {
        auto arr = nlohmann::json::array();
        for (auto& e : exports)
            arr.push_back({{"export_name", e.name},
                           {"description", e.description.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.description)}});
        std::cout << nlohmann::json{{"exports", arr}}.dump(2) << "\n";
        return;
    }
    for (auto& e : exports) {
        std::printf("export=\"%s\"\n", nbd::sanitize_server_text(e.name).c_str());
        if (!e.description.empty()) std::printf("\tdescription: %s\n", nbd::sanitize_server_text(e.description).c_str());
    }
}

void run_info(const InfoArgs& a) {
    auto uri = apply_tls_options(nbd::parse_uri(a.uri), a.tls);
    nbd::ConnectOptions opts;
    if (a.connect_timeout <= 0 || a.handshake_timeout <= 0) throw usage_error("--connect-timeout and --handshake-timeout must be positive numbers of seconds");
    opts.connect_timeout = to_ms(a.connect_timeout);
    opts.handshake_timeout = to_ms(a.handshake_timeout);
    if (a.list) return run_list(uri, opts, a.json);

    opts.structured_replies = true;  // probed and reported, never used by the data path
    auto conn = nbd::connect_export(uri, opts);
    send_disconnect(conn.socket);
    if (a.json)
        std::cout << info_json(conn.info, uri.to_string(), conn.tls_description()).dump(2) << "\n";
    else
        print_human(conn.info, uri.to_string(), conn.tls_description());
}

}  // namespace

void add_info_command(CLI::App& app) {
    auto args = std::make_shared<InfoArgs>();
    auto* cmd = app.add_subcommand("info", "Connect to an NBD export and show what it offers (like nbdinfo)");
    cmd->add_option("uri", args->uri, "nbd[s]://HOST[:PORT]/EXPORT or nbd[s]+unix:///EXPORT?socket=PATH")
        ->required();
    cmd->add_flag("--json", args->json, "Print one JSON object");
    cmd->add_flag("--list,-L", args->list, "List the server's exports (NBD_OPT_LIST)");
    cmd->add_option("--connect-timeout", args->connect_timeout, "Seconds to wait for the connection")
        ->capture_default_str();
    cmd->add_option("--handshake-timeout", args->handshake_timeout, "Seconds to wait for the handshake")
        ->capture_default_str();
    add_tls_options(cmd, args->tls);
    cmd->callback([args] { run_info(*args); });
}

}  // namespace unbd::cli
