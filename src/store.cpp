#include "store.hpp"

namespace herd {

bool supersedes(const Location& candidate, const Location& current) {
  if (candidate.client_time != current.client_time)
    return candidate.client_time > current.client_time;
  return candidate.at_line > current.at_line;
}

Location location_of(const At& at) {
  return Location{format_at(at.server, at.diff, at.client, at.coords, at.time), at.client_time,
                  at.where};
}

Store::Outcome Store::apply(std::string_view client, Location candidate) {
  if (auto found = index_.find(client); found != index_.end()) {
    Location& current = records_[found->second];
    if (!supersedes(candidate, current)) return Outcome::unchanged;
    current = std::move(candidate);
    return Outcome::replaced;
  }
  index_.emplace(std::string(client), records_.size());
  records_.push_back(std::move(candidate));
  return Outcome::inserted;
}

const Location* Store::find(std::string_view client) const {
  auto found = index_.find(client);
  return found == index_.end() ? nullptr : &records_[found->second];
}

}  // namespace herd
