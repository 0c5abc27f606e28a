// Starting a process group: who am I (rank), how many are we (world size), and where do we meet (a store).
//   - torchrun style: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (a TCP store served by rank 0);
//   - mpirun (OpenMPI): OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE, meeting through MASTER_ADDR/MASTER_PORT when
//     set, else through a file store in a directory all ranks see (MINIDL_DIST_STORE, or one per MPI job under
//     /tmp: single-node runs need no setup);
//   - in-process (tests: ranks as threads): InitOptions with rank, world_size and a file_store directory.
// MINIDL_DIST_TIMEOUT (seconds, default 300) bounds rendezvous and every collective.
#pragma once

#include <chrono>
#include <string>

#include "distributed/process_group.h"

namespace minidl::distributed {

struct InitOptions {
  std::string backend = "gloo";  // "gloo" (CPU tensors) or "nccl" (CUDA tensors)
  int rank = 0;
  int world_size = 1;
  std::string master_addr;  // TCP store when set
  int master_port = 0;
  std::string file_store;  // file store directory (when master_addr is empty)
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};
  std::string where = "options";  // how the options were found, for messages
};

/// True when the environment says this process is one of several (WORLD_SIZE or OMPI_COMM_WORLD_SIZE set).
bool launched_distributed();
/// Options from the environment (see the header comment); world size 1 when nothing is set. Malformed values
/// throw naming the variable.
InitOptions init_options_from_env();
/// Rendezvous with the other ranks; throws minidl::Error (naming the store) when they do not all arrive within
/// the timeout.
ProcessGroupPtr init_process_group(const InitOptions& options);

}  // namespace minidl::distributed
