// NBD wire format: every constant of the protocol (doc/proto.md), the fixed
// headers and their big-endian codecs. Pure: no I/O, no allocation.
//
// Byte order is converted only here (load_be/store_be); everything above
// this file works with host-order values in the structs below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace unbd::proto {

// ---- byte order -----------------------------------------------------------

template <typename T>
constexpr T load_be(const std::byte* p) {
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | std::to_integer<T>(p[i]));
    return v;
}

template <typename T>
constexpr void store_be(std::byte* p, T v) {
    for (std::size_t i = sizeof(T); i-- > 0;) {
        p[i] = static_cast<std::byte>(v & 0xff);
        v = static_cast<T>(v >> 8);
    }
}

// ---- handshake ------------------------------------------------------------

inline constexpr uint16_t kDefaultPort = 10809;
inline constexpr uint64_t kNbdMagic = 0x4e42444d41474943;       // "NBDMAGIC"
inline constexpr uint64_t kOldstyleMagic = 0x00420281861253;    // cliserv magic
inline constexpr uint64_t kIHaveOpt = 0x49484156454F5054;       // "IHAVEOPT"
inline constexpr uint64_t kOptReplyMagic = 0x0003e889045565a9;

// handshake flags (server, 16 bit)
inline constexpr uint16_t kFlagFixedNewstyle = 1u << 0;
inline constexpr uint16_t kFlagNoZeroes = 1u << 1;
// client flags (32 bit)
inline constexpr uint32_t kFlagCFixedNewstyle = 1u << 0;
inline constexpr uint32_t kFlagCNoZeroes = 1u << 1;

enum class Opt : uint32_t {
    ExportName = 1,
    Abort = 2,
    List = 3,
    PeekExport = 4,  // withdrawn
    StartTls = 5,
    Info = 6,
    Go = 7,
    StructuredReply = 8,
    ListMetaContext = 9,
    SetMetaContext = 10,
    ExtendedHeaders = 11,  // experimental
};

inline constexpr uint32_t kRepFlagError = 1u << 31;
enum class Rep : uint32_t {
    Ack = 1,
    Server = 2,
    Info = 3,
    MetaContext = 4,
    ErrUnsup = kRepFlagError | 1,
    ErrPolicy = kRepFlagError | 2,
    ErrInvalid = kRepFlagError | 3,
    ErrPlatform = kRepFlagError | 4,
    ErrTlsReqd = kRepFlagError | 5,
    ErrUnknown = kRepFlagError | 6,
    ErrShutdown = kRepFlagError | 7,
    ErrBlockSizeReqd = kRepFlagError | 8,
    ErrTooBig = kRepFlagError | 9,
    ErrExtHeaderReqd = kRepFlagError | 10,  // experimental
};

enum class Info : uint16_t {
    Export = 0,
    Name = 1,
    Description = 2,
    BlockSize = 3,
};

// transmission flags (16 bit)
inline constexpr uint16_t kFlagHasFlags = 1u << 0;
inline constexpr uint16_t kFlagReadOnly = 1u << 1;
inline constexpr uint16_t kFlagSendFlush = 1u << 2;
inline constexpr uint16_t kFlagSendFua = 1u << 3;
inline constexpr uint16_t kFlagRotational = 1u << 4;
inline constexpr uint16_t kFlagSendTrim = 1u << 5;
inline constexpr uint16_t kFlagSendWriteZeroes = 1u << 6;
inline constexpr uint16_t kFlagSendDf = 1u << 7;
inline constexpr uint16_t kFlagCanMultiConn = 1u << 8;
inline constexpr uint16_t kFlagSendResize = 1u << 9;  // experimental
inline constexpr uint16_t kFlagSendCache = 1u << 10;
inline constexpr uint16_t kFlagSendFastZero = 1u << 11;
inline constexpr uint16_t kFlagBlockStatusPayload = 1u << 12;  // experimental

// ---- limits ---------------------------------------------------------------

inline constexpr std::size_t kMaxStringLength = 4096;       // spec: MUST be <= 4096
inline constexpr uint32_t kMaxMinimumBlockSize = 64 * 1024;  // spec: min block <= 64 KiB
inline constexpr uint32_t kDefaultPreferredBlockSize = 4096;
inline constexpr uint32_t kDefaultMaxPayload = 32u << 20;   // 32 MiB when nothing is advertised
inline constexpr uint32_t kNoPayloadLimit = 0xffffffff;

// ---- transmission ---------------------------------------------------------

inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;
inline constexpr uint32_t kExtendedRequestMagic = 0x21e41c71;  // experimental
inline constexpr uint32_t kExtendedReplyMagic = 0x6e8a278c;    // experimental

enum class Cmd : uint16_t {
    Read = 0,
    Write = 1,
    Disc = 2,
    Flush = 3,
    Trim = 4,
    Cache = 5,
    WriteZeroes = 6,
    BlockStatus = 7,
    Resize = 8,  // experimental
};

// command flags (16 bit)
inline constexpr uint16_t kCmdFlagFua = 1u << 0;
inline constexpr uint16_t kCmdFlagNoHole = 1u << 1;
inline constexpr uint16_t kCmdFlagDf = 1u << 2;
inline constexpr uint16_t kCmdFlagReqOne = 1u << 3;
inline constexpr uint16_t kCmdFlagFastZero = 1u << 4;
inline constexpr uint16_t kCmdFlagPayloadLen = 1u << 5;  // experimental

// structured replies
inline constexpr uint16_t kReplyFlagDone = 1u << 0;
enum class Chunk : uint16_t {
    None = 0,
    OffsetData = 1,
    OffsetHole = 2,
    BlockStatus = 5,
    BlockStatusExt = 6,  // experimental
    Error = 0x8001,
    ErrorOffset = 0x8002,
};

// error values on the wire
inline constexpr uint32_t kEPERM = 1;
inline constexpr uint32_t kEIO = 5;
inline constexpr uint32_t kENOMEM = 12;
inline constexpr uint32_t kEINVAL = 22;
inline constexpr uint32_t kENOSPC = 28;
inline constexpr uint32_t kEOVERFLOW = 75;
inline constexpr uint32_t kENOTSUP = 95;
inline constexpr uint32_t kESHUTDOWN = 108;

// The one place an NBD error value becomes a positive errno. Unknown values
// become EINVAL, as the spec asks.
int errno_from_nbd_error(uint32_t nbd_error);

// ---- fixed headers --------------------------------------------------------

inline constexpr std::size_t kOptionRequestSize = 16;
inline constexpr std::size_t kOptionReplySize = 20;
inline constexpr std::size_t kRequestSize = 28;
inline constexpr std::size_t kSimpleReplySize = 16;
inline constexpr std::size_t kStructuredReplySize = 20;
inline constexpr std::size_t kExportNameReplySize = 134;  // 10 with NO_ZEROES

struct OptionRequest {
    Opt option;
    uint32_t length;  // of the data that follows
};

struct OptionReply {
    uint32_t option;
    uint32_t type;  // a Rep value, or an unknown one
    uint32_t length;
};

struct Request {
    uint16_t flags = 0;
    Cmd type = Cmd::Read;
    uint64_t cookie = 0;
    uint64_t offset = 0;
    uint32_t length = 0;
};

struct SimpleReply {
    uint32_t error;
    uint64_t cookie;
};

struct StructuredReply {
    uint16_t flags;
    uint16_t type;
    uint64_t cookie;
    uint32_t length;
};


void encode_option_request(const OptionRequest& r, std::span<std::byte, kOptionRequestSize> out);
// nullopt when the magic is wrong.
std::optional<OptionReply> decode_option_reply(std::span<const std::byte, kOptionReplySize> in);

void encode_request(const Request& r, std::span<std::byte, kRequestSize> out);
std::optional<Request> decode_request(std::span<const std::byte, kRequestSize> in);

void encode_simple_reply(const SimpleReply& r, std::span<std::byte, kSimpleReplySize> out);
// nullopt when the magic is not the simple-reply magic.
std::optional<SimpleReply> decode_simple_reply(std::span<const std::byte, kSimpleReplySize> in);

std::optional<StructuredReply> decode_structured_reply(std::span<const std::byte, kStructuredReplySize> in);

// Names for messages and logs ("NBD_OPT_GO", "NBD_CMD_WRITE", ...).
const char* name(Opt o);
const char* name(Cmd c);
const char* rep_name(uint32_t rep_type);

constexpr bool is_power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace unbd::proto
