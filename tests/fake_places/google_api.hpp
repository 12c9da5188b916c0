// What Google's two Nearby Search APIs share: how they fail and what they answer.
#pragma once

#include <string>

namespace fake_places {

// How the API itself misbehaves; transport failures (hang, 503...) are the server's business.
enum class Fault { none, zero, denied, quota, invalid };

struct ApiReply {
  int status = 200;
  std::string body;  // application/json; charset=UTF-8
};

}  // namespace fake_places
