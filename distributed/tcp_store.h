// A key-value store over TCP for Gloo's rendezvous (PyTorch's TCPStore, minimal): rank 0 serves it on
// MASTER_ADDR:MASTER_PORT, every rank (rank 0 included) is a client. Keys are written once; get() blocks until
// the key exists or the timeout passes (then minidl::Error naming the key and the address).
#pragma once

#include <gloo/rendezvous/store.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace minidl::distributed {

class TcpStoreServer;

class TcpStore : public gloo::rendezvous::Store {
 public:
  /// is_server: also serve the store (rank 0). Connecting retries until `timeout`.
  TcpStore(const std::string& host, int port, bool is_server, std::chrono::milliseconds timeout);
  ~TcpStore() override;

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  std::vector<char> request(char cmd, const std::string& key, const std::vector<char>& value);

  std::string where_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<TcpStoreServer> server_;
  int fd_ = -1;
};

}  // namespace minidl::distributed
