// ProcessGroup on NCCL (CUDA tensors), built when minidl has CUDA and the toolkit ships libnccl
// (MINIDL_HAVE_NCCL). Rank 0 makes the NCCL unique id and shares it through the rendezvous store; collectives
// run on a stream of their own and the call returns when they are done. A dead peer is caught by polling
// ncclCommGetAsyncError until the timeout, then the communicator is aborted and minidl::Error thrown.
#pragma once

#include <chrono>
#include <memory>

#include "distributed/process_group.h"
#include "distributed/store.h"

namespace minidl::distributed {

/// Whether this minidl was built with NCCL.
bool nccl_available();
/// A NCCL process group over `store`; throws minidl::Error when minidl was built without NCCL.
ProcessGroupPtr make_process_group_nccl(StorePtr store, int rank, int size, std::chrono::milliseconds timeout,
                                        const std::string& prefix = "nccl0");

}  // namespace minidl::distributed
