#include "notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace herd {

// The protocol is one datagram, so this is the few lines of sd_notify(3) it needs rather than
// a dependency on libsystemd.
bool notify_ready() {
  const char* socket_name = std::getenv("NOTIFY_SOCKET");
  if (!socket_name || !*socket_name) return true;
  std::string_view name = socket_name;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if ((name[0] != '/' && name[0] != '@') || name.size() >= sizeof(address.sun_path)) return false;
  std::memcpy(address.sun_path, name.data(), name.size());
  if (name[0] == '@') address.sun_path[0] = '\0';  // an abstract socket
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  constexpr std::string_view ready = "READY=1";
  auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  auto sent = ::sendto(fd, ready.data(), ready.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&address), length);
  ::close(fd);
  return sent == static_cast<ssize_t>(ready.size());
}

}  // namespace herd
