// user_data: how every SQE on a shared ring says who owns its CQE.
//
// Several users share one ring (a ublk queue and the NBD session it embeds),
// so every CQE must be routed without a lookup table:
//
//   bits 56..63  owner   (Owner below; 0 is never used, so a zeroed
//                         user_data is recognisably foreign)
//   bits 48..55  instance (e.g. which NBD session on this ring)
//   bits 40..47  kind    (owner-defined: send segment, header recv, ...)
//   bits  0..39  value   (owner-defined: an index, a tag, a sequence)
//
// Owners must only ever look at CQEs carrying their own owner byte.
#pragma once

#include <cstdint>

namespace unbd::uring {

enum class Owner : uint8_t {
    None = 0,
    NbdSession = 1,  // src/nbd session (send chain, reply reader)
    UblkQueue = 2,   // src/ublk queue (FETCH / COMMIT_AND_FETCH uring_cmds)
    Control = 3,     // one-off control operations (probes, tests, wakeups)
};

struct UserData {
    Owner owner = Owner::None;
    uint8_t instance = 0;
    uint8_t kind = 0;
    uint64_t value = 0;  // 40 bits

    static constexpr uint64_t kValueMask = (uint64_t{1} << 40) - 1;

    constexpr uint64_t encode() const {
        return (uint64_t{static_cast<uint8_t>(owner)} << 56) | (uint64_t{instance} << 48) |
               (uint64_t{kind} << 40) | (value & kValueMask);
    }
    static constexpr UserData decode(uint64_t raw) {
        return UserData{static_cast<Owner>(raw >> 56), static_cast<uint8_t>(raw >> 48),
                        static_cast<uint8_t>(raw >> 40), raw & kValueMask};
    }
};

constexpr Owner owner_of(uint64_t raw) { return static_cast<Owner>(raw >> 56); }

static_assert(UserData::decode(UserData{Owner::UblkQueue, 7, 3, 0x12345}.encode()).value == 0x12345);
static_assert(UserData::decode(UserData{Owner::UblkQueue, 7, 3, 0x12345}.encode()).instance == 7);

}  // namespace unbd::uring
