// conveyor/gpu/nvtx.hpp: NVTX ranges for the CUDA component, so Nsight
// Systems (nsys) shows the stager's work on the CPU timeline beside the copies
// and kernels it causes.
//
// The ranges go to an NVTX domain named "conveyor", each with the batch number
// as its payload: "to_device: copy" (allocating a host batch's device columns
// and queuing its copies) and "to_device: deliver" (handing a staged batch to
// the consumer, which includes staging the next one). The NVTX v3 headers are header-only (they
// load the profiler's library with dlopen when one is attached, and cost a
// load and a branch otherwise), so nothing is linked. Without
// <nvtx3/nvToolsExt.h> on the include path, or with CONVEYOR_NO_NVTX defined,
// a range compiles to nothing. Independently of NVTX, to_device's spans also
// appear in conveyor's own trace (core/trace.hpp).
#pragma once

#include <cstdint>

#if !defined(CONVEYOR_NO_NVTX) && __has_include(<nvtx3/nvToolsExt.h>)
#include <nvtx3/nvToolsExt.h>
#define CONVEYOR_HAS_NVTX 1
#else
#define CONVEYOR_HAS_NVTX 0
#endif

namespace conveyor::detail {

#if CONVEYOR_HAS_NVTX
inline nvtxDomainHandle_t nvtx_domain() noexcept {
  static const nvtxDomainHandle_t domain = nvtxDomainCreateA("conveyor");
  return domain;
}
#endif

/// A push/pop range in the "conveyor" NVTX domain for the current scope.
/// `message` must outlive the scope (a string literal).
class nvtx_range {
 public:
  explicit nvtx_range([[maybe_unused]] const char* message,
                      [[maybe_unused]] std::uint64_t batch) noexcept {
#if CONVEYOR_HAS_NVTX
    nvtxEventAttributes_t attributes{};
    attributes.version = NVTX_VERSION;
    attributes.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    attributes.messageType = NVTX_MESSAGE_TYPE_ASCII;
    attributes.message.ascii = message;
    attributes.payloadType = NVTX_PAYLOAD_TYPE_UNSIGNED_INT64;
    attributes.payload.ullValue = batch;
    nvtxDomainRangePushEx(nvtx_domain(), &attributes);
#endif
  }
  nvtx_range(const nvtx_range&) = delete;
  nvtx_range& operator=(const nvtx_range&) = delete;
  ~nvtx_range() {
#if CONVEYOR_HAS_NVTX
    nvtxDomainRangePop(nvtx_domain());
#endif
  }
};

}  // namespace conveyor::detail
