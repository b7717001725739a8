// ublk UAPI subset (include/uapi/linux/ublk_cmd.h), written for unbd.
//
// Pure definitions: no syscalls, no allocation. Every struct the kernel reads
// or writes has its size checked, so a layout slip fails the build rather
// than a command. Kernel versions in comments say since when a value exists;
// the code above must probe (GET_FEATURES) before relying on anything newer
// than 6.0.
//
// Our own headers cannot depend on the host's <linux/ublk_cmd.h>: build hosts
// (Debian 12: 6.1 headers) are much older than the kernels we target.
#pragma once

#ifdef USER_BLK_DRV_CMD_INC_H
#error "proto/ublk_uapi.h replaces <linux/ublk_cmd.h>; its macros would clash with these names"
#endif

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace unbd::proto::ublk {

// ---- ioctl-style command encoding (asm-generic/ioctl.h) ---------------------

inline constexpr uint32_t kIocWrite = 1;
inline constexpr uint32_t kIocRead = 2;
inline constexpr uint32_t kIocType = 'u';

constexpr uint32_t ioc(uint32_t dir, uint32_t nr, std::size_t size) {
    return (dir << 30) | (static_cast<uint32_t>(size) << 16) | (kIocType << 8) | nr;
}

// ---- control device: /dev/ublk-control, URING_CMD on an SQE128 ring ---------

inline constexpr const char* kControlPath = "/dev/ublk-control";
inline constexpr const char* kCharDevPrefix = "/dev/ublkc";   // + dev_id
inline constexpr const char* kBlockDevPrefix = "/dev/ublkb";  // + dev_id

// Payload of every control command, in sqe->cmd (32 bytes: needs SQE128).
struct ublksrv_ctrl_cmd {
    uint32_t dev_id;        // -1 (UINT32_MAX) lets ADD_DEV pick one
    uint16_t queue_id;      // -1 (UINT16_MAX) when not a per-queue command
    uint16_t len;           // length of the buffer at addr
    uint64_t addr;          // user buffer (dev_info, params, features, ...)
    uint64_t data[1];       // inline argument (START_DEV: daemon pid, ...)
    uint16_t dev_path_len;  // GET_DEV_INFO2 / unprivileged: path prepended to addr
    uint16_t pad;
    uint32_t reserved;
};
static_assert(sizeof(ublksrv_ctrl_cmd) == 32);

inline constexpr uint32_t kDevIdAuto = UINT32_MAX;
// The largest device id ADD_DEV accepts (ublk_drv.c: UBLK_MAX_UBLKS = UBLK_MINORS, 1 << 20).
inline constexpr uint32_t kMaxDevId = (1u << 20) - 1;
inline constexpr uint16_t kQueueIdNone = UINT16_MAX;

// Legacy (plain) control opcodes; the UBLK_U_CMD_* forms below are what we send.
enum class CtrlOp : uint32_t {
    GetQueueAffinity = 0x01,
    GetDevInfo = 0x02,
    AddDev = 0x04,
    DelDev = 0x05,
    StartDev = 0x06,          // data[0] = daemon pid
    StopDev = 0x07,
    SetParams = 0x08,
    GetParams = 0x09,
    StartUserRecovery = 0x10, // 6.1
    EndUserRecovery = 0x11,   // 6.1
    GetDevInfo2 = 0x12,       // 6.3
    GetFeatures = 0x13,       // 6.5, 8-byte feature mask at addr
    DelDevAsync = 0x14,       // 6.9
    UpdateSize = 0x15,        // ~6.15, data[0] = sectors
    QuiesceDev = 0x16,        // 6.16, data[0] = timeout ms
    TryStopDev = 0x17,        // 7.0, EBUSY while opened
    RegBuf = 0x18,            // 7.1 SHMEM_ZC
    UnregBuf = 0x19,          // 7.1 SHMEM_ZC
};

constexpr uint32_t ctrl_ior(CtrlOp op) {
    return ioc(kIocRead, static_cast<uint32_t>(op), sizeof(ublksrv_ctrl_cmd));
}
constexpr uint32_t ctrl_iowr(CtrlOp op) {
    return ioc(kIocRead | kIocWrite, static_cast<uint32_t>(op), sizeof(ublksrv_ctrl_cmd));
}

// ioctl-encoded control commands (6.4+, UBLK_F_CMD_IOCTL_ENCODE).
inline constexpr uint32_t UBLK_U_CMD_GET_QUEUE_AFFINITY = ctrl_ior(CtrlOp::GetQueueAffinity);
inline constexpr uint32_t UBLK_U_CMD_GET_DEV_INFO = ctrl_ior(CtrlOp::GetDevInfo);
inline constexpr uint32_t UBLK_U_CMD_ADD_DEV = ctrl_iowr(CtrlOp::AddDev);
inline constexpr uint32_t UBLK_U_CMD_DEL_DEV = ctrl_iowr(CtrlOp::DelDev);
inline constexpr uint32_t UBLK_U_CMD_START_DEV = ctrl_iowr(CtrlOp::StartDev);
inline constexpr uint32_t UBLK_U_CMD_STOP_DEV = ctrl_iowr(CtrlOp::StopDev);
inline constexpr uint32_t UBLK_U_CMD_SET_PARAMS = ctrl_iowr(CtrlOp::SetParams);
inline constexpr uint32_t UBLK_U_CMD_GET_PARAMS = ctrl_ior(CtrlOp::GetParams);
inline constexpr uint32_t UBLK_U_CMD_START_USER_RECOVERY = ctrl_iowr(CtrlOp::StartUserRecovery);
inline constexpr uint32_t UBLK_U_CMD_END_USER_RECOVERY = ctrl_iowr(CtrlOp::EndUserRecovery);
inline constexpr uint32_t UBLK_U_CMD_GET_DEV_INFO2 = ctrl_ior(CtrlOp::GetDevInfo2);
inline constexpr uint32_t UBLK_U_CMD_GET_FEATURES = ctrl_ior(CtrlOp::GetFeatures);
inline constexpr uint32_t UBLK_U_CMD_DEL_DEV_ASYNC = ctrl_ior(CtrlOp::DelDevAsync);
inline constexpr uint32_t UBLK_U_CMD_UPDATE_SIZE = ctrl_iowr(CtrlOp::UpdateSize);
inline constexpr uint32_t UBLK_U_CMD_QUIESCE_DEV = ctrl_iowr(CtrlOp::QuiesceDev);
inline constexpr uint32_t UBLK_U_CMD_TRY_STOP_DEV = ctrl_iowr(CtrlOp::TryStopDev);
inline constexpr uint32_t UBLK_U_CMD_REG_BUF = ctrl_iowr(CtrlOp::RegBuf);
inline constexpr uint32_t UBLK_U_CMD_UNREG_BUF = ctrl_iowr(CtrlOp::UnregBuf);

// Known encodings, so a slip in ioc() cannot go unnoticed.
static_assert(UBLK_U_CMD_GET_FEATURES == 0x80207513u);
static_assert(UBLK_U_CMD_ADD_DEV == 0xc0207504u);

inline constexpr std::size_t kFeaturesLen = 8;  // GET_FEATURES reply: one u64

// Device description: ADD_DEV (in/out), GET_DEV_INFO (out).
struct ublksrv_ctrl_dev_info {
    uint16_t nr_hw_queues;
    uint16_t queue_depth;
    uint16_t state;  // DevState
    uint16_t pad0;
    uint32_t max_io_buf_bytes;
    uint32_t dev_id;
    int32_t ublksrv_pid;
    uint32_t pad1;
    uint64_t flags;          // UBLK_F_* requested / granted
    uint64_t ublksrv_flags;  // opaque to the kernel, stored for userspace
    uint32_t owner_uid;      // set by the kernel
    uint32_t owner_gid;
    uint64_t reserved1;
    uint64_t reserved2;
};
static_assert(sizeof(ublksrv_ctrl_dev_info) == 64);

enum class DevState : uint16_t {
    Dead = 0,
    Live = 1,
    Quiesced = 2,
    FailIo = 3,  // 6.13, with UBLK_F_USER_RECOVERY_FAIL_IO
};

// ---- feature flags (ublksrv_ctrl_dev_info.flags, GET_FEATURES) --------------

inline constexpr uint64_t UBLK_F_SUPPORT_ZERO_COPY = 1ull << 0;       // functional 6.15
inline constexpr uint64_t UBLK_F_URING_CMD_COMP_IN_TASK = 1ull << 1;
inline constexpr uint64_t UBLK_F_NEED_GET_DATA = 1ull << 2;
inline constexpr uint64_t UBLK_F_USER_RECOVERY = 1ull << 3;            // 6.1
inline constexpr uint64_t UBLK_F_USER_RECOVERY_REISSUE = 1ull << 4;    // 6.1
inline constexpr uint64_t UBLK_F_UNPRIVILEGED_DEV = 1ull << 5;         // 6.3
inline constexpr uint64_t UBLK_F_CMD_IOCTL_ENCODE = 1ull << 6;         // 6.4
inline constexpr uint64_t UBLK_F_USER_COPY = 1ull << 7;                // 6.5
inline constexpr uint64_t UBLK_F_ZONED = 1ull << 8;                    // 6.6
inline constexpr uint64_t UBLK_F_USER_RECOVERY_FAIL_IO = 1ull << 9;    // 6.13
inline constexpr uint64_t UBLK_F_UPDATE_SIZE = 1ull << 10;             // ~6.15
inline constexpr uint64_t UBLK_F_AUTO_BUF_REG = 1ull << 11;            // 6.16
inline constexpr uint64_t UBLK_F_QUIESCE = 1ull << 12;                 // 6.16
inline constexpr uint64_t UBLK_F_PER_IO_DAEMON = 1ull << 13;           // 6.16
inline constexpr uint64_t UBLK_F_BUF_REG_OFF_DAEMON = 1ull << 14;      // 6.17
inline constexpr uint64_t UBLK_F_BATCH_IO = 1ull << 15;                // 7.0
inline constexpr uint64_t UBLK_F_INTEGRITY = 1ull << 16;               // 7.0
inline constexpr uint64_t UBLK_F_SAFE_STOP_DEV = 1ull << 17;           // 7.0
inline constexpr uint64_t UBLK_F_NO_AUTO_PART_SCAN = 1ull << 18;       // 7.0
inline constexpr uint64_t UBLK_F_SHMEM_ZC = 1ull << 19;                // 7.1

// Names indexed by bit number (as `ublk features` prints them).
inline constexpr std::array<std::string_view, 20> kFeatureNames = {
    "ZERO_COPY",        "COMP_IN_TASK",  "NEED_GET_DATA",        "USER_RECOVERY",
    "RECOVERY_REISSUE", "UNPRIVILEGED",  "CMD_IOCTL_ENCODE",     "USER_COPY",
    "ZONED",            "RECOVERY_FAIL_IO", "UPDATE_SIZE",       "AUTO_BUF_REG",
    "QUIESCE",          "PER_IO_DAEMON", "BUF_REG_OFF_DAEMON",   "BATCH_IO",
    "INTEGRITY",        "SAFE_STOP_DEV", "NO_AUTO_PART_SCAN",    "SHMEM_ZC",
};

// "ZERO_COPY|AUTO_BUF_REG|bit22" for a mask; "none" for 0.
inline std::string feature_names(uint64_t mask) {
    std::string out;
    for (unsigned bit = 0; bit < 64; ++bit) {
        if ((mask & (1ull << bit)) == 0) continue;
        if (!out.empty()) out += '|';
        if (bit < kFeatureNames.size()) {
            out += kFeatureNames[bit];
        } else {
            out += "bit" + std::to_string(bit);
        }
    }
    return out.empty() ? "none" : out;
}

// ---- parameters: SET_PARAMS / GET_PARAMS -----------------------------------

inline constexpr uint32_t UBLK_PARAM_TYPE_BASIC = 1u << 0;
inline constexpr uint32_t UBLK_PARAM_TYPE_DISCARD = 1u << 1;
inline constexpr uint32_t UBLK_PARAM_TYPE_DEVT = 1u << 2;       // read-only
inline constexpr uint32_t UBLK_PARAM_TYPE_ZONED = 1u << 3;
inline constexpr uint32_t UBLK_PARAM_TYPE_DMA_ALIGN = 1u << 4;
inline constexpr uint32_t UBLK_PARAM_TYPE_SEGMENT = 1u << 5;
inline constexpr uint32_t UBLK_PARAM_TYPE_INTEGRITY = 1u << 6;  // 7.0

inline constexpr uint32_t UBLK_ATTR_READ_ONLY = 1u << 0;
inline constexpr uint32_t UBLK_ATTR_ROTATIONAL = 1u << 1;
inline constexpr uint32_t UBLK_ATTR_VOLATILE_CACHE = 1u << 2;
inline constexpr uint32_t UBLK_ATTR_FUA = 1u << 3;

struct ublk_param_basic {
    uint32_t attrs;  // UBLK_ATTR_*
    uint8_t logical_bs_shift;
    uint8_t physical_bs_shift;
    uint8_t io_opt_shift;
    uint8_t io_min_shift;
    uint32_t max_sectors;
    uint32_t chunk_sectors;
    uint64_t dev_sectors;
    uint64_t virt_boundary_mask;
};
static_assert(sizeof(ublk_param_basic) == 32);

struct ublk_param_discard {
    uint32_t discard_alignment;
    uint32_t discard_granularity;
    uint32_t max_discard_sectors;
    uint32_t max_write_zeroes_sectors;
    uint16_t max_discard_segments;
    uint16_t reserved0;
};
static_assert(sizeof(ublk_param_discard) == 20);

struct ublk_param_devt {  // filled by the kernel
    uint32_t char_major;
    uint32_t char_minor;
    uint32_t disk_major;
    uint32_t disk_minor;
};
static_assert(sizeof(ublk_param_devt) == 16);

struct ublk_param_zoned {
    uint32_t max_open_zones;
    uint32_t max_active_zones;
    uint32_t max_zone_append_sectors;
    uint8_t reserved[20];
};
static_assert(sizeof(ublk_param_zoned) == 32);

struct ublk_param_dma_align {
    uint32_t alignment;
    uint8_t pad[4];
};
static_assert(sizeof(ublk_param_dma_align) == 8);

inline constexpr uint32_t UBLK_MIN_SEGMENT_SIZE = 4096;

struct ublk_param_segment {
    uint64_t seg_boundary_mask;
    uint32_t max_segment_size;  // >= UBLK_MIN_SEGMENT_SIZE
    uint16_t max_segments;
    uint8_t pad[2];
};
static_assert(sizeof(ublk_param_segment) == 16);

struct ublk_param_integrity {  // 7.0, needs UBLK_F_INTEGRITY
    uint32_t flags;
    uint16_t max_integrity_segments;
    uint8_t interval_exp;
    uint8_t metadata_size;
    uint8_t pi_offset;
    uint8_t csum_type;
    uint8_t tag_size;
    uint8_t pad[5];
};
static_assert(sizeof(ublk_param_integrity) == 16);

// `len` must be set for SET_PARAMS and GET_PARAMS; the kernel copies
// min(len, its own size), so this layout also works on older kernels.
struct ublk_params {
    uint32_t len;    // sizeof(ublk_params)
    uint32_t types;  // UBLK_PARAM_TYPE_* present
    ublk_param_basic basic;
    ublk_param_discard discard;
    ublk_param_devt devt;
    ublk_param_zoned zoned;
    ublk_param_dma_align dma;
    ublk_param_segment seg;  // 8-aligned: 4 bytes of padding before it
    ublk_param_integrity integrity;
};
static_assert(offsetof(ublk_params, seg) == 120);
static_assert(sizeof(ublk_params) == 152);

// ---- per-device char device /dev/ublkcN: IO commands -----------------------

// Payload of every IO command, in sqe->cmd (16 bytes: a normal SQE is enough).
struct ublksrv_io_cmd {
    uint16_t q_id;
    uint16_t tag;
    int32_t result;  // COMMIT: bytes done or -errno
    union {
        uint64_t addr;             // copy mode: the server's buffer for this tag
        uint64_t zone_append_lba;  // ZONE_APPEND result
    };
};
static_assert(sizeof(ublksrv_io_cmd) == 16);

enum class IoCmdOp : uint32_t {
    FetchReq = 0x20,
    CommitAndFetchReq = 0x21,
    NeedGetData = 0x22,
    RegisterIoBuf = 0x23,    // 6.15, addr = buffer-table index
    UnregisterIoBuf = 0x24,  // 6.15
    PrepIoCmds = 0x25,       // 7.0 batch (struct ublk_batch_io, not defined here)
    CommitIoCmds = 0x26,     // 7.0 batch
    FetchIoCmds = 0x27,      // 7.0 batch, multishot
};

constexpr uint32_t io_iowr(IoCmdOp op) {
    return ioc(kIocRead | kIocWrite, static_cast<uint32_t>(op), sizeof(ublksrv_io_cmd));
}

inline constexpr uint32_t UBLK_U_IO_FETCH_REQ = io_iowr(IoCmdOp::FetchReq);
inline constexpr uint32_t UBLK_U_IO_COMMIT_AND_FETCH_REQ = io_iowr(IoCmdOp::CommitAndFetchReq);
inline constexpr uint32_t UBLK_U_IO_NEED_GET_DATA = io_iowr(IoCmdOp::NeedGetData);
inline constexpr uint32_t UBLK_U_IO_REGISTER_IO_BUF = io_iowr(IoCmdOp::RegisterIoBuf);
inline constexpr uint32_t UBLK_U_IO_UNREGISTER_IO_BUF = io_iowr(IoCmdOp::UnregisterIoBuf);
static_assert(UBLK_U_IO_FETCH_REQ == 0xc0107520u);

// IO command CQE results.
inline constexpr int UBLK_IO_RES_OK = 0;
inline constexpr int UBLK_IO_RES_NEED_GET_DATA = 1;
inline constexpr int UBLK_IO_RES_ABORT = -19;  // -ENODEV: do not fetch again

// AUTO_BUF_REG (6.16): passed in sqe->addr of FETCH/COMMIT; the kernel
// registers the request buffer at `index` of the issuing ring's buffer table.
inline constexpr uint8_t UBLK_AUTO_BUF_REG_FALLBACK = 1u << 0;

struct ublk_auto_buf_reg {
    uint16_t index;
    uint8_t flags;  // UBLK_AUTO_BUF_REG_FALLBACK
    uint8_t reserved0;
    uint32_t reserved1;  // must be 0
};
static_assert(sizeof(ublk_auto_buf_reg) == 8);

// index in bits 0-15, flags in bits 16-23, the rest zero.
constexpr uint64_t auto_buf_reg_to_sqe_addr(const ublk_auto_buf_reg& reg) {
    return static_cast<uint64_t>(reg.index) | (static_cast<uint64_t>(reg.flags) << 16);
}
static_assert(auto_buf_reg_to_sqe_addr({7, UBLK_AUTO_BUF_REG_FALLBACK, 0, 0}) == 0x10007u);

// ---- IO descriptors: read-only mmap of /dev/ublkcN --------------------------

struct ublksrv_io_desc {
    uint32_t op_flags;  // op in bits 0-7, UBLK_IO_F_* in 8-31
    union {
        uint32_t nr_sectors;
        uint32_t nr_zones;  // REPORT_ZONES
    };
    uint64_t start_sector;
    uint64_t addr;  // copy mode: the buffer given in FETCH/COMMIT
};
static_assert(sizeof(ublksrv_io_desc) == 24);

enum class IoOp : uint8_t {
    Read = 0,
    Write = 1,
    Flush = 2,
    Discard = 3,
    WriteSame = 4,
    WriteZeroes = 5,
    ZoneOpen = 10,
    ZoneClose = 11,
    ZoneFinish = 12,
    ZoneAppend = 13,
    ZoneResetAll = 14,
    ZoneReset = 15,
    ReportZones = 18,
};

inline constexpr uint32_t UBLK_IO_F_FAILFAST_DEV = 1u << 8;
inline constexpr uint32_t UBLK_IO_F_FAILFAST_TRANSPORT = 1u << 9;
inline constexpr uint32_t UBLK_IO_F_FAILFAST_DRIVER = 1u << 10;
inline constexpr uint32_t UBLK_IO_F_META = 1u << 11;
inline constexpr uint32_t UBLK_IO_F_FUA = 1u << 13;
inline constexpr uint32_t UBLK_IO_F_NOUNMAP = 1u << 15;  // WRITE_ZEROES: keep allocated
inline constexpr uint32_t UBLK_IO_F_SWAP = 1u << 16;
inline constexpr uint32_t UBLK_IO_F_NEED_REG_BUF = 1u << 17;  // 6.16, auto-reg fallback hit
inline constexpr uint32_t UBLK_IO_F_INTEGRITY = 1u << 18;     // 7.0
inline constexpr uint32_t UBLK_IO_F_SHMEM_ZC = 1u << 19;      // 7.1

constexpr IoOp io_op(const ublksrv_io_desc& iod) { return static_cast<IoOp>(iod.op_flags & 0xff); }
constexpr uint32_t io_flags(const ublksrv_io_desc& iod) { return iod.op_flags & ~0xffu; }

// ---- mmap layout and limits -------------------------------------------------

inline constexpr uint64_t UBLKSRV_CMD_BUF_OFFSET = 0;  // descriptor area, per queue
inline constexpr uint64_t UBLKSRV_IO_BUF_OFFSET = 0x80000000ull;  // USER_COPY pread/pwrite base
inline constexpr unsigned UBLK_MAX_QUEUE_DEPTH = 4096;
inline constexpr unsigned UBLK_MAX_NR_QUEUES = 4096;
inline constexpr unsigned UBLK_IO_BUF_BITS = 25;  // 32 MiB max per request
inline constexpr unsigned UBLK_TAG_BITS = 16;
inline constexpr unsigned UBLK_QID_OFF = UBLK_IO_BUF_BITS + UBLK_TAG_BITS;

// Offset of queue q's descriptor array in the mmap of /dev/ublkcN.
constexpr uint64_t io_desc_offset(unsigned q_id, uint64_t page_size) {
    const uint64_t per_queue = UBLK_MAX_QUEUE_DEPTH * sizeof(ublksrv_io_desc);
    return UBLKSRV_CMD_BUF_OFFSET + q_id * ((per_queue + page_size - 1) / page_size * page_size);
}

// USER_COPY: file offset on /dev/ublkcN of byte `off` of request (q_id, tag).
constexpr uint64_t user_copy_offset(unsigned q_id, unsigned tag, uint32_t off) {
    return UBLKSRV_IO_BUF_OFFSET + ((static_cast<uint64_t>(q_id) << UBLK_QID_OFF) |
                                    (static_cast<uint64_t>(tag) << UBLK_IO_BUF_BITS) | off);
}

}  // namespace unbd::proto::ublk
