// A key-value store over TCP for the rendezvous (distributed/store.h) (PyTorch's TCPStore, minimal): rank 0 serves it
// on MASTER_ADDR:MASTER_PORT, every rank (rank 0 included) is a client. Keys are written once; get() blocks until the
// key exists or the timeout passes (then minidl::Error naming the key and the address).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "distributed/store.h"

namespace minidl::distributed {

class TcpStoreServer;

class TcpStore : public Store {
 public:
  /// is_server: also serve the store (rank 0). Connecting retries until `timeout`.
  TcpStore(const std::string& host, int port, bool is_server, std::chrono::milliseconds timeout);
  ~TcpStore() override;

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override;

 private:
  std::vector<char> request(char cmd, const std::string& key, const std::vector<char>& value);

  std::string where_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<TcpStoreServer> server_;
  int fd_ = -1;
};

}  // namespace minidl::distributed
