// Rendezvous from options or the environment (see init.h).
#include "distributed/init.h"

#include <unistd.h>

#include <filesystem>

#include "core/build_features.h"
#include "core/env.h"
#include "core/error.h"
#include "distributed/file_store.h"
#include "distributed/process_group_gloo.h"
#include "distributed/process_group_nccl.h"
#include "distributed/tcp_store.h"

namespace minidl::distributed {
namespace {

int env_int(const char* name, int fallback) {
  auto v = env_string(name);
  if (!v) return fallback;
  try {
    size_t used = 0;
    const int x = std::stoi(*v, &used);
    MINIDL_CHECK(used == v->size(), "");
    return x;
  } catch (const std::exception&) {
    MINIDL_FAIL("distributed: ", name, "='", *v, "' is not an integer");
  }
}

bool is_loopback(const std::string& host) {
  return host.empty() || host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

bool launched_distributed() {
  return env_string("WORLD_SIZE").has_value() || env_string("OMPI_COMM_WORLD_SIZE").has_value();
}

InitOptions init_options_from_env() {
  InitOptions o;
  if (env_string("WORLD_SIZE")) {
    o.world_size = env_int("WORLD_SIZE", 1);
    o.rank = env_int("RANK", -1);
    MINIDL_CHECK(o.rank >= 0, "distributed: WORLD_SIZE is set but RANK is not");
    o.where = "RANK/WORLD_SIZE";
  } else if (env_string("OMPI_COMM_WORLD_SIZE")) {
    o.world_size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    o.rank = env_int("OMPI_COMM_WORLD_RANK", -1);
    MINIDL_CHECK(o.rank >= 0, "distributed: OMPI_COMM_WORLD_SIZE is set but OMPI_COMM_WORLD_RANK is not");
    o.where = "OpenMPI (OMPI_COMM_WORLD_*)";
  }
  MINIDL_CHECK(o.world_size >= 1 && o.rank < o.world_size, "distributed: rank ", o.rank, " is outside world size ",
               o.world_size, " (", o.where, ")");
  o.master_addr = env_string("MASTER_ADDR").value_or("");
  o.master_port = env_int("MASTER_PORT", 0);
  if (!o.master_addr.empty()) {
    MINIDL_CHECK(o.master_port > 0, "distributed: MASTER_ADDR is set but MASTER_PORT is not");
  } else if (auto dir = env_string("MINIDL_DIST_STORE")) {
    o.file_store = *dir;
  } else if (o.world_size > 1) {
    // mpirun without MASTER_ADDR: the ranks share this node's /tmp; the MPI job id keeps concurrent jobs apart.
    auto job = env_string("OMPI_MCA_ess_base_jobid");
    MINIDL_CHECK(job.has_value(), "distributed: ", o.where,
                 " gives no rendezvous: set MASTER_ADDR and MASTER_PORT (or MINIDL_DIST_STORE, a directory all "
                 "ranks see)");
    o.file_store = "/tmp/minidl-rendezvous-" + *job;
  }
  o.timeout = std::chrono::seconds(env_int("MINIDL_DIST_TIMEOUT", 300));
  MINIDL_CHECK(o.timeout.count() > 0, "distributed: MINIDL_DIST_TIMEOUT must be positive");
  if (auto b = env_string("MINIDL_DIST_BACKEND")) o.backend = *b;
  return o;
}

ProcessGroupPtr init_process_group(const InitOptions& o) {
  MINIDL_CHECK(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size, "distributed: rank ", o.rank,
               " is outside world size ", o.world_size);
  MINIDL_CHECK(o.backend == "gloo" || o.backend == "nccl", "distributed: unknown backend '", o.backend,
               "' (gloo or nccl)");
  if (o.backend == "gloo" && !build_features().gloo)
    fail_unavailable("Gloo", "the gloo process group (CPU tensors) is",
                     "use the nccl backend for CUDA tensors, or apt-get install libgloo-dev and rebuild");
  StorePtr store;
  std::string host = "127.0.0.1";
  if (!o.master_addr.empty()) {
    store = std::make_shared<TcpStore>(o.master_addr, o.master_port, o.rank == 0, o.timeout);
    if (!is_loopback(o.master_addr)) {
      char name[256] = {};
      ::gethostname(name, sizeof name - 1);
      host = name;
    }
  } else {
    MINIDL_CHECK(!o.file_store.empty() || o.world_size == 1,
                 "distributed: no rendezvous (set master_addr/master_port or a file_store directory)");
    std::string dir = o.file_store;
    if (dir.empty()) dir = std::filesystem::temp_directory_path() / ("minidl-single-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    store = std::make_shared<FileStore>(dir, o.timeout);
  }
  if (o.backend == "nccl") return make_process_group_nccl(store, o.rank, o.world_size, o.timeout);
#if defined(MINIDL_HAVE_GLOO)
  return std::make_shared<ProcessGroupGloo>(store, o.rank, o.world_size, host, o.timeout);
#else
  (void)host;
  MINIDL_FAIL("distributed: unreachable: gloo backend in a build without Gloo");
#endif
}

}  // namespace minidl::distributed
