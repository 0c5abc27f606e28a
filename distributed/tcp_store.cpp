// TcpStore (see tcp_store.h). Wire format, both directions: a command byte, then length-prefixed strings.
//   set:  'S' key value            -> 'K'
//   get:  'G' key timeout_ms(8 B)  -> 'K' value | 'T' (timed out)
// One thread per client connection on the server; the map is guarded by one mutex and a condition variable.
#include "distributed/tcp_store.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"

namespace minidl::distributed {
namespace {

bool send_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t k = ::send(fd, c, n, MSG_NOSIGNAL);
    if (k <= 0) return false;
    c += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

bool recv_all(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    const ssize_t k = ::recv(fd, c, n, 0);
    if (k <= 0) return false;
    c += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

bool send_blob(int fd, const void* p, uint32_t n) { return send_all(fd, &n, 4) && send_all(fd, p, n); }

bool recv_blob(int fd, std::vector<char>& out) {
  uint32_t n = 0;
  if (!recv_all(fd, &n, 4)) return false;
  out.resize(n);
  return recv_all(fd, out.data(), n);
}

}  // namespace

class TcpStoreServer {
 public:
  explicit TcpStoreServer(int port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    MINIDL_CHECK(listen_fd_ >= 0, "TcpStore: socket(): ", std::strerror(errno));
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 128) != 0) {
      const std::string why = std::strerror(errno);
      ::close(listen_fd_);
      MINIDL_FAIL("TcpStore: cannot serve on port ", port, " (MASTER_PORT): ", why);
    }
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~TcpStoreServer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (int fd : client_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    for (auto& t : clients_) t.join();
    for (int fd : client_fds_) ::close(fd);
  }

 private:
  void accept_loop() {
    for (;;) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      std::lock_guard lock(mu_);
      if (fd < 0 || stopping_) {
        if (fd >= 0) ::close(fd);
        return;
      }
      client_fds_.push_back(fd);
      clients_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    for (;;) {
      char cmd = 0;
      std::vector<char> key, value;
      if (!recv_all(fd, &cmd, 1) || !recv_blob(fd, key)) return;
      const std::string k(key.begin(), key.end());
      if (cmd == 'S') {
        if (!recv_blob(fd, value)) return;
        {
          std::lock_guard lock(mu_);
          data_[k] = std::move(value);
        }
        cv_.notify_all();
        if (!send_all(fd, "K", 1)) return;
      } else if (cmd == 'G') {
        int64_t ms = 0;
        if (!recv_all(fd, &ms, 8)) return;
        std::unique_lock lock(mu_);
        const bool found =
            cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_ || data_.count(k) > 0; });
        if (stopping_) return;
        if (!found) {
          lock.unlock();
          if (!send_all(fd, "T", 1)) return;
          continue;
        }
        const std::vector<char> v = data_[k];
        lock.unlock();
        if (!send_all(fd, "K", 1) || !send_blob(fd, v.data(), static_cast<uint32_t>(v.size()))) return;
      } else {
        return;  // not a client of ours: drop the connection
      }
    }
  }

  int listen_fd_ = -1;
  std::thread acceptor_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<int> client_fds_;
  std::vector<std::thread> clients_;
  std::map<std::string, std::vector<char>> data_;
};

TcpStore::TcpStore(const std::string& host, int port, bool is_server, std::chrono::milliseconds timeout)
    : where_(host + ":" + std::to_string(port)), timeout_(timeout) {
  MINIDL_CHECK(port > 0 && port < 65536, "TcpStore: MASTER_PORT must be in 1..65535, got ", port);
  if (is_server) server_ = std::make_unique<TcpStoreServer>(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  MINIDL_CHECK(rc == 0, "TcpStore: cannot resolve MASTER_ADDR '", host, "': ", gai_strerror(rc));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // The server may not be up yet: retry until the deadline.
  while (fd_ < 0) {
    for (addrinfo* p = res; p != nullptr && fd_ < 0; p = p->ai_next) {
      const int fd = ::socket(p->ai_family, p->ai_socktype, p->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, p->ai_addr, p->ai_addrlen) == 0) {
        fd_ = fd;
      } else {
        ::close(fd);
      }
    }
    if (fd_ >= 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::freeaddrinfo(res);
      MINIDL_FAIL("TcpStore: no store at ", where_, " after ", timeout.count(),
                  " ms (is rank 0 running, are MASTER_ADDR/MASTER_PORT right?)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::freeaddrinfo(res);
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<char> TcpStore::request(char cmd, const std::string& key, const std::vector<char>& value) {
  bool ok = send_all(fd_, &cmd, 1) && send_blob(fd_, key.data(), static_cast<uint32_t>(key.size()));
  if (cmd == 'S') ok = ok && send_blob(fd_, value.data(), static_cast<uint32_t>(value.size()));
  if (cmd == 'G') {
    const int64_t ms = timeout_.count();
    ok = ok && send_all(fd_, &ms, 8);
  }
  char status = 0;
  ok = ok && recv_all(fd_, &status, 1);
  MINIDL_CHECK(ok, "TcpStore: lost the connection to the store at ", where_, " (rank 0 gone?)");
  MINIDL_CHECK(status != 'T', "TcpStore: key '", key, "' did not appear in the store at ", where_, " within ",
               timeout_.count(), " ms (a rank missing?)");
  std::vector<char> out;
  if (cmd == 'G') MINIDL_CHECK(recv_blob(fd_, out), "TcpStore: lost the connection to the store at ", where_);
  return out;
}

void TcpStore::set(const std::string& key, const std::vector<char>& data) { request('S', key, data); }

std::vector<char> TcpStore::get(const std::string& key) { return request('G', key, {}); }

void TcpStore::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  const auto saved = timeout_;
  timeout_ = timeout;
  try {
    for (const auto& k : keys) request('G', k, {});
  } catch (...) {
    timeout_ = saved;
    throw;
  }
  timeout_ = saved;
}

}  // namespace minidl::distributed
