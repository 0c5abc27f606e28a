// The rendezvous store: a key-value table that every rank of a group reaches, through which the ranks exchange
// what they need to connect (Gloo's addresses, NCCL's unique id). minidl's own interface, so that the NCCL
// group and the stores (tcp_store.h, file_store.h) need no Gloo; process_group_gloo.cpp adapts it to Gloo's.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace minidl::distributed {

class Store {
 public:
  virtual ~Store() = default;
  /// Writes the key (a key is written once per rendezvous; writing it again replaces the value).
  virtual void set(const std::string& key, const std::vector<char>& value) = 0;
  /// The key's value, waiting for it up to the store's timeout (then minidl::Error naming the key).
  virtual std::vector<char> get(const std::string& key) = 0;
  /// Returns once every key exists; minidl::Error naming a missing key after `timeout`.
  virtual void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) = 0;
};

using StorePtr = std::shared_ptr<Store>;

/// The keys of `base` under "<prefix>/": independent namespaces in one store (one per process group).
class PrefixStore : public Store {
 public:
  PrefixStore(std::string prefix, StorePtr base) : prefix_(std::move(prefix) + "/"), base_(std::move(base)) {}
  void set(const std::string& key, const std::vector<char>& value) override { base_->set(prefix_ + key, value); }
  std::vector<char> get(const std::string& key) override { return base_->get(prefix_ + key); }
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override {
    std::vector<std::string> full;
    full.reserve(keys.size());
    for (const auto& k : keys) full.push_back(prefix_ + k);
    base_->wait(full, timeout);
  }

 private:
  std::string prefix_;
  StorePtr base_;
};

}  // namespace minidl::distributed
